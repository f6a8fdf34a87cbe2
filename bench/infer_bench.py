"""CPU inference latency, peak memory, session-creation time and outputs of graft against
onnxruntime and OpenVINO, each engine alone in a process of its own.

    PYTHONPATH=python python bench/infer_bench.py [--models resnet50,mobilenetv2,bert,mlp,resnet50_int8,bert_int8]
        [--batches 1,8] [--threads 1,2] [--rounds 2] [--runs 10] [--min-time 0.5] [--engines graft,onnxruntime,openvino]
        [--load N --load-kind busy|graft] [--smoke]

The models are built by bench/infer_models.py (random weights, cached in $GRAFT_CACHE/bench-models;
the first run builds them, which takes about 5 minutes). Each cell (model x batch x threads) runs
--rounds rounds; round r runs the engines in the order rotated by r, each in a fresh worker process
that creates its session (timed), runs --warmup runs (the first one timed on its own), then times
up to --runs runs, more while they add up to less than --min-time seconds (fewer once --budget
seconds are spent, at least 3) and reports them with its
peak resident memory (VmHWM) and, in the first round, its outputs for the fixed input. Medians pool
the timed runs of all rounds. Sessions: graft at its default optimization level with
intra_op_num_threads; onnxruntime at ORT_ENABLE_ALL with intra_op_num_threads and
inter_op_num_threads 1; OpenVINO with INFERENCE_NUM_THREADS, f32 precision and the LATENCY hint.

--load N runs N other processes while each engine's worker runs (busy: a Python busy loop each;
graft: graft running MobileNetV2 batch 1 at the cell's thread count in a loop), and every worker
runs twice per round, without and with the load, so each cell reports both latencies and the
slowdown of each engine; the acceptance figure is graft's slowdown / onnxruntime's (at most 1.2).
Load processes start before the worker and stop after it; they also stop by themselves when the
harness dies (parent-death signal, parent check and a deadline).

Output check: max |graft - onnxruntime| over each output, relative to the largest |onnxruntime|
value of that output. Float models must agree within 1e-4; int8 models within 1e-1, since the
engines requantize with different rounding and a one-step difference in an early layer spreads
(onnxruntime and OpenVINO differ by 2-4e-2 on them; a wrong scale or zero point gives about 1).

The default full run (6 models x 4 cells x 3 engines x 2 rounds) takes about 25 minutes on 2 busy
cores once the models are built (BERT batch 8 is half of it); --smoke (MLP, batch 1, 1 thread,
1 round, 5 runs) about 10 seconds.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import importlib.metadata
import importlib.util
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from infer_models import MODELS, QUANTIZED_FROM, cache_folder, inputs, model_path  # bench/ is the script's folder
from machine import cpu_name
from workers import Worker, status_kib

ENGINES = ("graft", "onnxruntime", "openvino")
FLOAT_TOLERANCE = 1e-4
INT8_TOLERANCE = 1e-1
MIN_RUNS = 3
# A load process outlives no harness: it stops by itself after this many seconds.
LOAD_DEADLINE_S = 1800


def tolerance(model: str) -> float:
    return INT8_TOLERANCE if model in QUANTIZED_FROM else FLOAT_TOLERANCE


def open_engine(engine: str, path: str, threads: int):
    """A session of `engine` on the model at `path`; returns run(feeds) -> list of outputs."""
    if engine == "graft":
        import graft

        options = graft.SessionOptions()
        options.intra_op_num_threads = threads
        session = graft.InferenceSession(path, sess_options=options)
        return lambda feeds: session.run(None, feeds)
    if engine == "onnxruntime":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
        return lambda feeds: session.run(None, feeds)
    if engine == "openvino":
        import openvino

        compiled = openvino.Core().compile_model(path, "CPU", {"INFERENCE_NUM_THREADS": threads,
                                                               "INFERENCE_PRECISION_HINT": "f32",
                                                               "PERFORMANCE_HINT": "LATENCY"})
        request = compiled.create_infer_request()

        def run(feeds):
            result = request.infer(feeds)
            return [np.array(result[o]) for o in compiled.outputs]

        return run
    raise ValueError(f"unknown engine {engine}; known: {', '.join(ENGINES)}")


def engine_worker(args) -> None:
    """One engine on one cell in this process: answers a ready line, then on "run" creates the
    session (timed), runs it and answers with the creation time, the first run's time, the timed
    runs and its peak memory, saving its outputs to --outputs if given; "quit" answers and ends.
    An engine that fails says so in its answer ({"error": ...}) and exits."""
    feeds = inputs(args.models, args.batch)
    print(json.dumps({"ready": True}), flush=True)
    if sys.stdin.readline().strip() != "run":
        return
    step = "import"
    try:
        importlib.import_module(args.worker)  # before the clock starts: creation times leave imports out
        step = "session creation"
        start = time.perf_counter()
        run = open_engine(args.worker, args.model_file, args.threads)
        created = time.perf_counter() - start
        step = "first run"
        start = time.perf_counter()
        outputs = run(feeds)
        first = time.perf_counter() - start
        step = "timed runs"
        for _ in range(args.warmup - 1):
            run(feeds)
        times: list[float] = []
        spent = time.perf_counter()
        # At least MIN_RUNS; then up to --runs, and past them until --min-time of timed runs (a
        # sub-millisecond model's median needs hundreds), all within --budget.
        while len(times) < MIN_RUNS or (time.perf_counter() - spent < args.budget and
                                        (len(times) < args.runs or sum(times) < args.min_time)):
            start = time.perf_counter()
            run(feeds)
            times.append(time.perf_counter() - start)
    except Exception as e:  # noqa: BLE001  (the driver reports any engine failure, with the step)
        message = " ".join(str(e).split())
        print(json.dumps({"error": f"{step}: {type(e).__name__}: {message[:600]}"}), flush=True)
        return
    if args.outputs:
        np.savez(args.outputs, *[np.asarray(o) for o in outputs])
    print(json.dumps({"create_ms": created * 1e3, "first_ms": first * 1e3, "ms": [t * 1e3 for t in times],
                      "peak_kib": status_kib("VmHWM")}), flush=True)
    if sys.stdin.readline().strip() == "quit":
        print(json.dumps({"bye": True}), flush=True)


def stop_with_parent(parent: int, deadline: float):
    """Makes the kernel end this process when its parent dies, and returns a check that is False
    once the parent is gone or the deadline passed (for where the signal cannot be set)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    return lambda: os.getppid() == parent and time.time() < deadline


