"""Rank kill: data-parallel training on 2 ranks, one of them SIGKILLed at a random point; graft's
collective timeout must end the survivor, which must say what it was waiting for.

    python tests/reliability/rank_kill.py --points 20 --seed 1

Each point is one `mpirun -np 2` job training an MLP with graft.training.TrainingSession
(gradients all-reduced in several buckets, the loss averaged for logging with
graft.distributed.all_reduce, a checkpoint every few steps, a barrier at the end). The victim,
a random rank, kills itself with SIGKILL at a random place: before the session is made, before,
inside or after a step, before, inside or after a checkpoint save, or before the final barrier
("inside" is a timer firing partway through the operation, timed from the earlier ones; the
place printed is where the victim really was when it fired). Transport (shared memory or TCP),
whether collectives overlap backward (GRAFT_OVERLAP_COLLECTIVES) and ZeRO stage 0 or 1 (whose
step ends in broadcasts from each parameter's owner, and whose checkpoint gathers the optimizer
state on rank 0) are drawn per point too.

Open MPI's launcher stops a job when a local rank dies; with orte_enable_recovery it does not
(as with a peer lost on another node), so what ends the survivor is graft's own timeout
(GRAFT_COLLECTIVE_TIMEOUT_S, --timeout). A point passes when the survivor exits non-zero within
the timeout + 30 s of the kill and its stderr names the collective, the step (the one the
survivor was in) and the dead rank. Each rank's exit status and time come from the shell that
runs it, since mpirun's reflects only the launcher.

Prints one line per point and `N of N kills detected ...` last; exits 1 if any point fails.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

STEPS, CHECKPOINT_EVERY, BATCH, HIDDEN = 12, 4, 256, 768  # a step takes tens of milliseconds
PLACES = ["before_session", "before_step", "inside_step", "inside_step", "after_step", "before_checkpoint",
          "inside_checkpoint", "after_checkpoint", "before_final_barrier"]
TIMEOUT_MESSAGE = re.compile(
    r"graft\.distributed: (?P<collective>all_reduce|broadcast|all_gather|reduce_scatter|barrier)"
    r"(?: \((?P<label>[^)]*)\))?(?: of \d+ \w+ elements)? on rank (?P<rank>\d+) of 2 at step (?P<step>\d+) "
    r"timed out after [\d.]+ s waiting for (?:peer|root) rank (?P<peer>\d+)")


# The worker: one rank of the training job -------------------------------------------------------


def mlp():
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    sizes = [(HIDDEN, 64), (HIDDEN, HIDDEN), (10, HIDDEN)]
    inits, nodes, x = [], [], "x"
    for i, (out, inp) in enumerate(sizes):
        weight = (rng.standard_normal((out, inp)) / np.sqrt(inp)).astype(np.float32)
        inits += [numpy_helper.from_array(weight, f"fc{i}.weight"),
                  numpy_helper.from_array(np.zeros(out, np.float32), f"fc{i}.bias")]
        nodes.append(helper.make_node("Gemm", [x, f"fc{i}.weight", f"fc{i}.bias"], [f"h{i}"], transB=1))
        if i < len(sizes) - 1:
            nodes.append(helper.make_node("Relu", [f"h{i}"], [f"r{i}"]))
            x = f"r{i}"
    nodes += [helper.make_node("Sub", [f"h{len(sizes) - 1}", "target"], ["err"]),
              helper.make_node("Mul", ["err", "err"], ["sq"]),
              helper.make_node("ReduceMean", ["sq"], ["loss"], keepdims=0)]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64]),
                                             helper.make_tensor_value_info("target", TensorProto.FLOAT, ["N", 10])],
                              [helper.make_tensor_value_info("loss", TensorProto.FLOAT, [])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    return model


class Victim:
    """Where this rank is, and the kill that waits for a place."""

    def __init__(self, rank: int, victim: int, place: str, step: int, fraction: float):
        self.armed = rank == victim
        self.place, self.step, self.fraction = place, step, fraction
        self.where = "starting"
        self.durations: dict[str, list[float]] = {"step": [], "checkpoint": []}

    def die(self, where: str) -> None:
        print(f"KILL {time.time():.6f} {where}", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    def at(self, place: str, step: int) -> None:
        if self.armed and place == self.place and step == self.step:
            self.die(f"{place.replace('_', ' ')} {step}")

    def run(self, kind: str, step: int, what, label: str):
        """Runs what(), killing this rank partway through it when that is the chosen place."""
        self.where = f"inside {label}"
        timer = None
        if self.armed and self.place == f"inside_{kind}" and step == self.step:
            earlier = self.durations[kind][1:] or self.durations[kind]  # the first run plans memory
            delay = self.fraction * min(earlier)
            timer = threading.Timer(delay, lambda: self.die(self.where))
            timer.start()
        start = time.monotonic()
        result = what()
        self.durations[kind].append(time.monotonic() - start)
        self.where = f"after {label}"
        if timer is not None:
            timer.join()  # it fires after the operation if the operation was quicker
        return result


def worker(args) -> None:
    import graft.distributed as dist
    from graft.training import TrainingSession

    model = mlp()
    # Everything slow comes before MPI_Init, which waits for both ranks: the collective timeout
    # then measures only the training.
    dist.init()
    rank = dist.rank()
    victim = Victim(rank, args.victim, args.place, args.step, args.fraction)
    rng = np.random.default_rng(rank)
    victim.at("before_session", 0)
    sess = TrainingSession(model, loss="loss", optimizer="adamw", lr=1e-3, bucket_mb=0.5,
                           zero_stage=args.zero_stage, intra_op_num_threads=1)
    checkpoint = os.path.join(args.folder, "train.ckpt")
    for step in range(STEPS):
        victim.at("before_step", step)
        print(f"STEP {step}", flush=True)
        x = rng.standard_normal((BATCH, 64)).astype(np.float32)
        feeds = {"x": x, "target": np.tanh(x[:, :10])}
        loss = victim.run("step", step, lambda: sess.train_step(feeds), f"step {step}")
        victim.at("after_step", step)
        dist.all_reduce(np.array(loss, np.float32))  # the loss to log, averaged over the ranks
        if (step + 1) % CHECKPOINT_EVERY == 0:
            victim.at("before_checkpoint", step)
            victim.run("checkpoint", step, lambda: sess.save_checkpoint(checkpoint), f"checkpoint {step}")
            victim.at("after_checkpoint", step)
    victim.at("before_final_barrier", STEPS - 1)
    dist.barrier()
    print("DONE", flush=True)


# The driver: one mpirun per point ---------------------------------------------------------------


def draw(seed: int, point: int) -> dict:
    rng = random.Random(f"{seed}/{point}")
    place = rng.choice(PLACES)
    checkpoint_steps = list(range(CHECKPOINT_EVERY - 1, STEPS, CHECKPOINT_EVERY))
    if place == "before_session":
        step = 0
    elif place == "before_final_barrier":
        step = STEPS - 1
    elif "checkpoint" in place:  # an inside kill is timed from the earlier ones
        step = rng.choice(checkpoint_steps[1:] if place == "inside_checkpoint" else checkpoint_steps)
    else:
        step = rng.randrange(2 if place == "inside_step" else 0, STEPS)
    return {"victim": rng.randrange(2), "place": place, "step": step, "fraction": rng.uniform(0.05, 0.95),
            "transport": rng.choice(["self,vader", "self,tcp"]), "overlap": rng.choice(["0", "1"]),
            "zero_stage": rng.choice([0, 1])}


def run_point(point: dict, timeout: float, folder: str) -> dict:
    """Runs one job; returns what happened to each rank."""
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        raise SystemExit("mpirun not found: install openmpi-bin")
    import graft  # the ranks import the graft package this process finds

    package = os.path.dirname(os.path.dirname(os.path.abspath(graft.__file__)))
    env = dict(os.environ, OMP_NUM_THREADS="1", GRAFT_COLLECTIVE_TIMEOUT_S=f"{timeout:g}",
               GRAFT_OVERLAP_COLLECTIVES=point["overlap"],
               PYTHONPATH=package + os.pathsep + os.environ.get("PYTHONPATH", ""))
    worker_cmd = " ".join([f'"{sys.executable}"', f'"{os.path.abspath(__file__)}"', "--worker",
                           f"--victim {point['victim']} --place {point['place']} --step {point['step']}",
                           f"--fraction {point['fraction']:.3f} --zero-stage {point['zero_stage']}",
                           f"--folder \"{folder}\""])
    script = (f'{worker_cmd} >"{folder}/rank$OMPI_COMM_WORLD_RANK.out" 2>"{folder}/rank$OMPI_COMM_WORLD_RANK.err"; '
              'echo "EXIT $OMPI_COMM_WORLD_RANK $? $(date +%s.%N)"')
    cmd = [mpirun, "--allow-run-as-root", "--oversubscribe", "-np", "2", "--mca", "btl", point["transport"],
           "--mca", "orte_enable_recovery", "1", "-x", "PYTHONPATH", "-x", "OMP_NUM_THREADS",
           "-x", "GRAFT_COLLECTIVE_TIMEOUT_S", "-x", "GRAFT_OVERLAP_COLLECTIVES", "sh", "-c", script]
    # Start-up and training take seconds; the timeout + 30 s bound is checked from the kill.
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout + 120)
        launcher_timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        launcher_timed_out = True
    exits = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "EXIT":
            exits[int(parts[1])] = (int(parts[2]), float(parts[3]))

    def read(name: str) -> str:
        path = os.path.join(folder, name)
        return open(path).read() if os.path.exists(path) else ""

    ranks = {r: {"out": read(f"rank{r}.out"), "err": read(f"rank{r}.err"), "exit": exits.get(r)} for r in range(2)}
    return {"ranks": ranks, "launcher_timed_out": launcher_timed_out, "launcher_stderr": stderr}


def judge(point: dict, result: dict, timeout: float) -> tuple[bool, str]:
    """Whether the point passes, and its report line."""
    victim, survivor = point["victim"], 1 - point["victim"]
    dead, alive = result["ranks"][victim], result["ranks"][survivor]
    kill = re.search(r"^KILL (\S+) (.+)$", dead["out"], re.M)
    transport = "tcp" if "tcp" in point["transport"] else "shared memory"
    setting = f"{transport}, overlap {point['overlap']}" + (", ZeRO-1" if point["zero_stage"] else "")
    if kill is None or dead["exit"] is None or dead["exit"][0] != 137:
        return False, (f"rank {victim} was to be killed {point['place'].replace('_', ' ')} {point['step']} ({setting}) "
                       f"but was not (exit {dead['exit']}); stderr: {dead['err'][-300:]!r}")
    kill_time, where = float(kill.group(1)), kill.group(2)
    head = f"rank {victim} SIGKILLed {where} ({setting}); survivor rank {survivor}:"
    if alive["exit"] is None:
        why = (f"still running {timeout + 120:g} s after the job started, when the job was killed"
               if result["launcher_timed_out"] else "no exit status reported")
        return False, f"{head} {why}; mpirun's stderr: {result['launcher_stderr'][-300:]!r}"
    code, end = alive["exit"]
    seconds = end - kill_time
    steps = re.findall(r"^STEP (\d+)$", alive["out"], re.M)
    expected_step = int(steps[-1]) if steps else 0
    message = TIMEOUT_MESSAGE.search(alive["err"])
    named = (message is not None and int(message.group("peer")) == victim and int(message.group("rank")) == survivor
             and int(message.group("step")) == expected_step)
    what = (f"named {message.group('collective')}" + (f" ({message.group('label')})" if message.group("label") else "")
            + f", step {message.group('step')}, dead rank {message.group('peer')}" if message else "named nothing")
    ok = code != 0 and seconds <= timeout + 30 and named
    line = (f"{head} exit {code} after {seconds:.1f} s; {what} "
            f"(expected step {expected_step}, rank {victim}): {'yes' if named else 'NO'}")
    if not ok and not message:
        line += f"; stderr: {alive['err'][-400:]!r}"
    return ok, line


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=5.0, help="GRAFT_COLLECTIVE_TIMEOUT_S (default 5)")
    parser.add_argument("--keep", metavar="DIR", help="keep each point's rank logs in DIR/point<i>")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    for name in ("--victim", "--step", "--zero-stage"):
        parser.add_argument(name, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--place", help=argparse.SUPPRESS)
    parser.add_argument("--fraction", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    passed, seconds = 0, []
    with tempfile.TemporaryDirectory(prefix="graft-rank-kill-") as tmp:
        for i in range(args.points):
            point = draw(args.seed, i)
            folder = os.path.join(args.keep, f"point{i}") if args.keep else os.path.join(tmp, f"point{i}")
            os.makedirs(folder, exist_ok=True)
            result = run_point(point, args.timeout, folder)
            ok, line = judge(point, result, args.timeout)
            passed += ok
            match = re.search(r"after ([\d.]+) s", line)
            if match:
                seconds.append(float(match.group(1)))
            print(f"point {i + 1:2d}/{args.points}: {'ok  ' if ok else 'FAIL'} {line}", flush=True)
    spread = (f"{min(seconds):.1f}-{max(seconds):.1f} s, median {statistics.median(seconds):.1f} s"
              if seconds else "none")
    print(f"{passed} of {args.points} kills detected: the survivor exited non-zero within {args.timeout + 30:g} s "
          f"naming the collective, step and dead rank (collective timeout {args.timeout:g} s; exits after {spread}; "
          f"seed {args.seed})", flush=True)
    return 0 if passed == args.points else 1


if __name__ == "__main__":
    sys.exit(main())
