"""TFLite / LiteRT: ONNX converted to a float32 .tflite by onnx2tf, run by the LiteRT interpreter.

The plugin interface every file of this directory follows is described in
harness/python/stacks/README.md.

The layout change is part of what is tested. onnx2tf makes every rank-3 graph input channel
last, [N, C, L] -> [N, L, C] (its README; `ops/Input.py`: permutation [0, 2, 1]); this module
feeds inputs that way and checks at conversion that the .tflite's inputs have the shapes the
mapping gives. Its outputs are not transposed back, and their layout is not documented: an
output computed channel last comes out [N, L, C], one after a Reshape or Flatten in ONNX
order. `onnx_layout` reads each back by its shape against the ONNX output's (the same rule for
every model, never by values); an output it cannot place shows as a wrong shape or wrong
values, which is a finding. Inputs and outputs are found by name in the `serving_default` signature, where
onnx2tf writes the ONNX names with ":" made "__".
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

import numpy as np  # noqa: E402

RUNTIME = "litert"
VARIANTS = {"": {}}
# onnx2tf costs about 1 to 3 s a model whatever its size (TensorFlow builds and converts a
# Keras model); packing amortizes it (docs/PERFORMANCE.md).
PACK = 16

# Next to the .tflite: which ONNX outputs onnx2tf left channel last (see `onnx_layout`).
LAYOUTS = "output_layouts.json"


def version():
    import importlib.metadata as md

    return f"onnx2tf {md.version('onnx2tf')}, ai-edge-litert {md.version('ai-edge-litert')}"


def channel_last(rank):
    """The permutation that makes an ONNX [N, C, ...] tensor TFLite's [N, ..., C]."""
    return [0] + list(range(2, rank)) + [1] if 3 <= rank <= 5 else None


def channel_first(rank):
    """The inverse: TFLite [N, ..., C] back to ONNX [N, C, ...]."""
    return [0, rank - 1] + list(range(1, rank - 1)) if 3 <= rank <= 5 else None


def signature_name(name):
    return name.replace(":", "__")


def convert(model, work_dir, options):
    """work_dir/model_float32.tflite, by onnx2tf's Python API with its defaults except: no
    onnxsim pass (the harness tests onnx2tf, and onnxsim on its own), no progress output."""
    import onnx

    from . import Failure

    # onnx2tf calls `onnxsim` and others by name: the environment's own come first.
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    import onnx2tf

    proto = onnx.load(model)
    initializers = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in initializers]
    # onnx2tf rewrites the file it is given (node names); it gets a copy of its own.
    source = os.path.join(work_dir, "model.onnx")
    onnx.save(proto, source)
    try:
        keras = onnx2tf.convert(input_onnx_file_path=source, output_folder_path=work_dir, not_use_onnxsim=True, non_verbose=True)
    except SystemExit as e:  # onnx2tf ends with sys.exit(1) on a model it cannot convert
        raise Failure("convert", f"onnx2tf exited with status {e.code}") from None
    tflite = os.path.join(work_dir, "model_float32.tflite")
    if not os.path.isfile(tflite):
        raise Failure("convert", "onnx2tf wrote no model_float32.tflite")
    # Which outputs onnx2tf left channel last: the Keras model it returns says so per ONNX output
    # (`onnx_output_layouts`); kept next to the .tflite for `run`.
    layouts = getattr(keras, "onnx_output_layouts", None)
    if isinstance(layouts, dict):
        with open(os.path.join(work_dir, LAYOUTS), "w") as f:
            json.dump({str(k): bool(v) for k, v in layouts.items()}, f)
    # The mapping checked: each input where the mapping says, with its dimensions permuted.
    session = load(tflite, {})
    details = session.runner.input_shapes()
    for i in inputs:
        key = signature_name(i.name)
        if key not in details:
            raise Failure("read", f"input {i.name!r} is not in the .tflite's signature {sorted(details)}")
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in i.type.tensor_type.shape.dim]
        perm = channel_last(len(dims))
        want = [dims[p] for p in perm] if perm else dims
        got = [int(d) for d in details[key]]
        if len(got) != len(want) or any(w > 0 and g > 0 and w != g for w, g in zip(want, got)):
            raise Failure("read", f"input {i.name!r} of ONNX shape {dims} is {got} in the .tflite, not {want} as onnx2tf documents")
    return tflite


class Session:
    def __init__(self, path):
        from ai_edge_litert.interpreter import Interpreter

        self.path = path
        self.interpreter = Interpreter(model_path=path, num_threads=1)
        # TensorFlow's converter writes no SignatureDef when it cannot save the Keras model as a
        # SavedModel (onnx2tf's grouped 1D Conv layers): the file is still a model, run through
        # the interpreter's tensors instead.
        signatures = self.interpreter.get_signature_list()
        self.runner = SignatureRunner(self.interpreter) if "serving_default" in signatures else TensorRunner(self.interpreter)


class SignatureRunner:
    """The `serving_default` signature: inputs and outputs by name, resized as fed."""

    def __init__(self, interpreter):
        self.runner = interpreter.get_signature_runner("serving_default")

    def input_shapes(self):
        return {k: v["shape_signature"] for k, v in self.runner.get_input_details().items()}

    def __call__(self, tensors):
        return self.runner(**tensors)


