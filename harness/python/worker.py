"""Long-lived worker that runs Python converters and runtimes for the harness.

One process serves many cases, so no case pays an interpreter start or an import of
OpenVINO. The harness starts it as `python worker.py` and talks over stdin/stdout.

Protocol: one JSON object per line each way. Every request has an "id" that the reply repeats;
a reply has "ok": true and its fields, or "ok": false, "stage" and "error".

  {"op": "hello", "packages": ["onnxruntime"]}   -> {"versions": {"onnxruntime": "...", ...}}
      Versions of python, numpy and the packages named (all three when none are): only
      those are imported, so a worker for onnxruntime never pays for importing OpenVINO.
  Every "engine" names a stack: the module stacks/ENGINE.py beside this script, imported on
  first use (stacks/README.md describes what such a module defines).
  {"op": "describe", "engine": "tvm"}            -> {"runtime": "tvm-llvm", "variants": {"": {...}},
                                                      "converts": true, "pack": 1, "version": "..."}
  {"op": "convert", "engine": "openvino", "model": "m.onnx", "work_dir": "d", "options": {...}}
                                                  -> {"artifact": "d/model.xml"}
  {"op": "load", "engine": "openvino" | "onnxruntime" | ..., "model": "m.xml" | "m.onnx",
   "options": {"precision": "default" | "f32", "threads": 1, ...}}
                                                  -> {"handle": 1, "precision": "bf16"}
  {"op": "run", "handle": 1, "work_dir": "d",
   "inputs": [{"name": "input", "dtype": "float32", "shape": [1, 3, 8], "path": "d/input_0.bin"}]}
                                                  -> {"outputs": [{"name", "dtype", "shape", "path"}]}
  {"op": "time", "handle": 1, "inputs": [...], "repeats": 3}
                                                  -> {"run_us": [12.5, 11.9, 12.1]}
      Runs the loaded model "repeats" times back to back on inputs read and bound once, and
      returns the duration of each run in microseconds (time.perf_counter_ns around each
      inference). Inputs are bound to the engine before the first run (OpenVINO: set_tensor,
      onnxruntime: io_binding) and outputs stay in the engine, so a sample is the engine's
      inference and not this script's copying: with a dict of inputs and copied outputs, a
      ~14 us OpenVINO model took 42 to 63 us depending on the process, with it 14.0 +- 0.2.
      Latency measurement (`harness perf`) asks for one batch per call, so the request, the
      reply and the input files are in no sample.
  {"op": "release", "handle": 1}
  {"op": "evaluate", "engine": "onnxruntime", "model_data": "<base64>" | "model": "m.onnx",
   "options": {...}, "inputs": [{"name", "dtype", "shape", "data": "<base64>"}], "repeats": 3}
                                                  -> {"precision": "f32", "run_us": [...],
                                                      "outputs": [{"name", "dtype", "shape", "data"}]}
      load, run and time in one round trip, nothing kept: one request per result. Tensors
      travel inline (base64 of the raw bytes) instead of as files.
  {"op": "exit"}

For tests: {"op": "sleep", "seconds": 30} sleeps; {"op": "spin", "seconds": 2} uses that much CPU; {"op": "fork", "seconds": 60} -> {"pid": 123}
forks the worker from a thread (as a library's multiprocessing does) and the copy sleeps.

The worker ends at end of file on stdin, on "exit", or when its parent changes; the harness
starts it as the leader of its own process group and kills that group when done with it.

Every reply also carries "engine_s", the seconds spent serving the request.
Tensors travel as raw little-endian row-major files. "stage" says where a failure happened:
"convert" (the converter refused), "read" (its artifact does not load back), "compile" or
"run" (the runtime refused), "protocol" (a malformed request).
"""

import base64
import gc
import importlib
import json
import os
import signal
import sys
import threading
import time
import traceback

# OpenVINO's converter reports telemetry, unless told otherwise, from a thread pool that forks
# this process (multiprocessing, fork start method) for every event. The copies carry every
# descriptor of the worker, the harness's pipes included, can hang on locks their parent's
# other threads held, and outlive it: measured, a 40-case run left 10 of them parented to init.
# With the package unimportable, ovc uses its own no-op stub (openvino/tools/ovc/telemetry_stub.py).
sys.modules["openvino_telemetry"] = None

import numpy as np  # noqa: E402

DTYPES = {
    "float32": np.float32,
    "float64": np.float64,
    "float16": np.float16,
    "int64": np.int64,
    "int32": np.int32,
    "int8": np.int8,
    "uint8": np.uint8,
    "bool": np.bool_,
}


def versions(packages=None):
    out = {"python": sys.version.split()[0], "numpy": np.__version__}
    for name in packages or ("openvino", "onnxruntime", "onnx"):
        try:
            module = __import__(name)
            out[name] = getattr(module, "__version__", "unknown")
        except Exception as e:  # a missing package is reported, not fatal
            out[name] = f"unavailable: {e}"
    if "openvino" in out:
        try:
            import openvino

            out["openvino"] = openvino.get_version()
        except Exception:
            pass
    return out


