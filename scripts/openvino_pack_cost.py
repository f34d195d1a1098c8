#!/usr/bin/env python3
"""What packing can save on OpenVINO at most: its own stages, per case, alone and merged.

A packed run (`harness conformance --pack K`) pays OpenVINO's convert and compile once per
merged model instead of once per case. How much that saves depends on how much of the cost
is fixed per model and how much grows with the nodes: this script measures it without the
harness in the way. It emits generated cases of one opset (`harness emit --opset`), merges
them K at a time with onnx.compose (names prefixed, inputs and outputs kept apart, as the
harness merges them), and times OpenVINO's stages as the harness's worker calls them
(convert_model, save_model without FP16 compression, read_model, compile_model for CPU with
the f32 hint and one thread, one inference) on the cases alone and on the packs, in
alternating rounds, after a warm-up (the CPU plugin is faster once it has compiled similar
kernels, as in a long-lived worker).

    .venv/bin/python scripts/openvino_pack_cost.py [--cases 64] [--seed 1] [--opset 15] [--rounds 3]

Prints, per round, the milliseconds per case alone and at each K and the ratios. The ratio at
the largest K bounds what packing can gain on this stage: a run also runs alone every case
that does not pass in its pack, and negative cases.
"""

import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time

# As the worker does (harness/python/worker.py): without this, convert_model forks a
# telemetry process per event, which costs more than the conversion.
sys.modules["openvino_telemetry"] = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_case(d):
    import onnx
    from onnx import numpy_helper

    model = onnx.load(os.path.join(d, "model.onnx"))
    inits = {i.name for i in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in inits]
    feeds = {}
    for k, name in enumerate(names):
        t = onnx.load_tensor(os.path.join(d, "test_data_set_0", f"input_{k}.pb"))
        feeds[name] = numpy_helper.to_array(t)
    return model, feeds


def merge(cases):
    from onnx import compose

    prefixed = [compose.add_prefix(m, f"p{k}_") for k, (m, _) in enumerate(cases)]
    merged = prefixed[0]
    for m in prefixed[1:]:
        merged = compose.merge_models(merged, m, io_map=[])
    feeds = {f"p{k}_{n}": v for k, (_, f) in enumerate(cases) for n, v in f.items()}
    return merged, feeds


def stages_ms(core, model, feeds, work):
    """Milliseconds of convert (incl. save), read, compile and one inference."""
    import onnx
    import openvino as ov

    path = os.path.join(work, "m.onnx")
    onnx.save(model, path)
    t0 = time.perf_counter()
    converted = ov.convert_model(path)
    ov.save_model(converted, os.path.join(work, "m.xml"), compress_to_fp16=False)
    t1 = time.perf_counter()
    ir = core.read_model(os.path.join(work, "m.xml"))
    t2 = time.perf_counter()
    compiled = core.compile_model(ir, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1})
    t3 = time.perf_counter()
    compiled.create_infer_request().infer(feeds)
    t4 = time.perf_counter()
    return [1e3 * (t1 - t0), 1e3 * (t2 - t1), 1e3 * (t3 - t2), 1e3 * (t4 - t3)]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", type=int, default=64)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--opset", type=int, default=15)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--packs", default="4,8,16,32")
    p.add_argument("--harness", default=os.path.join(ROOT, "target", "release", "harness"))
    a = p.parse_args()
    import openvino as ov

    sizes = [int(k) for k in a.packs.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        dirs = []
        index = 0
        # Warm-up cases and measured cases, all of the opset; negative cases are not emitted.
        while len(dirs) < 2 * a.cases:
            d = os.path.join(tmp, f"case{index:05d}")
            done = subprocess.run(
                [a.harness, "emit", "--seed", str(a.seed), "--index", str(index), "--opset", str(a.opset), d],
                capture_output=True,
            )
            index += 1
            if done.returncode == 0:
                dirs.append(d)
        cases = [load_case(d) for d in dirs]
        warm, measured = cases[: a.cases], cases[a.cases :]
        core = ov.Core()
        work = os.path.join(tmp, "work")
        os.mkdir(work)

        def cost(units):
            """Milliseconds per case over `units` (model, feeds), or None if one failed."""
            total = 0.0
            for model, feeds in units:
                try:
                    total += sum(stages_ms(core, model, feeds, work))
                except Exception:
                    return None
            return total / len(measured)

        for model, feeds in warm:
            try:
                stages_ms(core, model, feeds, work)
            except Exception:
                pass
        # Cases OpenVINO refuses alone would break their packs: measured cases are those it takes.
        taken = []
        for model, feeds in measured:
            try:
                stages_ms(core, model, feeds, work)
                taken.append((model, feeds))
            except Exception:
                pass
        measured = taken
        packs = {k: [merge(measured[i : i + k]) for i in range(0, len(measured), k)] for k in sizes}
        print(f"{len(measured)} cases of opset {a.opset} (seed {a.seed}), OpenVINO {ov.get_version()}")
        for r in range(a.rounds):
            alone = cost(measured)
            line = f"round {r + 1}: alone {alone:.1f} ms/case"
            for k in sizes:
                packed = cost(packs[k])
                line += f" | K={k} {packed:.1f} ({alone / packed:.2f}x)" if packed else f" | K={k} failed"
            print(line, flush=True)


if __name__ == "__main__":
    main()
