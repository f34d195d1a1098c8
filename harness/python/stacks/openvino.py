"""OpenVINO: ONNX to IR with the converter's Python API (as `ovc` uses it), run by the CPU plugin.

The plugin interface every file of this directory follows is described in
harness/python/stacks/README.md.
"""

import os

import numpy as np

# What the report names as the runtime of this stack's artifacts.
RUNTIME = "openvino-cpu"
# Spec suffixes (`openvino:f32`) and the options each gives convert() and load().
VARIANTS = {"": {"precision": "default"}, "f32": {"precision": "f32"}}
# Generated cases merged into one model: converting and compiling cost about 50 ms a model
# whatever its size (docs/PERFORMANCE.md).
PACK = 16

# Order matters: "bfloat16" contains "float16".
PRECISIONS = (("bfloat16", "bf16"), ("bf16", "bf16"), ("float16", "f16"), ("f16", "f16"), ("float32", "f32"), ("f32", "f32"))

_core = None


def core():
    global _core
    import openvino as ov

    if _core is None:
        _core = ov.Core()
    return _core


def version():
    import openvino

    return openvino.get_version()


def convert(model, work_dir, options):
    """The IR's model.xml, saved with f32 weights and read back once (a `read` failure is the
    converter's: it wrote what its own runtime cannot load)."""
    import openvino as ov

    from . import Failure, stage

    converted = stage("convert", lambda: ov.convert_model(model))
    xml = os.path.join(work_dir, "model.xml")
    stage("convert", lambda: ov.save_model(converted, xml, compress_to_fp16=False))
    stage("read", lambda: core().read_model(xml))
    if not os.path.isfile(xml):
        raise Failure("convert", "save_model wrote no model.xml")
    return xml


class Session:
    def __init__(self, path, options):
        from . import stage

        config = {"INFERENCE_NUM_THREADS": int(options.get("threads", 1))}
        if options.get("precision") == "f32":
            config["INFERENCE_PRECISION_HINT"] = "f32"
        ir = stage("read", lambda: core().read_model(path))
        self.compiled = stage("compile", lambda: core().compile_model(ir, "CPU", config))
        hint = str(stage("compile", lambda: self.compiled.get_property("INFERENCE_PRECISION_HINT"))).lower()
        self.precision = next((short for key, short in PRECISIONS if key in hint), hint)
        self.request = self.compiled.create_infer_request()
        self.names = [o.get_any_name() if o.get_names() else f"output_{i}" for i, o in enumerate(self.compiled.outputs)]


def load(artifact, options):
    return Session(artifact, options)


def run(session, feeds):
    session.request.infer(dict(feeds))
    return [session.request.get_output_tensor(i).data.copy() for i in range(len(session.compiled.outputs))]


def precision(session):
    return session.precision


def output_names(session):
    return session.names


def bind(session, feeds):
    """A call that runs one inference on `feeds`, bound once, outputs left in place."""
    import openvino as ov

    session.bound = [(name, ov.Tensor(np.ascontiguousarray(array))) for name, array in feeds]
    for name, tensor in session.bound:
        session.request.set_tensor(name, tensor)
    return session.request.infer