def load_worker(args) -> None:
    """A load process: a busy loop, or graft running MobileNetV2 batch 1 in a loop, until stopped,
    its parent dies or the deadline passes."""
    alive = stop_with_parent(args.parent, args.deadline)
    if args.load_worker == "busy":
        print(json.dumps({"ready": True}), flush=True)
        while alive():
            for _ in range(100_000):
                pass
        return
    run = open_engine("graft", model_path("mobilenetv2", args.cache, log=lambda _: None), args.threads)
    feeds = inputs("mobilenetv2", 1)
    run(feeds)
    print(json.dumps({"ready": True}), flush=True)
    while alive():
        run(feeds)


class Load:
    """`count` load processes of `kind` at `threads` threads, running from construction (each has
    answered ready) until stop()."""

    def __init__(self, kind: str, count: int, threads: int, cache: str) -> None:
        argv = [sys.executable, os.path.abspath(__file__), "--load-worker", kind, "--threads", str(threads),
                "--parent", str(os.getpid()), "--deadline", str(time.time() + LOAD_DEADLINE_S), "--cache", cache]
        self.procs = [subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
                      for _ in range(count)]
        for proc in self.procs:
            line = proc.stdout.readline()
            if not line.startswith("{"):
                self.stop()
                raise RuntimeError(f"a {kind} load process exited with status {proc.wait()} before it was ready")

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_worker(engine: str, model: str, path: str, batch: int, threads: int, args, outputs: str | None) -> dict:
    """Starts a fresh worker for `engine` on the cell, runs it and closes it; returns its answer
    ({"error": ...} when it fails, crashes or runs past --worker-timeout)."""
    argv = [os.path.abspath(__file__), "--worker", engine, "--models", model, "--model-file", path,
            "--batch", str(batch), "--threads", str(threads), "--runs", str(args.runs), "--warmup",
            str(args.warmup), "--budget", str(args.budget), "--min-time", str(args.min_time)] + (["--outputs", outputs] if outputs else [])
    worker = Worker(argv)
    watchdog = threading.Timer(args.worker_timeout, worker.proc.kill)
    watchdog.start()
    try:
        result = worker.send("run")
        if "error" not in result:
            worker.close()
    except RuntimeError as e:  # the worker died without an answer: a crash, or the watchdog
        late = not watchdog.is_alive()
        result = {"error": f"killed after {args.worker_timeout:g} s" if late else f"{engine} worker: {e}"}
    finally:
        watchdog.cancel()
        worker.proc.wait()
    return result


