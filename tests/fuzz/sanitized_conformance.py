"""Runs the ONNX backend conformance suite (tests/conformance/run.py) through whichever graft is
first on the path (scripts/sanitize.sh puts the sanitized build there) and compares each test's
status with the tracked tests/conformance/results.txt, which it never rewrites: this run's
results go to --out.

    python tests/fuzz/sanitized_conformance.py --out build-san/conformance            # all
    python tests/fuzz/sanitized_conformance.py --out DIR --shard 8 --also gemm --also conv

--shard K keeps one test name in K (by a hash of the name, so the same ones every time);
--also STEM adds the tests whose name contains test_<STEM>. Prints run.py's REGRESSION lines
(tracked as passing, not passing here), DIFFERS lines (any other change of status) and
`conformance: N passed, N failed, N skipped (of M)`; exits non-zero on any difference.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
RUN_PY = os.path.join(HERE, "..", "conformance", "run.py")


def read_statuses(path: str) -> dict[str, str]:
    statuses = {}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2 and not line.startswith("#"):
                statuses[parts[0]] = parts[1]
    return statuses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder for this run's results.txt")
    parser.add_argument("--shard", type=int, default=1, help="keep one test in K (default 1: all)")
    parser.add_argument("--also", action="append", default=[], help="also the tests named test_<STEM>*")
    args = parser.parse_args()

    spec = importlib.util.spec_from_file_location("conformance_run", RUN_PY)
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    tracked_path = run.RESULTS
    os.makedirs(args.out, exist_ok=True)
    # run.py compares with, then rewrites, RESULTS: here a copy of the tracked file.
    run.RESULTS = os.path.join(args.out, "results.txt")
    shutil.copyfile(tracked_path, run.RESULTS)

    whole_suite = run._suite
    stems = tuple(f"test_{stem.lower()}" for stem in args.also)

    def chosen() -> dict:
        return {name: case for name, case in whole_suite().items()
                if zlib.crc32(name.encode()) % args.shard == 0 or name.startswith(stems)}

    run._suite = chosen
    sys.argv = [RUN_PY]
    # run.py prints its own `conformance:` line; this one, with the number of tests, comes last.
    rc = run.main()

    tracked = read_statuses(tracked_path)
    ours = read_statuses(run.RESULTS)
    # Regressions (tracked as passing) are run.py's REGRESSION lines already.
    differs = [name for name in ours
               if name in tracked and tracked[name] != "PASS" and ours[name] != tracked[name]]
    for name in differs:
        print(f"DIFFERS {name}: {tracked[name]} in results.txt, {ours[name]} here")
    new = [name for name in ours if name not in tracked]
    for name in new:
        print(f"DIFFERS {name}: not in results.txt, {ours[name]} here")
    counts = {status: sum(1 for s in ours.values() if s == status) for status in ("PASS", "FAIL", "SKIP")}
    print(f"conformance: {counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped "
          f"(of {len(ours)}{'' if args.shard == 1 and not stems else ' chosen'}, {len(tracked)} tracked)")
    return 1 if rc or differs or new else 0


if __name__ == "__main__":
    sys.exit(main())
