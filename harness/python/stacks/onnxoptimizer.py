"""onnxoptimizer: ONNX's own graph optimizer, with its default passes (eliminations and fusions:
fuse_bn_into_conv, fuse_pad_into_conv, fuse_pad_into_pool, fuse_add_bias_into_conv,
fuse_matmul_add_bias_into_gemm, …). Its artifact is ONNX (RUNTIME = None), run by the run's
`--runtime` and checked for drift against the unconverted model.

The plugin interface every file of this directory follows is described in
harness/python/stacks/README.md. Variants: `onnxoptimizer` (the default passes, as
`python -m onnxoptimizer` runs them) and `onnxoptimizer:fixed` (the same to a fixed point).
"""

import os

RUNTIME = None
VARIANTS = {"": {"fixed_point": False}, "fixed": {"fixed_point": True}}


def version():
    import onnxoptimizer

    return getattr(onnxoptimizer, "__version__", "unknown")


def convert(model, work_dir, options):
    import onnx
    import onnxoptimizer

    optimized = onnxoptimizer.optimize(onnx.load(model), fixed_point=bool(options.get("fixed_point")))
    out = os.path.join(work_dir, "optimized.onnx")
    onnx.save(optimized, out)
    return out
