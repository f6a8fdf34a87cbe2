"""A checkpoint that rank 0 cannot write fails on every rank with rank 0's error, for
TrainingSession and for the on-device-training CheckpointState, and no rank hangs in the next
collective waiting for a peer that failed."""

import json
import os
import stat
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from dp_common import mpirun, python_env, run_checked  # noqa: E402


def unwritable_folder(tmp_path) -> str:
    """A read-only folder. Root ignores file modes, so there a folder of the read-only /proc file
    system stands in (no file can be created in it by anyone)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        (folder / "probe").touch()
    except PermissionError:
        return str(folder)
    (folder / "probe").unlink()
    print("running as root: file modes do not stop writes; using /proc/self/fdinfo as the read-only folder")
    return "/proc/self/fdinfo"


def test_rank0_failure_reaches_every_rank(tmp_path):
    folder = unwritable_folder(tmp_path)
    cmd = mpirun(2) + [sys.executable, os.path.join(HERE, "checkpoint_failure_worker.py"), folder, str(tmp_path)]
    run_checked(cmd, env=python_env(GRAFT_COLLECTIVE_TIMEOUT_S="60"), timeout=240)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    print(ranks)
    for what in ("TrainingSession", "CheckpointState"):
        assert ranks[0][what] == ranks[1][what], f"{what}: the ranks got different errors: {ranks}"
        assert ranks[0][what].startswith("InvalidArgument") and folder in ranks[0][what], ranks
    assert ranks[0]["trained on"] and ranks[1]["trained on"]
