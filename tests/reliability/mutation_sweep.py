"""Mutation sweep: mutants of the ONNX backend suite's node test models, each loaded and run by
graft in a child process, classified by how the child ended.

    python tests/reliability/mutation_sweep.py -n 20000 --seed 1 --save-crashes /tmp/sweep_crashes
    python tests/reliability/mutation_sweep.py --replay /tmp/sweep_crashes/mutant_1_000123.onnx

Each mutant (mutations.py: protobuf and byte edits, plus for some a wrong feed) is made in this
process, which imports graft, onnx and NumPy once and forks one child per mutant. The child caps
its address space (RLIMIT_AS, --memory-gb above what it inherits, so a huge allocation fails as an
error instead of waking the OOM killer), creates a graft.InferenceSession, feeds the test-set
inputs (or inputs made from the declared types and shapes where those no longer fit), runs it
twice (the second run takes the planned memory pattern) and exits with a code saying whether it
ran or raised. The outcomes:

    ok            the session was made and ran
    clean errors  graft raised (any Python exception)
    crashes       the child died of a signal or exited without reporting
    hangs         the child outlived --timeout seconds and was killed

The last line printed is `crashes C, hangs H, clean errors E, ok K (of N mutants, seed S)`; the
exit status is 1 when C + H > 0. With --save-crashes DIR every crashing or hanging mutant is
written as DIR/mutant_<seed>_<index>.onnx with its feeds (.pkl) and a one-line reason (.txt);
--replay runs such a file in this process, so a debugger or a core dump sees the crash.

The node test models come from the onnx package (data/node/*/model.onnx, or generated in memory
by onnx.backend.test where the package ships them as code); the mutants of a (seed, index) pair
depend only on the onnx version.
"""

from __future__ import annotations

import argparse
import faulthandler
import gc
import glob
import os
import pickle
import random
import resource
import select
import signal
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from graft._types import NAMES, code_of, numpy_dtype

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mutations  # noqa: E402

CODE_OK, CODE_RAISED_LOADING, CODE_RAISED_RUNNING = 77, 78, 79  # child exit codes; any other is a crash


@dataclass
class Case:
    name: str
    model: onnx.ModelProto
    feeds: dict  # graph input name -> test-set value (array, list for a sequence)


@dataclass
class Mutant:
    seed: int
    index: int
    base: str
    blob: bytes
    mutations: list[str]
    feeds: dict
    feed_mutation: str | None = None
    outcome: str = ""
    reason: str = ""
    seconds: float = 0.0
    retried: bool = False  # a timed-out mutant runs once more, alone
    stage: str = "loading"  # where run_mutant is: "loading", then "running"
    error: str = ""  # the last line the child wrote on stderr, when it did not run

    def describe(self) -> str:
        done = "; ".join(self.mutations + ([f"feed: {self.feed_mutation}"] if self.feed_mutation else []))
        return f"mutant {self.index} of {self.base}: {done}"


def _value(proto_or_value):
    if isinstance(proto_or_value, onnx.TensorProto):
        return numpy_helper.to_array(proto_or_value)
    if isinstance(proto_or_value, list):
        return [_value(v) for v in proto_or_value]
    if proto_or_value is None or isinstance(proto_or_value, np.ndarray):
        return proto_or_value
    return np.asarray(proto_or_value)


def _read_input(path: str, type_proto: onnx.TypeProto):
    data = open(path, "rb").read()
    kind = type_proto.WhichOneof("value")
    if kind == "sequence_type":
        seq = onnx.SequenceProto()
        seq.ParseFromString(data)
        return numpy_helper.to_list(seq)
    if kind == "optional_type":
        opt = onnx.OptionalProto()
        opt.ParseFromString(data)
        return numpy_helper.to_optional(opt)
    tensor = onnx.TensorProto()
    tensor.ParseFromString(data)
    return numpy_helper.to_array(tensor)