def read_inputs(specs):
    """Inputs from their files ("path") or inline ("data", base64 of the raw bytes)."""
    feeds = []
    for spec in specs:
        dtype = DTYPES[spec["dtype"]]
        if "data" in spec:
            data = np.frombuffer(base64.b64decode(spec["data"]), dtype=dtype).reshape(spec["shape"])
        else:
            data = np.fromfile(spec["path"], dtype=dtype).reshape(spec["shape"])
        feeds.append((spec["name"], data))
    return feeds


def output_arrays(names, arrays):
    """(name, dtype name, contiguous array) of each output; unknown dtypes become float32."""
    for name, array in zip(names, arrays):
        array = np.ascontiguousarray(array)
        dtype = next((k for k, v in DTYPES.items() if array.dtype == v), None)
        if dtype is None:
            dtype = "float32"
            array = array.astype(np.float32)
        yield name, dtype, array


def inline_outputs(names, arrays):
    return [
        {"name": name, "dtype": dtype, "shape": list(array.shape), "data": base64.b64encode(array.tobytes()).decode()}
        for name, dtype, array in output_arrays(names, arrays)
    ]


def write_outputs(work_dir, names, arrays):
    out = []
    for j, (name, dtype, array) in enumerate(output_arrays(names, arrays)):
        path = os.path.join(work_dir, f"output_{j}.bin")
        array.tofile(path)
        out.append({"name": name, "dtype": dtype, "shape": list(array.shape), "path": path})
    return out


from stacks import Failure, stage  # noqa: E402

_handles = {}
_next_handle = [0]
_stacks = {}


def stack(name):
    """The stack module `name` (stacks/NAME.py beside this script), imported once."""
    if name not in _stacks:
        if not isinstance(name, str) or not name.replace("_", "").isalnum():
            raise Failure("protocol", f"bad stack name {name!r}")
        try:
            _stacks[name] = importlib.import_module(f"stacks.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"stacks.{name}":
                raise Failure("protocol", f"unknown stack {name!r}") from e
            raise Failure("protocol", f"stack {name!r} cannot be imported: {e}") from e
    return _stacks[name]


class Loaded:
    """A model a stack loaded, with what the worker asks of every stack."""

    def __init__(self, module, artifact, options):
        self.module = module
        self.session = module.load(artifact, options)
        self.precision = module.precision(self.session)
        names = getattr(module, "output_names", None)
        self.names = list(names(self.session)) if names else None

    def infer(self, feeds):
        outputs = list(self.module.run(self.session, feeds))
        if self.names is None:
            self.names = [f"output_{i}" for i in range(len(outputs))]
        return outputs

    def bound(self, feeds):
        """A call that runs one inference on `feeds` with inputs bound once, where the stack
        can bind them (its bind()); else a plain run."""
        bind = getattr(self.module, "bind", None)
        if bind is None:
            return lambda: self.module.run(self.session, feeds)
        return bind(self.session, feeds)


def describe(module):
    """What the harness needs to know of a stack before using it."""
    return {
        "runtime": getattr(module, "RUNTIME", module.__name__.split(".")[-1]),
        "variants": {k: v for k, v in getattr(module, "VARIANTS", {"": {}}).items()},
        "converts": callable(getattr(module, "convert", None)),
        "pack": int(getattr(module, "PACK", 1)),
    }


def fork_sleeper(seconds):
    """Forks this process from a new thread; the copy sleeps `seconds`, then exits."""
    pids = []

    def fork():
        pid = os.fork()
        if pid == 0:
            time.sleep(seconds)
            os._exit(0)
        pids.append(pid)

    thread = threading.Thread(target=fork)
    thread.start()
    thread.join()
    return pids[0]


def handle(req):
    op = req.get("op")
    if op == "hello":
        return {"ok": True, "versions": versions(req.get("packages"))}
    if op == "sleep":  # for tests of timeouts and killed workers
        time.sleep(float(req.get("seconds", 1)))
        return {"ok": True}
    if op == "spin":  # for tests of CPU-time limits: busy for that much CPU time
        end = time.process_time() + float(req.get("seconds", 1))
        while time.process_time() < end:
            pass
        return {"ok": True}
    if op == "fork":  # for tests: a library forking the worker from a thread, as telemetry did
        return {"ok": True, "pid": fork_sleeper(float(req.get("seconds", 60)))}
    try:
        if op == "describe":
            module = stack(req.get("engine"))
            reply = {"ok": True, **describe(module)}
            reply["version"] = str(stage("protocol", module.version))
            return reply
        if op == "convert":
            module = stack(req.get("engine"))
            if not callable(getattr(module, "convert", None)):
                raise Failure("protocol", f"stack {req.get('engine')!r} converts nothing")
            artifact = stage("convert", lambda: module.convert(req["model"], req["work_dir"], req.get("options", {})))
            return {"ok": True, "artifact": artifact}
        if op == "load":
            model = stage("compile", lambda: Loaded(stack(req.get("engine")), req["model"], req.get("options", {})))
            _next_handle[0] += 1
            _handles[_next_handle[0]] = model
            return {"ok": True, "handle": _next_handle[0], "precision": model.precision}
        if op in ("run", "time"):
            model = _handles.get(req.get("handle"))
            if model is None:
                raise Failure("protocol", f"unknown handle {req.get('handle')!r}")
            feeds = stage("protocol", lambda: read_inputs(req["inputs"]))
            if op == "time":
                return {"ok": True, "run_us": timed_runs(model, feeds, max(1, int(req.get("repeats", 1))))}
            outputs = stage("run", lambda: model.infer(feeds))
            return {"ok": True, "outputs": write_outputs(req["work_dir"], model.names, outputs)}
        if op == "evaluate":
            module = stack(req.get("engine"))
            source = req["model"] if "model" in req else base64.b64decode(req["model_data"])
            model = stage("compile", lambda: Loaded(module, source, req.get("options", {})))
            feeds = stage("protocol", lambda: read_inputs(req["inputs"]))
            outputs = stage("run", lambda: model.infer(feeds))
            reply = {"ok": True, "precision": model.precision, "outputs": inline_outputs(model.names, outputs)}
            repeats = int(req.get("repeats", 0))
            reply["run_us"] = timed_runs(model, feeds, repeats) if repeats > 0 else []
            return reply
        if op == "release":
            _handles.pop(req.get("handle"), None)
            return {"ok": True}
        raise Failure("protocol", f"unknown op {op!r}")
    except Failure as f:
        return {"ok": False, "stage": f.stage, "error": str(f)[:4000]}


def timed_runs(model, feeds, repeats):
    """Microseconds of each of `repeats` runs back to back, inputs bound once (see "time")."""
    run_us = []
    clock = time.perf_counter_ns
    # Binding is how the samples leave out this script's copying, not how users run a model,
    # and onnxruntime checks more when bound: from the second run on, outputs against the
    # shapes its own shape inference declared, which its plain run does not (a MaxPool whose
    # last ceil_mode window starts in the padding: inferred 8, computed 7, as the spec says).
    # A model refused bound, while its plain run just passed, is timed with plain runs, so a
    # verdict never depends on --repeats.
    def plain():
        return model.infer(feeds)

    try:
        infer = model.bound(feeds)
    except Exception:
        infer = plain
    # No garbage collection inside the timed runs (OpenVINO's infer returns a
    # new results object each call); it runs once the batch is over.
    gc.disable()
    try:
        while len(run_us) < repeats:
            t = clock()
            try:
                infer()
            except Exception:
                if infer is plain:
                    raise
                infer = plain
                continue
            run_us.append((clock() - t) / 1e3)
    except Exception as e:
        raise Failure("run", f"{type(e).__name__}: {e}") from e
    finally:
        gc.enable()
    return run_us


def watch_parent():
    """Ends the worker and its process group when the harness is gone, even if it could not say
    so. The harness also sets a parent-death signal and kills the group itself; this is the
    fallback."""
    parent = os.getppid()
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os.killpg(0, signal.SIGKILL)
            os._exit(0)


def private_fd(fd):
    """Moves the descriptor `fd` to a new non-inheritable number and puts /dev/null in its place,
    so that no process the libraries start inherits the harness's pipe as stdin or stdout."""
    moved = os.dup(fd)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, fd)
    os.close(null)
    return moved


