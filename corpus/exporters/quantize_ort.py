"""Quantizes two corpus architectures with onnxruntime's static quantization tool, as a user would.

Run from anywhere with the project's Python environment (onnxruntime and onnx are pinned in
harness/python/requirements.txt):

    .venv/bin/python corpus/exporters/quantize_ort.py

For each case below it reads corpus/NAME/model.onnx, calibrates it with
onnxruntime.quantization.quantize_static on a CalibrationDataReader of a few seeded random
inputs of the model's input shape, and writes corpus/NAME_qdq/ (model.onnx,
test_data_set_0/input_0.pb, case.toml). Then run `cargo xtask bless` for golden/.

The quantization is the tool's, unchanged: QDQ format, MinMax calibration, uint8 activations
(asymmetric) and int8 weights (symmetric), everything else at its default but reduce_range. The
types are passed explicitly: onnxruntime 1.32.0's default activation type is int8, and its own
guidance for x86 CPUs is uint8 activations with int8 weights. ds_cnn_kws gets one weight scale
per output channel (per_channel=True), m5 one per tensor.

reduce_range=True (7-bit weights) is the tool's documented setting for x86 CPUs without VNNI,
whose uint8 x int8 kernels otherwise saturate their int16 pair sums (docs/FINDINGS.md, finding
46): with it the models compute the same on every x86 CPU, so the corpus verdicts of
onnxruntime do not depend on the machine.

quant_pre_process (onnxruntime.quantization.shape_inference) is not run: the models have static
shapes and only operators the quantizer knows, and quantize_static quantizes them without it
(it logs that pre-processing is recommended). So the BatchNormalization layers stay, quantized
as the tool quantizes them (int8 scale, int32 bias), and the Relus that follow a quantized
tensor are removed by the tool (uint8 activations clamp at the zero point).

Deterministic: the inputs come from numpy's default_rng with fixed seeds, calibration runs the
CPU execution provider, and a second run writes byte-identical files.
"""

import json
import os
import sys

import numpy as np
import onnx
import onnxruntime
from onnx import numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

CALIBRATION_INPUTS = 8

# (source case, per_channel, seed, what the source represents in a few words)
CASES = [
    ("ds_cnn_kws", True, 101, "the KWS DS-CNN of corpus/ds_cnn_kws"),
    ("m5", False, 102, "the M5 raw-audio classifier of corpus/m5"),
]


class SeededReader(CalibrationDataReader):
    """A few standard-normal inputs of the model's (static) input shape, from a fixed seed."""

    def __init__(self, name, shape, rng, count):
        self.batches = [
            {name: rng.standard_normal(shape).astype(np.float32)} for _ in range(count)
        ]
        self.pos = 0

    def get_next(self):
        if self.pos >= len(self.batches):
            return None
        self.pos += 1
        return self.batches[self.pos - 1]

    def rewind(self):
        self.pos = 0


def graph_input(model):
    inits = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        sys.exit(f"expected one graph input, got {[i.name for i in inputs]}")
    return inputs[0]


def declared_dims(value_info):
    return [
        d.dim_param if d.HasField("dim_param") else str(d.dim_value)
        for d in value_info.type.tensor_type.shape.dim
    ]


def quantize_case(source, per_channel, seed, what):
    name = f"{source}_qdq"
    src_path = os.path.join(ROOT, source, "model.onnx")
    src = onnx.load(src_path)
    inp = graph_input(src)
    dims = declared_dims(inp)
    if not all(d.isdigit() for d in dims):
        sys.exit(f"{source}: the input shape must be static, got {dims}")
    shape = [int(d) for d in dims]

    rng = np.random.default_rng(seed)
    reader = SeededReader(inp.name, shape, rng, CALIBRATION_INPUTS)
    # The test input: the next draw of the same stream, not one of the calibration inputs.
    x = rng.standard_normal(shape).astype(np.float32)

    d = os.path.join(ROOT, name)
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    out_path = os.path.join(d, "model.onnx")
    quantize_static(
        src_path,
        out_path,
        reader,
        quant_format=QuantFormat.QDQ,
        per_channel=per_channel,
        reduce_range=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        calibration_providers=["CPUExecutionProvider"],
    )
    m = onnx.load(out_path)
    onnx.checker.check_model(m, full_check=True)

    t = numpy_helper.from_array(x, inp.name)
    with open(os.path.join(d, "test_data_set_0", "input_0.pb"), "wb") as f:
        f.write(t.SerializeToString())

    opset = next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    others = sorted(f"{o.domain} {o.version}" for o in m.opset_import if o.domain not in ("", "ai.onnx"))
    if others:
        sys.exit(f"{name}: the quantized model imports other domains: {others}")
    weights = "per output channel (per_channel=True)" if per_channel else "per tensor (per_channel=False)"
    q = json.dumps  # a JSON string is a valid TOML basic string
    toml = "\n".join([
        f"name = {q(name)}",
        f"represents = {q(what + ', quantized by onnxruntime quantize_static: QDQ, uint8 activations, int8 weights ' + weights)}",
        "source = " + q(f"corpus/{source}/model.onnx, quantized by onnxruntime.quantization.quantize_static "
                        f"(onnxruntime {onnxruntime.__version__}, onnx {onnx.__version__})"),
        "made_by = " + q(f"corpus/exporters/quantize_ort.py (onnxruntime {onnxruntime.__version__}): "
                         f"quantize_static, QuantFormat.QDQ, MinMax calibration on {CALIBRATION_INPUTS} "
                         f"standard-normal inputs from numpy default_rng({seed}), activation_type=QUInt8, "
                         f"weight_type=QInt8, per_channel={per_channel}, reduce_range=True, no "
                         "quant_pre_process; the input is the stream's next draw"),
        f"opset = {opset}",
        'tolerance = "bound"',
        "",
        "[[inputs]]",
        f"name = {q(inp.name)}",
        f"declared = {json.dumps(declared_dims(graph_input(m)))}",
        f"fed = {json.dumps(shape)}",
        "",
    ])
    with open(os.path.join(d, "case.toml"), "w") as f:
        f.write(toml)
    counts = {}
    for n in m.graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    print(f"wrote {os.path.normpath(d)}: opset {opset}, ops {dict(sorted(counts.items()))}")


def main():
    for source, per_channel, seed, what in CASES:
        quantize_case(source, per_channel, seed, what)


if __name__ == "__main__":
    main()
