#!/usr/bin/env python3
"""Standalone reproduction of one failure of a 1D CNN conversion, outside the harness.

Needs numpy, onnx and the failing stack's own Python package (STACK below: openvino,
onnxruntime, tract for tract's Python bindings, or "plugin": the stack module in stacks/ here,
with the packages of requirements.txt). It loads the model and inputs next to this
file, converts and runs them as the harness did (same converter call, same precision hint, one
thread), compares the outputs with the expected ones within the tolerance the harness used,
prints the worst elements and exits 1 while the failure is there (a hang: no result within the
run's timeout), 0 once it is gone.

The expected outputs (test_data_set_0/output_J.pb) come from an f64 reference evaluation of the
ONNX spec; bound_J.pb holds, per element, the error a correct implementation computing in
precision u may make, in units of u (the tolerance is factor * u * bound, plus twice the
smallest normal float32 for results near underflow). When the conversion stores the weights in
f16 (OpenVINO's `ovc` default), bound16_J.pb holds the bounds for a computation in f32 on
weights rounded to f16.
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

CONFIG = json.loads(r"""@CONFIG@""")
STACK = CONFIG["stack"]
HERE = os.path.dirname(os.path.abspath(__file__))
UNIT_ROUNDOFF = {"f32": 2.0**-24, "f16": 2.0**-11, "bf16": 2.0**-8}
TINY = float(np.finfo(np.float32).tiny)


class Refused(Exception):
    """The stack refused the model at a stage (convert, compile, run)."""

    def __init__(self, stage, error):
        # tract's errors carry a Rust backtrace when RUST_BACKTRACE is set; the cause chain is
        # what a report needs.
        text = str(error).split("\nStack backtrace:")[0].strip()
        super().__init__(f"{type(error).__name__}: {text}")
        self.stage = stage


def read_tensor(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def numbered(prefix, directory):
    found = []
    while os.path.exists(os.path.join(directory, f"{prefix}_{len(found)}.pb")):
        found.append(read_tensor(os.path.join(directory, f"{prefix}_{len(found)}.pb")))
    return found


def feeds(model_path, inputs):
    """(name, array) for each graph input that is not an initializer, in order."""
    graph = onnx.load(model_path, load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    names = [i.name for i in graph.input if i.name not in inits]
    return list(zip(names, inputs))


def attempt(stage, fn):
    try:
        return fn()
    except Exception as e:  # the stack's own error types differ per package
        raise Refused(stage, e) from e


def run_openvino(model_path, inputs):
    import openvino as ov

    core = ov.Core()
    model = attempt("convert", lambda: ov.convert_model(model_path))
    with tempfile.TemporaryDirectory() as work:
        xml = os.path.join(work, "model.xml")
        attempt("convert", lambda: ov.save_model(model, xml, compress_to_fp16=CONFIG["compress_to_fp16"]))
        ir = attempt("convert", lambda: core.read_model(xml))
        config = {"INFERENCE_NUM_THREADS": 1}
        if CONFIG["precision_hint"]:
            config["INFERENCE_PRECISION_HINT"] = CONFIG["precision_hint"]
        compiled = attempt("compile", lambda: core.compile_model(ir, "CPU", config))
    hint = str(compiled.get_property("INFERENCE_PRECISION_HINT")).lower()
    precision = next((p for key, p in (("bf16", "bf16"), ("bfloat16", "bf16"), ("f16", "f16"), ("float16", "f16")) if key in hint), "f32")
    request = compiled.create_infer_request()
    attempt("run", lambda: request.infer(dict(feeds(model_path, inputs))))
    outputs = [request.get_output_tensor(i).data.copy() for i in range(len(compiled.outputs))]
    return outputs, precision


def run_onnxruntime(model_path, inputs):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    session = attempt("compile", lambda: ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"]))
    outputs = attempt("run", lambda: session.run(None, dict(feeds(model_path, inputs))))
    return outputs, "f32"


TRACT_TYPES = {"float32": "f32", "float64": "f64", "float16": "f16", "int64": "i64", "int32": "i32", "int8": "i8", "uint8": "u8", "bool": "bool"}


def tract_model(model_path, inputs):
    """The ONNX model in tract with the fed shapes fixed, typed, as the harness loads it."""
    import tract

    model = attempt("convert", lambda: tract.onnx().load(model_path))
    for i, a in enumerate(inputs):
        fact = ",".join([str(d) for d in a.shape] + [TRACT_TYPES[str(a.dtype)]])
        attempt("convert", lambda: model.set_input_fact(i, fact))
    return attempt("convert", model.into_model)


def run_tract(model_path, inputs):
    runnable = attempt("compile", tract_model(model_path, inputs).into_runnable)
    outputs = attempt("run", lambda: runnable.run([np.ascontiguousarray(a) for a in inputs]))
    return [o.to_numpy() for o in outputs], "f32"


def run_tract_nnef(model_path, inputs):
    import tract

    # As a converter, the round trip sees the model alone: its symbolic dimensions stay so.
    typed = attempt("convert", lambda: tract.onnx().load(model_path).into_model())
    with tempfile.TemporaryDirectory() as work:
        tar = os.path.join(work, "model.nnef.tar")
        attempt("convert", lambda: tract.nnef().with_onnx().write_model_to_tar(typed, tar))
        reloaded = attempt("convert", lambda: tract.nnef().with_onnx().load(tar))
    runnable = attempt("compile", reloaded.into_runnable)
    outputs = attempt("run", lambda: runnable.run([np.ascontiguousarray(a) for a in inputs]))
    return [o.to_numpy() for o in outputs], "f32"


def run_plugin(model_path, inputs):
    """With the stack's own module, carried in stacks/ beside this script (as the harness's
    workers ran it): convert, load, run, with the options of the variant the harness used."""
    import importlib

    sys.path.insert(0, HERE)
    module = importlib.import_module(f"stacks.{CONFIG['plugin']}")
    options = dict(module.VARIANTS[CONFIG["variant"]], threads=1)

    def staged(name, fn):
        try:
            return fn()
        except Refused:
            raise
        except Exception as e:
            # The module's own failures name their stage ("read": its artifact does not load).
            raise Refused("convert" if getattr(e, "stage", name) in ("convert", "read") else getattr(e, "stage", name), e) from e

    with tempfile.TemporaryDirectory() as work:
        artifact = model_path
        if callable(getattr(module, "convert", None)):
            artifact = staged("convert", lambda: module.convert(model_path, work, options))
        session = staged("compile", lambda: module.load(artifact, options))
        outputs = staged("run", lambda: module.run(session, feeds(model_path, inputs)))
        return [np.asarray(o) for o in outputs], module.precision(session)


RUNNERS = {
    "plugin": run_plugin,
    "openvino": run_openvino,
    "onnxruntime": run_onnxruntime,
    "tract": run_tract,
    "tract-nnef": run_tract_nnef,
}


def tolerance(golden, bound, u):
    policy = CONFIG["tolerance"]
    if policy["policy"] == "bound" and bound is not None:
        return policy["factor"] * u * bound + 2.0 * TINY
    fixed = policy if policy["policy"] == "fixed" else CONFIG["fallback"]
    return fixed["atol"] + fixed["rtol"] * np.abs(golden)


def judge(expected, bounds, actual, u):
    """The verdict the harness gives, and the worst elements as printable rows."""
    if len(expected) != len(actual):
        return "shape-mismatch", [f"expected {len(expected)} outputs, got {len(actual)}"]
    for j, (e, a) in enumerate(zip(expected, actual)):
        a = np.asarray(a)
        if e.shape != a.shape:
            return "shape-mismatch", [f"output {j}: expected shape {list(e.shape)}, got {list(a.shape)}"]
    rows, verdict = [], "pass"
    for j, (e, a) in enumerate(zip(expected, actual)):
        g = e.astype(np.float64).ravel()
        x = np.asarray(a).astype(np.float64).ravel()
        same_special = (np.isnan(g) & np.isnan(x)) | (g == x)
        bad_special = (np.isfinite(g) != np.isfinite(x)) | (~np.isfinite(g) & ~same_special)
        if bad_special.any():
            i = int(np.argmax(bad_special))
            return "non-finite", [f"output {j}[{i}]: expected {g[i]!r}, got {x[i]!r}"]
        b = bounds[j].astype(np.float64).ravel() if j < len(bounds) and bounds[j].size == g.size else None
        allowed = tolerance(g, b, u) * np.ones_like(g)
        diff = np.abs(x - g)
        ratio = np.where(allowed > 0, diff / np.where(allowed > 0, allowed, 1.0), np.where(diff > 0, np.inf, 0.0))
        if (diff > allowed).any():
            verdict = "mismatch"
        for i in np.argsort(-ratio, kind="stable")[:5]:
            if diff[i] > 0:
                rows.append((ratio[i], f"output {j}[{i}]: expected {g[i]:.9g}, got {x[i]:.9g}, |diff| {diff[i]:.3e}, tolerance {allowed[i]:.3e} ({ratio[i]:.3g}x)"))
    rows.sort(key=lambda r: -r[0])
    return verdict, [text for _, text in rows[:5]]


def worst_ratio(expected, bounds, actual, u):
    """The largest |actual - expected| / tolerance over every element."""
    worst = 0.0
    for j, (e, a) in enumerate(zip(expected, actual)):
        g = e.astype(np.float64).ravel()
        x = np.asarray(a).astype(np.float64).ravel()
        b = bounds[j].astype(np.float64).ravel() if j < len(bounds) and bounds[j].size == g.size else None
        allowed = tolerance(g, b, u) * np.ones_like(g)
        finite = np.isfinite(g)
        diff = np.abs(x - g)[finite]
        allowed = allowed[finite]
        if diff.size:
            ratio = np.where(allowed > 0, diff / np.where(allowed > 0, allowed, 1.0), np.where(diff > 0, np.inf, 0.0))
            worst = max(worst, float(ratio.max()))
    return worst


def drift(expected, bounds, actual, u, inputs):
    """Within tolerance: the failure was drift, judged against the same runtime on the
    unconverted model (model.onnx), as the harness judges it (docs/verdicts.md)."""
    rule = CONFIG["drift"]
    converted = worst_ratio(expected, bounds, actual, u)
    try:
        reference_out, _ = RUNNERS[CONFIG["reference"]](os.path.join(HERE, "model.onnx"), inputs)
    except Refused as e:
        print(f"the unconverted model does not run for the comparison ({e}): nothing to judge")
        return 0
    reference = worst_ratio(expected, bounds, reference_out, u)
    print(f"worst error {converted:.3e} of the tolerance; {CONFIG['reference']} on the unconverted model: {reference:.3e}")
    if converted >= rule["floor"] and converted > rule["factor"] * reference:
        print(f"still failing (drift: beyond {rule['factor']:g} times the reference and {rule['floor']:g} of the tolerance; the harness saw {CONFIG['verdict']})")
        return 1
    print(f"passes: the drift is gone (the harness saw {CONFIG['verdict']})")
    return 0


def main():
    data = os.path.join(HERE, "test_data_set_0")
    inputs = numbered("input", data)
    expected = numbered("output", data)
    bounds = numbered("bound", HERE)
    model_path = os.path.join(HERE, CONFIG["model"])
    print(f"{CONFIG['title']}")
    print(f"stack: {STACK} ({CONFIG['converter']} on {CONFIG['runtime']}), model: {CONFIG['model']}")
    try:
        actual, precision = RUNNERS[STACK](model_path, inputs)
    except Refused as e:
        if CONFIG["negative"]:
            print(f"refused, as the spec requires of this invalid model: {e}")
            return 0
        print(f"refused a valid model at {e.stage}: {e}")
        print(f"still failing ({'convert' if e.stage == 'convert' else 'runtime'}-rejected; the harness saw {CONFIG['verdict']})")
        return 1
    if CONFIG["negative"]:
        print(f"accepted and ran a model the spec forbids ({CONFIG['negative']})")
        print(f"still failing (invalid-accepted; the harness saw {CONFIG['verdict']})")
        return 1
    u = UNIT_ROUNDOFF.get(precision, UNIT_ROUNDOFF["f32"])
    if CONFIG["compress_to_fp16"] and precision == "f32":
        # The weights were rounded to f16 by the conversion: their bounds allow it.
        bounds = numbered("bound16", HERE)
    verdict, rows = judge(expected, bounds, actual, u)
    print(f"precision: {precision}, tolerance policy: {CONFIG['tolerance']['policy']}")
    for row in rows:
        print("  " + row)
    if verdict == "pass" and CONFIG.get("drift"):
        return drift(expected, bounds, actual, u, inputs)
    if verdict == "pass":
        print(f"passes: the failure is gone (the harness saw {CONFIG['verdict']})")
        return 0
    print(f"still failing ({verdict}; the harness saw {CONFIG['verdict']})")
    return 1


def main_with_timeout():
    """Runs main() in a child process: a stack that hangs inside its native code cannot be
    interrupted from within, only killed. REPRO_TIMEOUT (seconds) overrides the run's timeout."""
    timeout = float(os.environ.get("REPRO_TIMEOUT", CONFIG["timeout_s"]))
    try:
        code = subprocess.run([sys.executable, os.path.abspath(__file__), "--in-child"], timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        print(f"no result after {timeout:g} s: killed")
        print(f"still failing (timeout; the harness saw {CONFIG['verdict']})")
        return 1
    if code in (0, 1):
        return code
    # A stack that aborts the process (a Rust panic across tract's C interface, a segfault in
    # native code) never returns to main(): the crash is the failure, still there.
    how = f"signal {-code}" if code < 0 else f"exit status {code}"
    sys.stdout.flush()
    print(f"the stack ended the process ({how})")
    print(f"still failing (crash; the harness saw {CONFIG['verdict']})")
    return 1


if __name__ == "__main__":
    sys.exit(main() if "--in-child" in sys.argv else main_with_timeout())
