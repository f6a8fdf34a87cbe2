"""The include graph follows the layers (docs/architecture.md): every #include of a source in a
layer's folder names a layer that CMakeLists.txt lets that layer use, and no include runs back up
a layer. The allowed edges are read from the graft_layer(...) calls, so CMake is their one home;
the rules the architecture states outright are checked on their own too."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Folder of the sources -> the layer target that compiles them.
FOLDERS = {
    "ir": "graft_ir",
    "autodiff": "graft_autodiff",
    "optim": "graft_optim",
    "exec": "graft_exec",
    "distributed": "graft_distributed",
    "providers/cpu": "graft_cpu",
    "providers/cuda": "graft_cuda",
    "train": "graft_train",
}
SUFFIXES = {".h", ".cc", ".cu"}


def layers() -> dict[str, tuple[set[str], set[str]]]:
    """target -> (PUBLIC deps, PRIVATE deps) among the layer targets."""
    text = (ROOT / "CMakeLists.txt").read_text()
    found = {}
    for call in re.finditer(r"graft_layer\(\s*(graft_\w+)(.*?)\)\s*$", text, re.S | re.M):
        words = call.group(2).split()
        public, private, current = set(), set(), None
        for w in words:
            if w in ("SOURCES", "PUBLIC", "PRIVATE"):
                current = w
            elif current == "PUBLIC" and w in FOLDERS.values():
                public.add(w)
            elif current == "PRIVATE" and w in FOLDERS.values():
                private.add(w)
        found[call.group(1)] = (public, private)
    return found


def public_closure(target: str, graph: dict) -> set[str]:
    seen, pending = {target}, [target]
    while pending:
        for dep in graph[pending.pop()][0]:
            if dep not in seen:
                seen.add(dep)
                pending.append(dep)
    return seen


def allowed(target: str, graph: dict, header: bool) -> set[str]:
    """What a header (PUBLIC edges only) or a source (PUBLIC and PRIVATE) of `target` may include."""
    public, private = graph[target]
    out = {target}
    for dep in public | (set() if header else private):
        out |= public_closure(dep, graph)
    return out


def folder_of(path: str) -> str | None:
    for folder in sorted(FOLDERS, key=len, reverse=True):
        if path.startswith(folder + "/"):
            return folder
    return None


def includes(path: Path) -> list[tuple[int, str]]:
    out = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        m = re.match(r'\s*#\s*include\s*"([^"]+)"', line)
        if m:
            out.append((number, m.group(1)))
    return out


def sources() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*") if p.suffix in SUFFIXES)


def test_every_layer_is_declared():
    graph = layers()
    assert set(FOLDERS.values()) <= set(graph), f"layers missing from CMakeLists.txt: {set(FOLDERS.values()) - set(graph)}"


def test_includes_follow_the_cmake_edges():
    graph = layers()
    wrong = []
    for path in sources():
        rel = path.relative_to(ROOT).as_posix()
        target = FOLDERS[folder_of(rel)]
        ok = allowed(target, graph, header=path.suffix == ".h")
        for number, included in includes(path):
            other = folder_of(included)
            if other is not None and FOLDERS[other] not in ok:
                wrong.append(f"{rel}:{number} includes {included} ({target} may use {sorted(ok)})")
    assert not wrong, "includes that CMakeLists.txt does not allow:\n" + "\n".join(wrong)


def test_no_include_runs_back_up_a_layer():
    below_train = ("ir/", "autodiff/", "optim/", "exec/", "providers/", "distributed/")
    below_distributed = ("ir/", "autodiff/", "optim/", "exec/")
    wrong = []
    for path in sources():
        rel = path.relative_to(ROOT).as_posix()
        for number, included in includes(path):
            if rel.startswith(below_train) and included.startswith("train/"):
                wrong.append(f"{rel}:{number} includes {included}")
            if rel.startswith(below_distributed) and included.startswith("distributed/"):
                wrong.append(f"{rel}:{number} includes {included}")
    assert not wrong, "includes that run back up a layer:\n" + "\n".join(wrong)


def test_the_check_sees_a_back_edge():
    """The checker itself: an exec source including train/ is refused by the CMake edges."""
    graph = layers()
    assert "graft_train" not in allowed("graft_exec", graph, header=False)
    assert "graft_distributed" not in allowed("graft_exec", graph, header=False)
    assert "graft_exec" in allowed("graft_train", graph, header=True)
