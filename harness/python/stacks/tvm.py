"""Apache TVM: ONNX imported into Relax, compiled for this CPU with LLVM, run by the Relax VM.

The plugin interface every file of this directory follows is described in
harness/python/stacks/README.md. Variants:

- `tvm`: `tvm.compile` as its documentation shows it (`relax.build` with the default pipeline
  for the target: operators legalized one kernel each), LLVM at its default opt-level 3.
- `tvm:fuse`: the target's full Relax pipeline (`relax.get_default_pipeline`: FuseOps,
  FuseTIR and the rest), the form a deployment build takes.
- `tvm:O0`: LLVM code generation at opt-level 0. `PassContext(opt_level=…)` is no variant: in
  0.27 every pass of the CPU pipeline runs at opt_level 0, so it changes nothing.

Symbolic input dimensions stay symbolic (Relax compiles shape-generic code), so one artifact
serves every length, as the ONNX model does.
"""

import json
import os

# One thread for the runtime's pool, like every other stack the harness runs (it must be set
# before the first kernel runs; before the import is simplest).
os.environ.setdefault("TVM_NUM_THREADS", "1")

import numpy as np  # noqa: E402

RUNTIME = "tvm-llvm"
VARIANTS = {"": {"pipeline": "default", "llvm_opt_level": 3}, "fuse": {"pipeline": "full", "llvm_opt_level": 3}, "O0": {"pipeline": "default", "llvm_opt_level": 0}}

ONNX_TYPES = {1: "float32", 10: "float16", 11: "float64", 6: "int32", 7: "int64", 3: "int8", 2: "uint8", 9: "bool"}


def version():
    import tvm

    return tvm.__version__


def target(llvm_opt_level):
    import tvm

    # 0.27 takes targets as dicts; {"mcpu": "native"} falls back to "generic" with this wheel's
    # triple, while from_device detects the host CPU (znver3 on an AMD EPYC).
    host = tvm.target.Target.from_device(tvm.cpu())
    return tvm.target.Target(
        {"kind": "llvm", "mcpu": str(host.attrs["mcpu"]), "mtriple": str(host.attrs["mtriple"]), "opt-level": int(llvm_opt_level)}
    )


def convert(model, work_dir, options):
    """model.so (the compiled module, linked by the system C++ compiler) and model.json (the
    graph inputs' names, in the order the VM takes them)."""
    import onnx
    import tvm
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    proto = onnx.load(model)
    initializers = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in initializers]
    shapes, dtypes = {}, {}
    for i in inputs:
        tensor = i.type.tensor_type
        dtypes[i.name] = ONNX_TYPES.get(tensor.elem_type, "float32")
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tensor.shape.dim]
        shapes[i.name] = dims
    # Only fully static inputs get a shape_dict entry; the importer makes the others'
    # symbolic dimensions size variables.
    static = {name: dims for name, dims in shapes.items() if all(isinstance(d, int) for d in dims)}
    mod = from_onnx(proto, shape_dict=static, dtype_dict=dtypes)
    tgt = target(options.get("llvm_opt_level", 3))
    pipeline = relax.get_default_pipeline(tgt) if options.get("pipeline") == "full" else "default"
    executable = relax.build(mod, target=tgt, relax_pipeline=pipeline)
    library = os.path.join(work_dir, "model.so")
    executable.export_library(library)
    with open(os.path.join(work_dir, "model.json"), "w") as f:
        json.dump({"inputs": [i.name for i in inputs], "outputs": [o.name for o in proto.graph.output]}, f)
    return library


class Session:
    def __init__(self, library):
        import tvm
        from tvm import relax

        with open(os.path.join(os.path.dirname(library), "model.json")) as f:
            meta = json.load(f)
        self.inputs = meta["inputs"]
        self.names = meta["outputs"]
        self.vm = relax.VirtualMachine(tvm.runtime.load_module(library), tvm.cpu())
        self.main = self.vm["main"]


def load(artifact, options):
    return Session(artifact)


def run(session, feeds):
    import tvm

    given = dict(feeds)
    # The VM takes the graph inputs by position, in the ONNX graph's order.
    args = [tvm.runtime.tensor(np.ascontiguousarray(given[name]), tvm.cpu()) for name in session.inputs]
    out = session.main(*args)
    if isinstance(out, tvm.runtime.Tensor):
        return [out.numpy()]
    return [o.numpy() for o in out]


def precision(session):
    return "f32"


def output_names(session):
    return session.names