class TensorRunner:
    """A model without signatures: its input tensors found by name (onnx2tf keeps the ONNX
    names), its outputs in the order of the Keras model onnx2tf built, which is the ONNX
    graph's: TensorFlow names them Identity, Identity_1, … in that order."""

    def __init__(self, interpreter):
        self.interpreter = interpreter
        details = interpreter.get_input_details()
        self.inputs = {self.onnx_name(d["name"]): d for d in details}

        def position(detail):
            _, _, k = detail["name"].rpartition("_")
            return int(k) if k.isdigit() else 0

        self.outputs = sorted(interpreter.get_output_details(), key=position)

    @staticmethod
    def onnx_name(name):
        name = name.removeprefix("serving_default_")
        return name[:-2] if name.endswith(":0") else name

    def input_shapes(self):
        return {k: v["shape_signature"] for k, v in self.inputs.items()}

    def __call__(self, tensors):
        it = self.interpreter
        for key, array in tensors.items():
            detail = self.inputs.get(key)
            if detail is None:
                raise RuntimeError(f"input {key!r} is not among the .tflite's inputs {sorted(self.inputs)}")
            if list(detail["shape"]) != list(array.shape):
                it.resize_tensor_input(detail["index"], list(array.shape))
        it.allocate_tensors()
        for key, array in tensors.items():
            it.set_tensor(self.inputs[key]["index"], array)
        it.invoke()
        return {"__in_order__": [it.get_tensor(o["index"]) for o in self.outputs]}


def load(artifact, options):
    return Session(artifact)


def run(session, feeds):
    """Inputs fed channel last; outputs in the ONNX graph's order, each read back as
    `onnx_layout` says."""
    tensors = {}
    for name, array in feeds:
        perm = channel_last(array.ndim)
        tensors[signature_name(name)] = np.ascontiguousarray(array.transpose(perm) if perm else array)
    results = session.runner(tensors)
    expected = onnx_output_shapes(session, feeds)
    layouts = output_layouts(session)
    outputs = []
    names = output_order(session)
    if "__in_order__" in results:
        tensors = results["__in_order__"]
        if len(tensors) != len(names):
            raise RuntimeError(f"the .tflite has {len(tensors)} outputs, the ONNX model {len(names)}")
        return [
            np.ascontiguousarray(onnx_layout(y, expected.get(name), layouts.get(name)))
            for name, y in zip(names, tensors)
        ]
    for name in names:
        key = signature_name(name)
        if key not in results:
            raise RuntimeError(f"output {name!r} is not in the .tflite's signature {sorted(results)}")
        outputs.append(np.ascontiguousarray(onnx_layout(results[key], expected.get(name), layouts.get(name))))
    return outputs


def output_layouts(session):
    """{ONNX output name: whether onnx2tf left it channel last}, as recorded at conversion;
    empty for a .tflite converted without the record."""
    if not hasattr(session, "layouts"):
        path = os.path.join(os.path.dirname(session.path), LAYOUTS)
        try:
            with open(path) as f:
                session.layouts = json.load(f)
        except (OSError, ValueError):
            session.layouts = {}
    return session.layouts


def onnx_layout(y, shape, channel_last_output=None):
    """A TFLite output in the ONNX model's layout. onnx2tf documents only its inputs' layout;
    its outputs are channel last where it computed them so (after a Conv, a pool) and in ONNX
    order where it went back to it (after a Reshape, a Flatten, a Transpose). Which one an
    output is shows in its shape, when the ONNX output's shape for these inputs (`shape`,
    from ONNX shape inference) tells the two apart: the output is taken as it is when its
    shape is ONNX's, transposed when its channel-last permutation is. When both read the
    same (C = L) or inference gave no shape, onnx2tf's own record decides
    (`channel_last_output`, its Keras model's `onnx_output_layouts`, kept at conversion), and
    without one, channel last, the converter's default. The record alone is not trusted: it
    calls channel last the outputs of NLC models that never left ONNX order (an element-wise
    model on a `[N, L, C]` input), which the shape tells apart."""
    perm = channel_first(y.ndim)
    if perm is None:
        return y
    moved = tuple(y.shape[p] for p in perm)
    if shape is not None and moved != tuple(y.shape):
        return y if tuple(shape) == tuple(y.shape) else y.transpose(perm)
    if channel_last_output is not None:
        return y.transpose(perm) if channel_last_output else y
    return y.transpose(perm)


def onnx_output_shapes(session, feeds):
    """{output name: shape} of the ONNX model for the shapes of `feeds`, by ONNX shape
    inference (cached per input shapes); outputs it cannot tell are left out."""
    key = tuple((name, tuple(a.shape)) for name, a in feeds)
    cache = session.__dict__.setdefault("shapes", {})
    if key not in cache:
        import onnx

        try:
            proto = onnx.load(os.path.join(os.path.dirname(session.path), "model.onnx"))
            given = dict(key)
            for i in proto.graph.input:
                if i.name in given:
                    dims = i.type.tensor_type.shape.dim
                    for d, n in zip(dims, given[i.name]):
                        d.Clear()
                        d.dim_value = int(n)
            inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=False)
            shapes = {}
            for o in inferred.graph.output:
                dims = o.type.tensor_type.shape.dim
                if all(d.HasField("dim_value") for d in dims):
                    shapes[o.name] = tuple(d.dim_value for d in dims)
        except Exception:
            shapes = {}
        cache[key] = shapes
    return cache[key]


def output_order(session):
    """The ONNX graph's output names, in order (the signature lists them sorted)."""
    if not hasattr(session, "onnx_outputs"):
        import onnx

        path = os.path.join(os.path.dirname(session.path), "model.onnx")
        session.onnx_outputs = [o.name for o in onnx.load(path, load_external_data=False).graph.output]
    return session.onnx_outputs


def precision(session):
    return "f32"


def output_names(session):
    return output_order(session)