def relative_diff(ours: str, reference: str) -> float:
    """The largest over outputs of max |ours - reference| / max |reference| (inf when the outputs
    differ in count or shape)."""
    a, b = np.load(ours), np.load(reference)
    if len(a.files) != len(b.files):
        return math.inf
    worst = 0.0
    for key in b.files:
        x, y = a[key].astype(np.float64), b[key].astype(np.float64)
        if x.shape != y.shape:
            return math.inf
        scale = max(float(np.abs(y).max(initial=0.0)), 1e-12)
        worst = max(worst, float(np.abs(x - y).max(initial=0.0)) / scale)
    return worst


def bench_cell(model: str, path: str, batch: int, threads: int, engines: list[str], args, folder: str,
               failed: dict[str, str]) -> dict:
    """Runs the cell's rounds. Returns per engine and condition ("alone", "loaded") the pooled
    timed runs, plus per engine the creation times, first-run times, peak memory and output file.
    An engine that fails is recorded in `failed` (engine -> error) and left out from then on."""
    conditions = ["alone", "loaded"] if args.load else ["alone"]
    cell: dict = {e: {"ms": {c: [] for c in conditions}, "create_ms": [], "first_ms": [], "peak_kib": 0,
                      "outputs": None} for e in engines}
    for r in range(args.rounds):
        order = engines[r % len(engines):] + engines[:r % len(engines)]
        for engine in order:
            for condition in conditions[r % len(conditions):] + conditions[:r % len(conditions)]:
                if engine in failed:
                    continue
                outputs = os.path.join(folder, f"{model}-{batch}-{threads}-{engine}.npz") if r == 0 else None
                load = Load(args.load_kind, args.load, threads, args.cache) if condition == "loaded" else None
                try:
                    result = run_worker(engine, model, path, batch, threads, args,
                                        outputs if condition == "alone" else None)
                finally:
                    if load:
                        load.stop()
                if "error" in result:
                    failed[engine] = result["error"]
                    print(f"  {engine} failed on {model} (batch {batch}, {threads} threads): {result['error']}",
                          flush=True)
                    continue
                mine = cell[engine]
                mine["ms"][condition] += result["ms"]
                if condition == "alone":
                    mine["create_ms"].append(result["create_ms"])
                    mine["first_ms"].append(result["first_ms"])
                    mine["peak_kib"] = max(mine["peak_kib"], result["peak_kib"])
                    if outputs:
                        mine["outputs"] = outputs
    return cell


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def fmt(value: float, spec: str = ".2f") -> str:
    return "-" if value is None or math.isnan(value) else format(value, spec)


def geomean(values: list[float]) -> float:
    values = [v for v in values if math.isfinite(v)]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else math.nan


SHORT = {"graft": "graft", "onnxruntime": "ort", "openvino": "ov"}


def print_cells(rows: list[dict], engines: list[str]) -> None:
    print("\nlatency (median ms over all rounds' timed runs; ratio below 1: graft is faster)")
    peers = [e for e in engines if e != "graft"]
    print(f"{'model':<14}{'batch':>6}{'thr':>4}" + "".join(f"{SHORT[e] + ' ms':>11}" for e in engines) +
          ("".join(f"{'graft/' + SHORT[e]:>11}" for e in peers) if "graft" in engines else ""))
    for row in rows:
        ms = {e: median(row["cell"][e]["ms"]["alone"]) for e in engines}
        line = f"{row['model']:<14}{row['batch']:>6}{row['threads']:>4}" + "".join(f"{fmt(ms[e]):>11}" for e in engines)
        if "graft" in engines:
            line += "".join(f"{fmt(ms['graft'] / ms[e]):>11}" for e in peers)
        print(line)


def print_load(rows: list[dict], engines: list[str], args) -> None:
    print(f"\nunder load ({args.load} {args.load_kind} process{'es' if args.load > 1 else ''}): median ms alone, "
          "loaded, and the slowdown loaded / alone; acceptance: graft's slowdown / onnxruntime's <= 1.2")
    print(f"{'model':<14}{'batch':>6}{'thr':>4}" +
          "".join(f"{SHORT[e] + ' alone':>13}{SHORT[e] + ' loaded':>14}{SHORT[e] + ' slow':>12}" for e in engines) +
          (f"{'graft/ort slow':>16}" if {"graft", "onnxruntime"} <= set(engines) else ""))
    for row in rows:
        line = f"{row['model']:<14}{row['batch']:>6}{row['threads']:>4}"
        slow = {}
        for e in engines:
            alone, loaded = (median(row["cell"][e]["ms"][c]) for c in ("alone", "loaded"))
            slow[e] = loaded / alone
            line += f"{fmt(alone):>13}{fmt(loaded):>14}{fmt(slow[e]):>12}"
        if {"graft", "onnxruntime"} <= set(engines):
            line += f"{fmt(slow['graft'] / slow['onnxruntime']):>16}"
        print(line)


