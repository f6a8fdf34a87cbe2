"""The documentation runs as written: every ```python block of README.md and docs/*.md executes
in a temporary folder that holds the files and variables the snippets name (model.onnx,
model_with_loss.onnx, `model`, `x0`, `batches`), paths the documents name exist in the tree, and
`import graft` stays light (no PyTorch) while its subpackages load on first use."""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
import traceback

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))


def _snippets(path: str, language: str = "python") -> list[tuple[int, str]]:
    """(line of the first code line, code) of every fenced block of `language` in `path`."""
    found, code, start = [], None, 0
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fence = line.strip()
            if code is None:
                if fence == f"```{language}":
                    code, start = [], number + 1
            elif fence.startswith("```"):
                found.append((start, "".join(code)))
                code = None
            else:
                code.append(line)
    assert code is None, f"{path}:{start}: unterminated code block"
    return found


SNIPPETS = [(path, line, code) for path in DOCS for line, code in _snippets(path)]


def _rel(path: str) -> str:
    return os.path.relpath(path, ROOT)


# --- Fixtures the snippets refer to ---------------------------------------------------------------

def _write_model(path: str) -> None:
    """model.onnx: a small CNN on (N, 3, H, W) images (Conv, Relu, global pooling)."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "conv.weight")
    b = numpy_helper.from_array(np.zeros(4, np.float32), "conv.bias")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "conv.weight", "conv.bias"], ["conv"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["conv"], ["relu"]),
         helper.make_node("GlobalAveragePool", ["relu"], ["pool"]),
         helper.make_node("Flatten", ["pool"], ["output"])],
        "cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 4])],
        [w, b])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10), path)


def _write_model_with_loss(path: str) -> None:
    """model_with_loss.onnx: a linear classifier of x (N, 4) into 3 classes with its mean
    cross-entropy against `labels`; outputs loss and logits."""
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "fc.weight")
    b = numpy_helper.from_array(np.zeros(3, np.float32), "fc.bias")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "fc.weight"], ["matmul"]),
         helper.make_node("Add", ["matmul", "fc.bias"], ["logits"]),
         helper.make_node("SoftmaxCrossEntropyLoss", ["logits", "labels"], ["loss"], reduction="mean")],
        "classifier",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4]),
         helper.make_tensor_value_info("labels", TensorProto.INT64, ["N"])],
        [helper.make_tensor_value_info("loss", TensorProto.FLOAT, []),
         helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        [w, b])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10), path)


def _namespace(code: str) -> dict:
    """The variables a snippet uses without defining: NumPy batches for graft's own training
    loop, a torch module, a sample input and torch batches where the snippet uses graft.torch."""
    ns: dict = {"__name__": "__snippet__"}
    rng = np.random.default_rng(2)
    if "graft.torch" in code:
        import torch

        torch.manual_seed(0)
        ns["model"] = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
        ns["x0"] = torch.randn(8, 4)
        ns["batches"] = [(torch.randn(8, 4), torch.randint(0, 3, (8,))) for _ in range(3)]
    else:
        ns["batches"] = [(rng.standard_normal((8, 4)).astype(np.float32), rng.integers(0, 3, 8).astype(np.int64))
                         for _ in range(3)]
    return ns


@pytest.mark.parametrize("path,line,code", SNIPPETS, ids=[f"{_rel(p)}:{n}" for p, n, _ in SNIPPETS])
def test_snippet_runs(path, line, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write_model(str(tmp_path / "model.onnx"))
    _write_model_with_loss(str(tmp_path / "model_with_loss.onnx"))
    # Blank lines in front, so that line numbers in errors are the document's own.
    compiled = compile("\n" * (line - 1) + code, path, "exec")
    try:
        exec(compiled, _namespace(code))
    except Exception as e:
        where = [f.lineno for f in traceback.extract_tb(e.__traceback__) if f.filename == path]
        at = where[-1] if where else line
        pytest.fail(f"{_rel(path)}:{at}: the snippet starting at line {line} fails: "
                    f"{type(e).__name__}: {e}\n{traceback.format_exc()}", pytrace=False)


def test_documents_have_snippets():
    assert any(_rel(p) == "README.md" for p, _, _ in SNIPPETS)


# --- The documents point inside the tree ----------------------------------------------------------

# Top-level folders of the tree; a `path` in backquotes that starts with one of them must exist.
_TREE = ("ir", "autodiff", "optim", "exec", "distributed", "providers", "train", "python", "tests",
         "frontends", "bench", "examples", "scripts", "docs")
_PATH = re.compile(r"`((?:%s)/[A-Za-z0-9_./*-]*)`" % "|".join(_TREE))
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("path", DOCS, ids=[_rel(p) for p in DOCS])
def test_named_paths_exist(path):
    text = open(path, encoding="utf-8").read()
    assert "../shared" not in text, f"{_rel(path)} points outside the repository"
    missing = []
    for match in _PATH.finditer(text):
        name = match.group(1)
        if not glob.glob(os.path.join(ROOT, name)):
            missing.append(f"{_rel(path)}:{text.count(chr(10), 0, match.start()) + 1}: `{name}`")
    for match in _LINK.finditer(text):
        target = match.group(1)
        if re.match(r"[a-z]+:", target):
            continue
        resolved = os.path.normpath(os.path.join(os.path.dirname(path), target))
        line = text.count("\n", 0, match.start()) + 1
        if not resolved.startswith(ROOT + os.sep):
            missing.append(f"{_rel(path)}:{line}: link {target} leaves the repository")
        elif not os.path.exists(resolved):
            missing.append(f"{_rel(path)}:{line}: link {target} has no target")
    assert not missing, "paths named in the documentation do not exist:\n" + "\n".join(missing)


# --- import graft -----------------------------------------------------------------------------------

def _python(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(ROOT, "python")] +
                                        ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


def test_import_graft_does_not_import_torch():
    result = _python("import graft, sys; assert 'torch' not in sys.modules, 'import graft imported torch'")
    assert result.returncode == 0, result.stderr


def test_subpackages_load_on_first_use():
    result = _python("""
import sys
import graft
lazy = ["autodiff", "backend", "checkpoint", "distributed", "lr_scheduler", "optim", "torch", "training"]
assert set(lazy) <= set(dir(graft)), sorted(set(lazy) - set(dir(graft)))
assert callable(graft.autodiff.gradient_model)
assert callable(graft.optim.add_optimizer)
assert callable(graft.distributed.rank)
assert callable(graft.checkpoint.load_checkpoint)
assert callable(graft.lr_scheduler.StepLR)
assert callable(graft.backend.GraftBackend.prepare)
assert callable(graft.training.TrainingSession)
import graft.training.api
assert callable(graft.training.api.Module)
assert 'torch' not in sys.modules, 'a subpackage other than graft.torch imported torch'
assert issubclass(graft.torch.Module, sys.modules['torch'].nn.Module)
assert graft.torch is sys.modules['graft.torch']
try:
    graft.no_such_module
except AttributeError as e:
    assert 'no_such_module' in str(e)
else:
    raise AssertionError('graft.no_such_module did not raise AttributeError')
""")
    assert result.returncode == 0, result.stderr