def load_folder(data_dir: str) -> list[Case]:
    """The <test>/model.onnx files under `data_dir` with their test_data_set_0/input_<i>.pb."""
    cases = []
    for model_path in sorted(glob.glob(os.path.join(data_dir, "*", "model.onnx"))):
        model = onnx.load(model_path)
        inputs = [v for v in model.graph.input if v.name not in {t.name for t in model.graph.initializer}]
        folder = os.path.join(os.path.dirname(model_path), "test_data_set_0")
        feeds = {}
        for i, v in enumerate(inputs):
            path = os.path.join(folder, f"input_{i}.pb")
            if os.path.exists(path):
                feeds[v.name] = _read_input(path, v.type)
        cases.append(Case(os.path.basename(os.path.dirname(model_path)), model, feeds))
    return cases


def load_corpus() -> list[Case]:
    """The node test models with the inputs of their first test set, sorted by name: the onnx
    package's files where it ships them, else the test cases it generates."""
    data_dir = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "node")
    if os.path.isdir(data_dir):
        return load_folder(data_dir)
    from onnx.backend.test.loader import load_node_model_tests

    cases = []

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for test in load_node_model_tests():
            if test.model is None:
                continue
            inputs = test.data_sets[0][0] if test.data_sets else []
            names = [v.name for v in test.model.graph.input]
            feeds = {n: _value(v) for n, v in zip(names, inputs) if v is not None}
            cases.append(Case(test.name, test.model, feeds))
    return sorted(cases, key=lambda c: c.name)


def make_context(corpus: list[Case]) -> dict:
    ops = sorted({n.op_type for c in corpus for g in mutations.graphs(c.model.graph) for n in g.node})
    attrs = sorted({a.name for c in corpus for n in c.model.graph.node for a in n.attribute})
    strings = sorted({a.s for c in corpus for n in c.model.graph.node for a in n.attribute if a.s})
    return {"op_types": ops, "attribute_names": attrs, "strings": strings or [b"x"]}


def make_mutant(corpus: list[Case], context: dict, seed: int, index: int) -> Mutant:
    rng = random.Random(f"{seed}/{index}")
    case = corpus[rng.randrange(len(corpus))]
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    blob, done = mutations.mutate(model, rng, dict(context, feeds=case.feeds))
    feed_mutation = rng.choice(FEED_MUTATIONS) if rng.random() < 0.1 else None
    return Mutant(seed, index, case.name, blob, done, case.feeds, feed_mutation)


# Feeds ---------------------------------------------------------------------------------------

FEED_MUTATIONS = ["other dtype", "extra axis", "flattened", "missing", "unknown name", "strided view", "empty",
                  "extreme values", "extreme values"]
TYPE_CODES = {name: code for code, name in NAMES.items()}


