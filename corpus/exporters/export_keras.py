"""Exports the reference Keras Conv1D model (docs/corpus.md) with tf2onnx, as a user would.

Run from the repository root with a Python that has tensorflow, tf2onnx, onnx and numpy (not
part of the pinned test environment; the exported files are committed):

    python corpus/exporters/export_keras.py

Writes corpus/keras_conv1d_tf2onnx/ (batch 1) and corpus/keras_conv1d_tf2onnx_dyn/ (symbolic
batch): model.onnx, test_data_set_0 with the input and Keras's own output, case.toml. Then run
`cargo xtask bless` for golden/. The model: Input (100, 1), Conv1D(32, 3, relu),
MaxPooling1D(2), Flatten, Dense(10, softmax), fitted for a few seeded steps on a synthetic tone
task so that weights and activations have realistic scales. tf2onnx writes the 1D layers as
2D Conv and MaxPool between Unsqueeze/Reshape and Squeeze, in [N, L, C] data layout.
"""

import json
import os

import numpy as np
import onnx
import tensorflow as tf
import tf2onnx
from onnx import numpy_helper

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def tones(n, rng):
    """n signals of length 100 in [N, L, C]: class k is a tone of frequency (k+1)/50 plus noise."""
    labels = rng.integers(0, 10, size=n)
    t = np.arange(100)
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    x = np.sin(2 * np.pi * (labels[:, None] + 1) / 50.0 * t + phase)
    x += 0.2 * rng.standard_normal((n, 100))
    return x[:, :, None].astype(np.float32), labels


def write_case(name, model, x, batch, represents):
    spec = (tf.TensorSpec((batch, 100, 1), tf.float32, name="input_1"),)

    @tf.function(input_signature=spec)
    def forward(inp):
        return model(inp)

    proto, _ = tf2onnx.convert.from_function(forward, input_signature=spec, opset=13)
    onnx.checker.check_model(proto)
    d = os.path.join(ROOT, name)
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    onnx.save(proto, os.path.join(d, "model.onnx"))
    y = model(x).numpy()
    for kind, arr in (("input", x), ("output", y)):
        t = numpy_helper.from_array(arr, proto.graph.input[0].name if kind == "input" else proto.graph.output[0].name)
        with open(os.path.join(d, "test_data_set_0", f"{kind}_0.pb"), "wb") as f:
            f.write(t.SerializeToString())
    graph_in = proto.graph.input[0]
    declared = [
        dim.dim_param if dim.HasField("dim_param") else str(dim.dim_value)
        for dim in graph_in.type.tensor_type.shape.dim
    ]
    q = json.dumps  # a JSON string is a valid TOML basic string
    toml = "\n".join([
        f"name = {q(name)}",
        f"represents = {q(represents)}",
        "source = " + q(f"reference model; exported by tf2onnx {tf2onnx.__version__} from TensorFlow "
                        f"{tf.__version__} (corpus/exporters/export_keras.py)"),
        "made_by = " + q("corpus/exporters/export_keras.py: 20 seeded training steps on a synthetic "
                         "tone task, then tf2onnx.convert.from_function; output_0.pb is Keras's own output"),
        "opset = 13",
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
    print("wrote", d, "ops:", [n.op_type for n in proto.graph.node])


def main():
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([
        tf.keras.Input((100, 1), name="input_1"),
        tf.keras.layers.Conv1D(32, 3, activation="relu"),
        tf.keras.layers.MaxPooling1D(2),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=tf.keras.optimizers.SGD(0.05, momentum=0.9),
                  loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x, y = tones(20 * 32, rng)
    model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    rng = np.random.default_rng(1)
    x1, _ = tones(1, rng)
    x2, _ = tones(2, rng)
    what = ("the reference Keras Conv1D model (Conv1D 32 k3 relu, MaxPooling1D 2, Flatten, "
            "Dense 10 softmax) in [N, L, C] layout as tf2onnx exports it")
    write_case("keras_conv1d_tf2onnx", model, x1, 1, what)
    write_case("keras_conv1d_tf2onnx_dyn", model, x2, None, what + ", symbolic batch")


if __name__ == "__main__":
    main()
