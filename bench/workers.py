"""The process plumbing the benchmarks share: each engine runs in a worker process of its own,
driven line by line over stdin/stdout with JSON answers, so engines never share a thread pool,
an allocator or a device context, and the driver can make them step in alternating rounds."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def status_kib(field: str) -> int:
    """A memory figure of this process from /proc (VmRSS: now, VmHWM: peak). The peak is read
    there rather than from getrusage, whose maximum carries over from the parent across exec."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


class Worker:
    """A worker process (`argv`, run with `env` added to this environment) driven over its stdin
    and stdout: each request is a line, each answer the next line of JSON it prints."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=dict(os.environ, **(env or {})))
        self.read()

    def read(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith("{"):
                return json.loads(line)
        raise RuntimeError(f"benchmark worker exited with status {self.proc.wait()}")

    def send(self, text: str) -> dict:
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self) -> dict:
        result = self.send("quit")
        self.proc.wait()
        return result


def batchnorm_in_training_mode(path: str) -> None:
    """Rewrites the exported model at `path` with every BatchNormalization in training mode.
    torch.onnx.export writes a training-mode BatchNorm as the inference op (running statistics);
    PyTorch trains with batch statistics, so the benchmarks' graphs do too. (The running-statistics
    update, which the step's loss does not depend on, is left out.)"""
    import onnx

    m = onnx.load(path)
    for node in m.graph.node:
        if node.op_type == "BatchNormalization":
            kept = [a for a in node.attribute if a.name != "training_mode"]
            del node.attribute[:]
            node.attribute.extend(kept + [onnx.helper.make_attribute("training_mode", 1)])
    onnx.save(m, path)