def _synthesize(type_str: str, shape, base, rng: np.random.Generator):
    if type_str.startswith(("seq(", "optional(")):
        inner = type_str[type_str.index("(") + 1:-1]
        if type_str.startswith("optional("):
            return _synthesize(inner, shape, base, rng)
        return [_synthesize(inner, [2], None, rng) for _ in range(2)]
    dtype = numpy_dtype(TYPE_CODES[type_str[len("tensor("):-1]])
    base_shape = np.shape(base) if isinstance(base, np.ndarray) else None
    dims = []
    for axis, d in enumerate(shape if shape is not None else (base_shape or [2])):
        if isinstance(d, int) and 0 <= d <= 64:
            dims.append(d)
        elif base_shape is not None and axis < len(base_shape):
            dims.append(base_shape[axis])
        else:
            dims.append(1 if isinstance(d, int) else 2)
    if dtype == object:
        count = int(np.prod(dims))
        return np.array((["a", "bc", ""] * (count // 3 + 1))[:count], dtype=object).reshape(dims)
    if dtype.kind == "b":
        return rng.random(dims) < 0.5
    if dtype.kind in "iu":
        return rng.integers(0, 3, dims).astype(dtype)
    return rng.standard_normal(dims).astype(dtype)


def _fits(value, type_str: str, shape) -> bool:
    if not isinstance(value, np.ndarray):
        return not type_str.startswith("tensor(")
    if not type_str.startswith("tensor(") or TYPE_CODES.get(type_str[7:-1]) is None:
        return False
    try:
        if code_of(value.dtype) != TYPE_CODES[type_str[7:-1]]:
            return False
    except TypeError:
        return False
    if shape is None:
        return True
    return len(shape) == value.ndim and all(not isinstance(d, int) or d == n for d, n in zip(shape, value.shape))


def make_feeds(session, mutant: Mutant) -> dict:
    """The test-set input where it fits the declared type and shape, otherwise one made from
    them; then the mutant's feed mutation, if any. Seeded by the mutant's (seed, index)."""
    rng = np.random.default_rng([mutant.seed, mutant.index])
    feeds = {}
    for arg in session.get_inputs():
        base = mutant.feeds.get(arg.name)
        if base is not None and _fits(base, arg.type, arg.shape):
            feeds[arg.name] = base
        else:
            try:
                feeds[arg.name] = _synthesize(arg.type, arg.shape, base, rng)
            except (KeyError, TypeError, ValueError):
                pass  # a type no array can hold: left out, graft must name the missing input
    arrays = [k for k, v in feeds.items() if isinstance(v, np.ndarray)]
    kind = mutant.feed_mutation
    if kind == "unknown name" or (kind and not arrays):
        feeds["no_such_input"] = np.zeros(2, np.float32)
        return feeds
    if kind:
        name = arrays[int(rng.integers(len(arrays)))]
        v = feeds[name]
        if kind == "other dtype":
            feeds[name] = np.zeros(v.shape, np.float32) if v.dtype == object else \
                v.astype(np.int32 if v.dtype == np.float64 else np.float64)
        elif kind == "extra axis":
            feeds[name] = v[None]
        elif kind == "flattened":
            feeds[name] = v.reshape(-1)
        elif kind == "missing":
            del feeds[name]
        elif kind == "strided view":
            feeds[name] = np.repeat(v, 2, axis=0)[::2] if v.ndim else v
        elif kind == "empty":
            feeds[name] = v.reshape(-1)[:0]
        elif kind == "extreme values" and v.size:
            feeds[name] = mutations.extreme_values(v, random.Random(f"{mutant.seed}/{mutant.index}/feed"))
    return feeds


# Running -------------------------------------------------------------------------------------


def run_mutant(mutant: Mutant) -> None:
    """Loads and runs the mutant in this process; raises what graft raises."""
    import graft

    options = graft.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = graft.InferenceSession(mutant.blob, options, providers=["CPUExecutionProvider"])
    mutant.stage = "running"
    feeds = make_feeds(session, mutant)
    session.run(None, feeds)
    session.run(None, feeds)


def _child(mutant: Mutant, err_path: str, memory_bytes: int, runner) -> None:
    """Runs in the forked child; never returns."""
    code = CODE_RAISED_LOADING
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        faulthandler.disable()  # a crash is told by the signal; pytest's handler writes elsewhere
        devnull = os.open(os.devnull, os.O_WRONLY)
        err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(devnull, 1)
        os.dup2(err, 2)
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        try:
            runner(mutant)
            code = CODE_OK
        except BaseException as e:  # noqa: BLE001 - any exception is a clean error
            code = CODE_RAISED_LOADING if mutant.stage == "loading" else CODE_RAISED_RUNNING
            message = " ".join(str(e).split())[:300]
            os.write(2, f"raised {type(e).__name__}: {message}\n".encode(errors="replace"))
        gc.collect()  # sessions are destroyed before the exit code is given
    finally:
        os._exit(code)


def _address_space() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _last_line(path: str) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - 4000))
            lines = [line.strip() for line in f.read().decode(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def _classify(status: int) -> tuple[str, str]:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return "crash", f"signal {signal.Signals(sig).name}"
    code = os.WEXITSTATUS(status)
    if code == CODE_OK:
        return "ok", ""
    if code == CODE_RAISED_LOADING:
        return "clean error", "loading"
    if code == CODE_RAISED_RUNNING:
        return "clean error", "running"
    return "crash", f"exit status {code} without reporting"


def save(mutant: Mutant, folder: str) -> str:
    os.makedirs(folder, exist_ok=True)
    stem = os.path.join(folder, f"mutant_{mutant.seed}_{mutant.index:06d}")
    with open(stem + ".onnx", "wb") as f:
        f.write(mutant.blob)
    with open(stem + ".pkl", "wb") as f:
        pickle.dump({"seed": mutant.seed, "index": mutant.index, "base": mutant.base, "mutations": mutant.mutations,
                     "feeds": mutant.feeds, "feed_mutation": mutant.feed_mutation}, f)
    with open(stem + ".txt", "w") as f:
        f.write(f"{mutant.outcome} ({mutant.reason}): {mutant.describe()}\n")
    return stem + ".onnx"


def _threads(pid: int) -> str:
    """The state and kernel wait channel of each thread of `pid`: a busy loop shows R, a
    deadlock S with futex_wait."""
    states = []
    for tid in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
        try:
            state = open(f"/proc/{pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split()[0]
            wchan = open(f"/proc/{pid}/task/{tid}/wchan").read().strip()
        except OSError:
            continue
        states.append(state + (f" {wchan}" if wchan not in ("", "0") else ""))
    return ", ".join(states)


def _run_children(mutants, jobs: int, timeout: float, memory: int, runner, tmp: str, done) -> None:
    """Runs each mutant of the iterable in a forked child, `jobs` at a time, and calls
    done(mutant) as each ends with its outcome and reason set."""
    running: dict[int, tuple[Mutant, int, float, str]] = {}  # pidfd -> (mutant, pid, start, stderr file)
    poller = select.poll()
    pending = iter(mutants)
    exhausted = False
    while not exhausted or running:
        while len(running) < jobs and not exhausted:
            mutant = next(pending, None)
            if mutant is None:
                exhausted = True
                break
            err_path = os.path.join(tmp, f"child{mutant.index}.err")
            pid = os.fork()
            if pid == 0:
                _child(mutant, err_path, memory, runner)
            pidfd = os.pidfd_open(pid)
            poller.register(pidfd, select.POLLIN)
            running[pidfd] = (mutant, pid, time.monotonic(), err_path)
        if not running:
            break
        now = time.monotonic()
        wait_ms = max(1, int(1000 * (min(start for _, _, start, _ in running.values()) + timeout - now)))
        ready = {fd for fd, _ in poller.poll(wait_ms)}
        now = time.monotonic()
        for fd in list(running):
            mutant, pid, start, err_path = running[fd]
            if fd not in ready:
                if now - start < timeout:
                    continue
                threads = _threads(pid)
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                mutant.outcome, mutant.reason = "hang", f"killed after {timeout:g} s; threads: {threads}"
            else:
                _, status = os.waitpid(pid, 0)
                mutant.outcome, mutant.reason = _classify(status)
                if mutant.outcome != "ok":
                    mutant.error = _last_line(err_path)
                if mutant.outcome == "crash" and mutant.error:
                    mutant.reason += f"; stderr: {mutant.error}"
            mutant.seconds = now - start
            poller.unregister(fd)
            os.close(fd)
            del running[fd]
            if os.path.exists(err_path):
                os.unlink(err_path)
            done(mutant)


def check_harness(corpus: list[Case], runner=run_mutant) -> str | None:
    """Runs a few unmutated models the way mutants run; returns why the harness cannot run them
    (graft's Python package and its native module out of step, ...), or None."""
    with tempfile.TemporaryDirectory(prefix="graft-sweep-") as tmp:
        cases = [c for c in corpus if c.name in ("test_add", "test_conv_with_strides_padding", "test_relu")]
        failed: list[Mutant] = []
        mutants = [Mutant(0, i, c.name, c.model.SerializeToString(), [], c.feeds) for i, c in enumerate(cases)]
        _run_children(mutants, 1, 60.0, _address_space() + (3 << 30), runner, tmp,
                      lambda m: failed.append(m) if m.outcome != "ok" else None)
    if not cases:
        return "the node test models test_add, test_conv_with_strides_padding and test_relu are missing"
    if failed:
        return "; ".join(f"{m.base}: {m.outcome} ({m.reason}) {m.error}" for m in failed)
    return None


def sweep(corpus, context, count: int, seed: int, jobs: int = 2, timeout: float = 10.0, memory_gb: float = 3.0,
          save_dir: str | None = None, first: int = 0, report=print, runner=run_mutant) -> dict[str, list]:
    """Runs mutants first..first+count-1 of `seed` (`runner(mutant)` in each child); returns
    {"crash": [...], "hang": [...]} (the mutants) and {"clean error": n, "ok": n} (counts).

    A mutant that times out is run once more, alone, before it counts as hung, so a machine busy
    with other work does not make hangs."""
    outcomes: dict = {"crash": [], "hang": [], "clean error": 0, "ok": 0, "by kind": {}, "raised": {},
                      "bare resource": []}
    memory = _address_space() + int(memory_gb * (1 << 30))
    slow: list[Mutant] = []

    def done(mutant: Mutant) -> None:
        if mutant.outcome == "hang" and not mutant.retried:
            mutant.retried = True
            slow.append(mutant)
            return
        if mutant.outcome in ("crash", "hang"):
            outcomes[mutant.outcome].append(mutant)
            where = f" -> {save(mutant, save_dir)}" if save_dir else ""
            report(f"{mutant.outcome.upper()} ({mutant.reason}) {mutant.describe()}{where}")
        else:
            outcomes[mutant.outcome] += 1
        if mutant.outcome == "clean error" and any(t in mutant.error for t in BARE_RESOURCE_ERRORS):
            outcomes["bare resource"].append(f"{mutant.describe()} -> {mutant.error}")
        if mutant.outcome == "clean error" and mutant.error.startswith("raised "):
            name = mutant.error.split()[1].rstrip(":")
            count, example = outcomes["raised"].get(name, (0, f"{mutant.describe()} -> {mutant.error}"))
            outcomes["raised"][name] = (count + 1, example)
        result = f"raised {mutant.reason}" if mutant.outcome == "clean error" else mutant.outcome
        for kind in {m.split(":")[0] for m in mutant.mutations} | ({"feed"} if mutant.feed_mutation else set()):
            row = outcomes["by kind"].setdefault(kind, {})
            row[result] = row.get(result, 0) + 1

    # The sweep itself stays within bounds too: a mutation gone wrong raises MemoryError here
    # instead of taking the machine's memory.
    limit = memory + (4 << 30)
    previous = resource.getrlimit(resource.RLIMIT_AS)
    if previous[0] == resource.RLIM_INFINITY or previous[0] > limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, previous[1]))
    gc.collect()
    gc.freeze()  # children share the parent's objects without the collector touching their pages
    try:
        with tempfile.TemporaryDirectory(prefix="graft-sweep-") as tmp:
            mutants = (make_mutant(corpus, context, seed, i) for i in range(first, first + count))
            _run_children(mutants, jobs, timeout, memory, runner, tmp, done)
            _run_children(slow, 1, timeout, memory, runner, tmp, done)
    finally:
        gc.unfreeze()
        resource.setrlimit(resource.RLIMIT_AS, previous)
    return outcomes


# What a resource failure says when nothing named the node or the size it asked for.
BARE_RESOURCE_ERRORS = ("bad_alloc", "max_size()", "_M_default_append", "vector::reserve")


def summary(outcomes: dict, count: int, seed: int) -> str:
    return (f"crashes {len(outcomes['crash'])}, hangs {len(outcomes['hang'])}, "
            f"clean errors {outcomes['clean error']}, ok {outcomes['ok']} (of {count} mutants, seed {seed})")


def stats(outcomes: dict) -> str:
    """A table of outcomes by mutation kind (a mutant counts once under each of its kinds), and
    the exceptions raised by type."""
    columns = ["ok", "raised loading", "raised running", "crash", "hang"]
    lines = [f"{'mutation':<14}" + "".join(f"{c:>16}" for c in columns)]
    for kind, row in sorted(outcomes["by kind"].items()):
        lines.append(f"{kind:<14}" + "".join(f"{row.get(c, 0):>16}" for c in columns))
    raised = sorted(outcomes["raised"].items(), key=lambda item: -item[1][0])
    lines.append("raised: " + ", ".join(f"{name} {n}" for name, (n, _) in raised))
    lines += [f"  first {name}: {example}" for name, (_, example) in raised]
    bare = outcomes["bare resource"]
    lines.append(f"resource errors naming neither node nor size (std::bad_alloc, max_size): {len(bare)}")
    lines += [f"  {example}" for example in bare[:5]]
    return "\n".join(lines)


def replay(path: str) -> int:
    """Runs a saved mutant in this process; prints what graft raised, if anything."""
    with open(path[: -len(".onnx")] + ".pkl", "rb") as f:
        meta = pickle.load(f)
    with open(path, "rb") as f:
        blob = f.read()
    mutant = Mutant(meta["seed"], meta["index"], meta["base"], blob, meta["mutations"], meta["feeds"],
                    meta["feed_mutation"])
    print(mutant.describe(), flush=True)
    try:
        run_mutant(mutant)
    except Exception as e:  # noqa: BLE001 - reported, as the sweep counts it
        print(f"clean error: {type(e).__name__}: {e}")
        return 0
    print("ok")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=2000, help="number of mutants (default 2000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--first", type=int, default=0, help="index of the first mutant (default 0)")
    parser.add_argument("--jobs", type=int, default=2, help="children running at once (default 2)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before a child counts as hung")
    parser.add_argument("--memory-gb", type=float, default=3.0,
                        help="address space a child may add to what it inherits (default 3)")
    parser.add_argument("--save-crashes", metavar="DIR", help="write crashing and hanging mutants here")
    parser.add_argument("--replay", metavar="MUTANT.onnx", help="run one saved mutant in this process")
    parser.add_argument("--stats", action="store_true", help="print the outcomes by mutation kind")
    args = parser.parse_args(argv)
    if args.replay:
        return replay(args.replay)
    import graft  # noqa: F401 - imported once here, before the children fork
    import ml_dtypes  # noqa: F401 - likewise: graft imports it on first use of a type NumPy lacks

    start = time.monotonic()
    corpus = load_corpus()
    context = make_context(corpus)
    print(f"{len(corpus)} node test models loaded in {time.monotonic() - start:.1f} s", file=sys.stderr, flush=True)
    problem = check_harness(corpus)
    if problem:
        print(f"unmutated models do not run, so no mutant would: {problem}", file=sys.stderr)
        return 2
    outcomes = sweep(corpus, context, args.n, args.seed, args.jobs, args.timeout, args.memory_gb,
                     args.save_crashes, args.first, report=lambda line: print(line, flush=True))
    print(f"{args.n} mutants in {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)
    if args.stats:
        print(stats(outcomes), flush=True)
    print(summary(outcomes, args.n, args.seed), flush=True)
    return 1 if outcomes["crash"] or outcomes["hang"] else 0


if __name__ == "__main__":
    sys.exit(main())