def model_summary(model: str, rows: list[dict], engines: list[str], failed: dict[str, str]) -> dict:
    """Per model: peak memory, creation and first-run time of each engine, and the output check."""
    cells = [r["cell"] for r in rows if r["model"] == model]
    out = {"peak_mb": {e: max(c[e]["peak_kib"] for c in cells) / 1024 or math.nan for e in engines},
           "create_ms": {e: median([t for c in cells for t in c[e]["create_ms"]]) for e in engines},
           "first_ms": {e: median([t for c in cells for t in c[e]["first_ms"]]) for e in engines},
           "diff": {}, "failed": failed}
    if "onnxruntime" in engines:
        for e in engines:
            if e != "onnxruntime":
                diffs = [relative_diff(c[e]["outputs"], c["onnxruntime"]["outputs"]) for c in cells
                         if c[e]["outputs"] and c["onnxruntime"]["outputs"]]
                out["diff"][e] = max(diffs) if diffs else math.nan
    return out


def print_models(summaries: dict[str, dict], engines: list[str]) -> None:
    print("\nper model: peak RSS (VmHWM of the engine's process, MB, largest over cells), session creation and "
          "first run (median ms over rounds and cells), outputs against onnxruntime (max |diff| / output scale)")
    diffs = [e for e in engines if e != "onnxruntime"] if "onnxruntime" in engines else []
    print(f"{'model':<14}" + "".join(f"{SHORT[e] + ' MB':>10}" for e in engines) +
          "".join(f"{SHORT[e] + ' create':>14}" for e in engines) +
          "".join(f"{SHORT[e] + ' first':>13}" for e in engines) + "".join(f"{SHORT[e] + ' diff':>12}" for e in diffs))
    for model, s in summaries.items():
        print(f"{model:<14}" + "".join(f"{fmt(s['peak_mb'][e], '.0f'):>10}" for e in engines) +
              "".join(f"{fmt(s['create_ms'][e], '.0f'):>14}" for e in engines) +
              "".join(f"{fmt(s['first_ms'][e], '.1f'):>13}" for e in engines) +
              "".join(f"{fmt(s['diff'][e], '.1e'):>12}" for e in diffs))


def summary_line(model: str, s: dict, rows: list[dict], engines: list[str], args) -> str:
    if "graft" in s["failed"]:
        return f"summary {model}: graft FAILED: {s['failed']['graft']}"
    cells = [r["cell"] for r in rows if r["model"] == model]
    parts = []
    for peer in (e for e in engines if e != "graft"):
        if "graft" not in engines or peer in s["failed"]:
            continue
        ratios = [median(c["graft"]["ms"]["alone"]) / median(c[peer]["ms"]["alone"]) for c in cells]
        parts.append(f"graft/{peer} {fmt(min(ratios))}-{fmt(max(ratios))} (geomean {fmt(geomean(ratios))})")
        if args.load and peer == "onnxruntime":
            slow = [(median(c["graft"]["ms"]["loaded"]) / median(c["graft"]["ms"]["alone"])) /
                    (median(c[peer]["ms"]["loaded"]) / median(c[peer]["ms"]["alone"])) for c in cells]
            parts.append(f"slowdown under load graft/onnxruntime up to {fmt(max(slow))} "
                         f"({'meets' if max(slow) <= 1.2 else 'misses'} <= 1.2)")
        parts.append(f"peak RSS graft/{peer} {fmt(s['peak_mb']['graft'] / s['peak_mb'][peer])}")
        parts.append(f"creation graft/{peer} {fmt(s['create_ms']['graft'] / s['create_ms'][peer])}")
    if "graft" in s["diff"]:
        d, tol = s["diff"]["graft"], tolerance(model)
        peer = f", openvino's {fmt(s['diff']['openvino'], '.1e')}" if "openvino" in s["diff"] else ""
        parts.append(f"outputs {'match' if d <= tol else 'DIFFER'} (graft's diff {fmt(d, '.1e')}{peer}, "
                     f"tolerance {tol:g})")
    return f"summary {model}: " + ", ".join(parts)


def snapshot_graft(folder: str) -> str:
    """Copies the graft package that this environment imports into `folder` and puts the copy
    first on the workers' PYTHONPATH, so a rebuild of the module during a long run (colleagues
    share the checkout) changes nothing mid-way. Returns where the package was copied from."""
    spec = importlib.util.find_spec("graft")
    if spec is None or not spec.submodule_search_locations:
        return "(graft not found)"
    source = list(spec.submodule_search_locations)[0]
    shutil.copytree(source, os.path.join(folder, "graft"), ignore=shutil.ignore_patterns("__pycache__"))
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (folder, os.environ.get("PYTHONPATH")) if p)
    return source


