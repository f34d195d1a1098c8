"""onnxruntime's CPU execution provider: runs ONNX as given (no convert()), one intra-op thread.

The plugin interface every file of this directory follows is described in
harness/python/stacks/README.md.
"""

import numpy as np

RUNTIME = "onnxruntime"
VARIANTS = {"": {}}


def version():
    import onnxruntime

    return onnxruntime.__version__


class Session:
    def __init__(self, model, options):
        import onnxruntime as ort

        from . import stage

        so = ort.SessionOptions()
        so.intra_op_num_threads = int(options.get("threads", 1))
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        # `model` is a path or the model's bytes; InferenceSession takes either.
        self.session = stage("compile", lambda: ort.InferenceSession(model, so, providers=["CPUExecutionProvider"]))
        self.names = [o.name for o in self.session.get_outputs()]


def load(artifact, options):
    return Session(artifact, options)


def run(session, feeds):
    return session.session.run(None, dict(feeds))


def precision(session):
    return "f32"


def output_names(session):
    return session.names


def bind(session, feeds):
    """A call that runs one inference on `feeds`, bound once, outputs left in place."""
    binding = session.session.io_binding()
    session.bound = [np.ascontiguousarray(array) for _, array in feeds]
    for (name, _), array in zip(feeds, session.bound):
        binding.bind_cpu_input(name, array)
    for name in session.names:
        binding.bind_output(name)
    return lambda: session.session.run_with_iobinding(binding)
