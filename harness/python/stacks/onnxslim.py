"""onnxslim: an ONNX-to-ONNX optimizer (constant folding, dead-code removal, fusions of
Conv/BatchNormalization/Pad/Gemm and others). Its artifact is ONNX (RUNTIME = None), run by the
run's `--runtime` and checked for drift against the unconverted model.

The plugin interface every file of this directory follows is described in
harness/python/stacks/README.md.
"""

import os

RUNTIME = None
VARIANTS = {"": {}}


def version():
    import onnxslim

    return onnxslim.__version__


def convert(model, work_dir, options):
    """`onnxslim.slim` on the model with its default options, as its command line runs it."""
    import onnx
    import onnxslim

    slimmed = onnxslim.slim(onnx.load(model))
    if slimmed is None:
        raise RuntimeError("onnxslim.slim returned no model")
    out = os.path.join(work_dir, "slim.onnx")
    onnx.save(slimmed, out)
    return out