def graft_version() -> str:
    """graft's version, read in a process of its own so this one loads no engine; raises, with
    the import's error, when the package does not import."""
    done = subprocess.run([sys.executable, "-c", "import graft; print(graft.__version__)"], capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"graft does not import: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return done.stdout.strip()


def versions() -> str:
    return ", ".join(f"{name} {importlib.metadata.version(name)}" for name in
                     ("onnxruntime", "openvino", "onnx", "torch", "torchvision", "transformers", "numpy"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10, help="timed runs per worker (more for --min-time)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs per worker, the first one reported")
    parser.add_argument("--min-time", type=float, default=0.5,
                        help="seconds the timed runs add up to at least (within --budget), past --runs")
    parser.add_argument("--budget", type=float, default=3.0,
                        help=f"seconds of timed runs per worker, after at least {MIN_RUNS} runs")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--worker-timeout", type=float, default=900, help="seconds before a worker is killed")
    parser.add_argument("--load", type=int, default=0, help="other processes running during the timing")
    parser.add_argument("--load-kind", choices=("busy", "graft"), default="busy")
    parser.add_argument("--cache", default=cache_folder(), help="the models' folder")
    parser.add_argument("--smoke", action="store_true", help="MLP, batch 1, 1 thread, 1 round, 5 runs")
    # The worker and load processes this script starts.
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--model-file", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--outputs", help=argparse.SUPPRESS)
    parser.add_argument("--load-worker", choices=("busy", "graft"), help=argparse.SUPPRESS)
    parser.add_argument("--parent", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.threads = int(args.threads)
        engine_worker(args)
        return
    if args.load_worker:
        args.threads = int(args.threads)
        load_worker(args)
        return
    if args.smoke:
        args.models, args.batches, args.threads, args.rounds, args.runs, args.warmup = "mlp", "1", "1", 1, 5, 1
        args.min_time = 0.0
    models, engines = args.models.split(","), args.engines.split(",")
    for e in engines:
        if e not in ENGINES:
            parser.error(f"unknown engine {e}; known: {', '.join(ENGINES)}")
    batches, threads = [int(b) for b in args.batches.split(",")], [int(t) for t in args.threads.split(",")]

    snapshot = tempfile.TemporaryDirectory(prefix="infer_bench_graft_")
    source = snapshot_graft(snapshot.name)
    with open("/proc/meminfo") as f:
        memory = int(f.readline().split()[1]) / 2**20
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, {memory:.0f} GiB")
    graft = graft_version() if "graft" in engines or (args.load and args.load_kind == "graft") else "(not run)"
    print(f"graft {graft} (from {source}, copied at start), {versions()}")
    print(f"engines: {', '.join(engines)}; each in a fresh process per round; {args.rounds} rounds, "
          f"{args.warmup} warm-up + {args.runs} timed runs or more until they add up to {args.min_time:g} s "
          f"(at least {MIN_RUNS}, {args.budget:g} s budget) per "
          f"worker" + (f"; load: {args.load} {args.load_kind} processes" if args.load else ""), flush=True)
    paths = {m: model_path(m, args.cache) for m in models}
    if args.load and args.load_kind == "graft":
        model_path("mobilenetv2", args.cache)  # built here, so load processes start at once
    rows, summaries = [], {}
    with tempfile.TemporaryDirectory(prefix="infer_bench_") as folder:
        for model in models:
            failed: dict[str, str] = {}
            for batch in batches:
                for t in threads:
                    start = time.perf_counter()
                    cell = bench_cell(model, paths[model], batch, t, engines, args, folder, failed)
                    rows.append({"model": model, "batch": batch, "threads": t, "cell": cell})
                    print(f"  {model} batch {batch}, {t} threads: " + ", ".join(
                        f"{e} {fmt(median(cell[e]['ms']['alone']))} ms" for e in engines) +
                          f"  ({time.perf_counter() - start:.0f} s)", flush=True)
            summaries[model] = model_summary(model, rows, engines, failed)
    print_cells(rows, engines)
    if args.load:
        print_load(rows, engines, args)
    print_models(summaries, engines)
    print()
    for model, s in summaries.items():
        for engine, error in s["failed"].items():
            print(f"{engine} failed on {model}: {error}")
        print(summary_line(model, s, rows, engines, args))


if __name__ == "__main__":
    main()
