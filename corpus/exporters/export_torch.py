"""Exports the reference PyTorch CNN1D (docs/corpus.md) with torch.onnx, as a user would.

Run from the repository root with a Python that has torch, onnx and numpy (not part of the
pinned test environment; the exported files are committed, so tests never need torch):

    python corpus/exporters/export_torch.py

Writes corpus/cnn1d_torch/ and corpus/cnn1d_torch_dyn/ (model.onnx, test_data_set_0 with the
input and PyTorch's own output, case.toml). Then run `cargo xtask bless` for golden/.

The reference model has Linear(32*48, 10) with an input of length 100; Conv1d(k=3) gives 98 and
MaxPool1d(2) gives 49, so that model would fail in PyTorch itself. This keeps the input and the
layers and uses Linear(32*49, 10). A few steps of SGD on a synthetic two-tone classification
task give the weights realistic scales; everything is seeded.
"""

import json
import os
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


class CNN1D(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(1, 32, kernel_size=3)
        self.pool = torch.nn.MaxPool1d(2)
        self.fc = torch.nn.Linear(32 * 49, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv(x)))
        x = x.view(x.size(0), -1)
        return self.fc(x)


def tones(n, rng):
    """n signals of length 100: class k is a tone of frequency (k+1)/50 plus noise."""
    labels = rng.integers(0, 10, size=n)
    t = np.arange(100)
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    x = np.sin(2 * np.pi * (labels[:, None] + 1) / 50.0 * t + phase)
    x += 0.2 * rng.standard_normal((n, 100))
    return x[:, None, :].astype(np.float32), labels


def train(model):
    rng = np.random.default_rng(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(30):
        x, y = tones(64, rng)
        loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss)


def write_case(name, model, x, dynamic, represents):
    d = os.path.join(ROOT, name)
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    path = os.path.join(d, "model.onnx")
    kwargs = {}
    if dynamic:
        batch = torch.export.Dim("N")
        kwargs["dynamic_shapes"] = {"x": {0: batch}}
    torch.onnx.export(
        model, (torch.from_numpy(x),), path, input_names=["input"], output_names=["output"],
        opset_version=17, dynamo=True, external_data=False, **kwargs,
    )
    m = onnx.load(path)
    onnx.checker.check_model(m)
    with torch.no_grad():
        y = model(torch.from_numpy(x)).numpy()
    for kind, name_, arr in (("input", "input", x), ("output", "output", y)):
        t = numpy_helper.from_array(arr, name_)
        with open(os.path.join(d, "test_data_set_0", f"{kind}_0.pb"), "wb") as f:
            f.write(t.SerializeToString())
    graph_in = m.graph.input[0]
    declared = [
        dim.dim_param if dim.HasField("dim_param") else str(dim.dim_value)
        for dim in graph_in.type.tensor_type.shape.dim
    ]
    opset = next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    q = json.dumps  # a JSON string is a valid TOML basic string
    toml = "\n".join([
        f"name = {q(name)}",
        f"represents = {q(represents)}",
        "source = " + q(f"reference model; exported by torch.onnx.export (torch {torch.__version__}, "
                        "dynamo exporter) from corpus/exporters/export_torch.py"),
        "made_by = " + q("corpus/exporters/export_torch.py: 30 seeded SGD steps on a synthetic "
                         "tone task, then torch.onnx.export; output_0.pb is PyTorch's own output"),
        f"opset = {opset}",
        'tolerance = "bound"',
        "",
        "[[inputs]]",
        f"name = {q(graph_in.name)}",
        f"declared = {json.dumps(declared)}",
        f"fed = {json.dumps(list(x.shape))}",
        "",
    ])
    with open(os.path.join(d, "case.toml"), "w") as f:
        f.write(toml)
    print("wrote", d, "ops:", sorted({n.op_type for n in m.graph.node}))


def main():
    torch.manual_seed(0)
    model = CNN1D()
    loss = train(model)
    model.eval()
    print(f"training loss after 30 steps: {loss:.3f}", file=sys.stderr)
    rng = np.random.default_rng(1)
    x1, _ = tones(1, rng)
    x3, _ = tones(3, rng)
    what = "the reference PyTorch CNN1D (Conv1d 1->32 k3, ReLU, MaxPool1d 2, Linear -> 10) as torch.onnx exports it"
    write_case("cnn1d_torch", model, x1, False, what)
    write_case("cnn1d_torch_dyn", model, x3, True, what + ", symbolic batch")


if __name__ == "__main__":
    main()