def main():
    # The protocol's pipes, on descriptors of their own. Libraries must not write to our
    # stdout: it carries the protocol (fd 1 becomes the log, like fd 2).
    requests_fd = private_fd(0)
    replies_fd = os.dup(1)
    os.dup2(2, 1)
    # A fork of this process (a library's multiprocessing) gets every descriptor, inheritable
    # or not: its copies of the protocol's pipes would keep the harness from seeing the end of a
    # worker that died. They become /dev/null in the child; the numbers stay taken, so nothing
    # the child opens later can be closed by its copies of the file objects.
    def after_fork_in_child():
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, requests_fd)
        os.dup2(null, replies_fd)
        os.close(null)

    os.register_at_fork(after_in_child=after_fork_in_child)
    threading.Thread(target=watch_parent, daemon=True).start()
    requests = os.fdopen(requests_fd, "r")
    protocol = os.fdopen(replies_fd, "w", buffering=1)
    # Ends at end of file: the harness closed the pipe or is gone.
    for line in requests:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
        except json.JSONDecodeError as e:
            protocol.write(json.dumps({"id": None, "ok": False, "stage": "protocol", "error": f"bad JSON: {e}"}) + "\n")
            continue
        if req.get("op") == "exit":
            break
        start = time.perf_counter()
        try:
            reply = handle(req)
        except Exception:
            reply = {"ok": False, "stage": "protocol", "error": traceback.format_exc()[-4000:]}
        reply["id"] = req.get("id")
        # Time spent serving the request, so the harness can tell its own overhead apart.
        reply["engine_s"] = time.perf_counter() - start
        protocol.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()
    # Skip interpreter teardown: native thread pools (OpenVINO's) can keep it from finishing.
    sys.stdout.flush()
    os._exit(0)
