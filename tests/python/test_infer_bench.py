"""bench/infer_bench.py end to end on its smallest configuration (the MLP, built into a temporary
model folder): the table has finite ratios, graft's outputs match onnxruntime's, and load
processes stop by themselves once their deadline passes."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "bench", "infer_bench.py")


def run_bench(tmp_path, *extra: str) -> str:
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    done = subprocess.run([sys.executable, BENCH, "--smoke", "--cache", str(tmp_path), *extra], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_smoke_table_has_finite_ratios_and_matching_outputs(tmp_path):
    out = run_bench(tmp_path)
    assert "failed" not in out, out
    assert "machine:" in out and "onnxruntime 1." in out
    latency = out[out.index("latency"):]
    row = next(line for line in latency.splitlines() if line.startswith("mlp")).split()
    # model, batch, threads, three latencies, two ratios
    assert row[:3] == ["mlp", "1", "1"] and len(row) == 8, row
    for value in row[3:]:
        assert math.isfinite(float(value)) and float(value) > 0, row
    summary = next(line for line in out.splitlines() if line.startswith("summary mlp:"))
    assert "outputs match" in summary, summary


def test_smoke_under_busy_load_reports_slowdowns(tmp_path):
    out = run_bench(tmp_path, "--engines", "graft,onnxruntime", "--load", "1", "--load-kind", "busy")
    assert "failed" not in out, out
    load = out[out.index("under load"):]
    row = next(line for line in load.splitlines() if line.startswith("mlp")).split()
    # model, batch, threads, (alone, loaded, slowdown) for each engine, graft's slowdown / onnxruntime's
    assert len(row) == 3 + 3 * 2 + 1, row
    for value in row[3:]:
        assert math.isfinite(float(value)) and float(value) > 0, row
    assert "slowdown under load graft/onnxruntime" in out


def test_load_process_stops_by_itself_at_its_deadline(tmp_path):
    proc = subprocess.Popen([sys.executable, BENCH, "--load-worker", "busy", "--threads", "1", "--parent",
                             str(os.getpid()), "--deadline", str(time.time() + 1), "--cache", str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("{")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
