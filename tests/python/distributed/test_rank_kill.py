"""A rank SIGKILLed during data-parallel training: graft's collective timeout ends the survivor,
which exits non-zero naming the collective, the step and the dead rank
(tests/reliability/rank_kill.py; 3 points here: a kill after a step, inside a step and before
the final barrier, over shared memory and TCP)."""

import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from dp_common import mpirun, python_env  # noqa: E402

RANK_KILL = os.path.join(HERE, "..", "..", "reliability", "rank_kill.py")


def test_survivor_of_a_killed_rank_names_collective_step_and_rank(tmp_path):
    mpirun()  # skips, saying why, where Open MPI is not installed
    proc = subprocess.run([sys.executable, RANK_KILL, "--points", "3", "--seed", "4", "--timeout", "5",
                           "--keep", str(tmp_path)], env=python_env(), capture_output=True, text=True, timeout=300)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1].startswith("3 of 3 kills detected"), proc.stdout
    # The kill timed to land inside step 6 lands after it when the machine delays the timer.
    assert "after step 1" in lines[0] and re.search("(inside|after) step 6", lines[1]) \
        and "before final barrier 11" in lines[2], proc.stdout


def _judged(survivor_exit=(1, 105.0), stderr=None, stdout="STEP 0\nSTEP 1\nSTEP 2\n"):
    sys.path.insert(0, os.path.dirname(RANK_KILL))
    import rank_kill

    message = ("graft.distributed: all_reduce ([com.graft.AllReduce] node 'bucket0') of 8 float elements on "
               "rank 0 of 2 at step 2 timed out after 5 s waiting for peer rank 1 (set ...); exiting\n")
    point = {"victim": 1, "place": "before_step", "step": 2, "transport": "self,vader", "overlap": "0", "zero_stage": 0}
    result = {"ranks": {1: {"out": "STEP 0\nSTEP 1\nKILL 100.0 before step 2\n", "err": "", "exit": (137, 100.1)},
                        0: {"out": stdout, "err": message if stderr is None else stderr, "exit": survivor_exit}},
              "launcher_timed_out": False, "launcher_stderr": ""}
    return rank_kill.judge(point, result, 5.0)


def test_judge_fails_a_survivor_that_is_slow_silent_or_names_the_wrong_step():
    ok, line = _judged()
    assert ok, line
    assert "named all_reduce ([com.graft.AllReduce] node 'bucket0'), step 2, dead rank 1" in line
    assert not _judged(survivor_exit=(0, 105.0))[0]  # exited 0
    assert not _judged(survivor_exit=(1, 136.0))[0]  # 36 s after the kill
    assert not _judged(survivor_exit=None)[0]  # never exited
    assert not _judged(stderr="Segmentation fault\n")[0]  # named nothing
    assert not _judged(stdout="STEP 0\nSTEP 1\nSTEP 2\nSTEP 3\n")[0]  # was in step 3, named step 2
    wrong_rank = "graft.distributed: barrier on rank 0 of 2 at step 2 timed out after 5 s waiting for peer rank 0"
    assert not _judged(stderr=wrong_rank)[0]
