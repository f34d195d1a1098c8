#!/usr/bin/env python3
"""The harness against a hand-written Python loop, one thread each, on the same models.

The loop is what one would write without the harness: for each model, onnx.reference computes
the expected outputs, onnxruntime runs the model, np.allclose compares. The harness generates
the same cases (same seed and indices), computes its f64 oracle and judges with error bounds,
once on tract and once on onnxruntime (`--jobs 1`). Each side is timed as a whole command, from
start to exit, as a user runs it: the loop as `python side_by_side.py --loop DIR` (interpreter
start and imports included), the harness as `harness conformance` (its start, the Python
worker's start for onnxruntime, and its reports included). The loop reads models emitted
beforehand (emitting them is not counted against it). The loop's rate without its start-up is
printed too.

    .venv/bin/python scripts/side_by_side.py [--cases 300] [--seed 9] [--rounds 3]

Needs the harness built (`cargo build --profile fast -p harness-cli`, or --harness PATH) and
the project's .venv (numpy, onnx, onnxruntime). Prints cases/s per side and the ratios; the
rounds alternate the sides so that a change in the machine's load falls on all of them.
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python_loop(case_dirs):
    """The hand-written loop; returns (cases, seconds without the imports, failures)."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    start = time.perf_counter()
    failures = 0
    for d in case_dirs:
        model = onnx.load(os.path.join(d, "model.onnx"))
        feeds = {}
        names = [i.name for i in model.graph.input]
        inits = {i.name for i in model.graph.initializer}
        names = [n for n in names if n not in inits]
        for k, name in enumerate(names):
            t = onnx.TensorProto()
            with open(os.path.join(d, "test_data_set_0", f"input_{k}.pb"), "rb") as f:
                t.ParseFromString(f.read())
            feeds[name] = numpy_helper.to_array(t)
        try:
            expected = ReferenceEvaluator(model).run(None, feeds)
        except Exception:
            failures += 1
            continue
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        try:
            session = ort.InferenceSession(
                model.SerializeToString(), so, providers=["CPUExecutionProvider"]
            )
            got = session.run(None, feeds)
        except Exception:
            failures += 1
            continue
        if not all(
            e.shape == g.shape and np.allclose(g, e, rtol=1e-4, atol=1e-5)
            for e, g in zip(expected, got)
        ):
            failures += 1
    return len(case_dirs), time.perf_counter() - start, failures


def loop_command(cases_dir):
    """The loop as a command of its own; returns (cases, whole seconds, seconds inside)."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--loop", cases_dir],
        check=True, capture_output=True, text=True,
    )
    whole = time.perf_counter() - start
    n, inside = out.stdout.split()
    return int(n), whole, float(inside)


def harness_run(harness, cases, seed, runtime, report):
    """One thread of the harness; returns (results, seconds)."""
    cmd = [
        harness, "conformance", "--no-corpus", "--cases", str(cases), "--seed", str(seed),
        "--converter", "identity", "--runtime", runtime, "--jobs", "1",
        "--max-bundles", "0", "--report", report,
    ]
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    seconds = time.perf_counter() - start
    with open(os.path.join(report, "report.json")) as f:
        return len(json.load(f)["results"]), seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--seed", type=int, default=9)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--harness", default=os.path.join(ROOT, "target", "fast", "harness"))
    ap.add_argument("--loop", metavar="DIR", help="run only the loop on DIR's case directories")
    a = ap.parse_args()
    if a.loop:
        import warnings

        warnings.simplefilter("ignore")
        dirs = sorted(os.path.join(a.loop, d) for d in os.listdir(a.loop))
        n, seconds, _ = python_loop(dirs)
        print(n, seconds)
        return
    if not os.path.isfile(a.harness):
        sys.exit(f"{a.harness}: not built (cargo build --profile fast -p harness-cli)")
    os.environ.setdefault("HARNESS_PYTHON", sys.executable)
    with tempfile.TemporaryDirectory() as tmp:
        dirs = []
        for i in range(a.cases):
            d = os.path.join(tmp, "cases", f"i{i}")
            # `emit` refuses the negative cases (invalid models, which the harness checks are
            # refused): the loop has no way to judge them and runs the valid ones only.
            emitted = subprocess.run(
                [a.harness, "emit", "--seed", str(a.seed), "--index", str(i), d],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            if emitted.returncode == 0:
                dirs.append(d)
        rates = {"python loop": [], "harness on tract": [], "harness on onnxruntime": []}
        inside = []
        for r in range(a.rounds):
            n, whole, within = loop_command(os.path.join(tmp, "cases"))
            rates["python loop"].append(n / whole)
            inside.append(n / within)
            for runtime, label in (("tract", "harness on tract"),
                                   ("onnxruntime", "harness on onnxruntime")):
                n, s = harness_run(a.harness, a.cases, a.seed, runtime,
                                   os.path.join(tmp, f"{runtime}-{r}"))
                rates[label].append(n / s)
        loop = sorted(rates["python loop"])[len(rates["python loop"]) // 2]
        print(f"{a.cases} cases of seed {a.seed} ({len(dirs)} valid, the loop's), one thread each, "
              f"whole commands, median of {a.rounds} rounds")
        for label, xs in rates.items():
            median = sorted(xs)[len(xs) // 2]
            print(f"  {label:<24} {median:8.1f} cases/s  {median / loop:5.2f}x the loop"
                  f"   (rounds: {', '.join(f'{x:.0f}' for x in xs)})")
        within = sorted(inside)[len(inside) // 2]
        print(f"  (the loop without its interpreter start and imports: {within:.1f} cases/s)")


if __name__ == "__main__":
    main()
