"""Runs the ONNX backend test suite of the pinned `onnx` package through graft.backend.

Writes one line per test to tests/conformance/results.txt (tracked, so a regression shows as a
diff), prints `N passed, N failed, N skipped`, and exits non-zero when a test listed as passing
in the tracked file no longer passes.

    python tests/conformance/run.py            # the whole suite
    python tests/conformance/run.py -k conv    # tests whose name contains "conv"; file untouched
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results.txt")
# Suites stored as files in the onnx package or generated in memory. "real" downloads models at
# run time and "light" needs the reference evaluator on large networks: not run.
# Tests whose expected values come from an unseeded random generator: any run may or may not
# reproduce them, so they are recorded as skipped (with this reason) instead of run.
NONDETERMINISTIC = {"test_bernoulli_cpu", "test_bernoulli_double_cpu", "test_bernoulli_expanded_cpu",
                    "test_bernoulli_double_expanded_cpu"}
KINDS = ("OnnxBackendNodeModelTest", "OnnxBackendSimpleModelTest",
         "OnnxBackendPyTorchConvertedModelTest", "OnnxBackendPyTorchOperatorModelTest")


def _suite() -> dict[str, unittest.TestCase]:
    import onnx.backend.test

    import graft.backend

    backend_test = onnx.backend.test.BackendTest(graft.backend, __name__)
    cases: dict[str, unittest.TestCase] = {}
    loader = unittest.TestLoader()
    for kind, case in backend_test.test_cases.items():
        if kind not in KINDS:
            continue
        for test in loader.loadTestsFromTestCase(case):
            name = test.id().split(".")[-1]
            if name.endswith("_cpu"):
                cases[name] = test
    return cases


def _reason(err: str) -> str:
    lines = [line.strip() for line in err.strip().splitlines() if line.strip()]
    # The exception line is the last one of a traceback.
    text = lines[-1] if lines else "unknown error"
    return text.replace("\t", " ")[:200]


def _worker(names_file: str, out_file: str) -> None:
    """Runs the named tests, appending `name\\tSTATUS\\treason` lines as each finishes."""
    cases = _suite()
    with open(names_file) as f:
        names = [line.strip() for line in f if line.strip()]
    with open(out_file, "a", buffering=1) as out:
        for name in names:
            result = unittest.TestResult()
            cases[name].run(result)
            if result.errors or result.failures:
                status, reason = "FAIL", _reason((result.errors + result.failures)[0][1])
            elif result.skipped:
                status, reason = "SKIP", result.skipped[0][1][:200]
            else:
                status, reason = "PASS", ""
            out.write(f"{name}\t{status}\t{reason}\n")


def _run_isolated(names: list[str]) -> dict[str, tuple[str, str]]:
    """Runs tests in a child process; a test that kills the process is recorded as a crash and
    the rest continue in a fresh child."""
    results: dict[str, tuple[str, str]] = {}
    remaining = list(names)
    with tempfile.TemporaryDirectory() as tmp:
        while remaining:
            names_file = os.path.join(tmp, "names.txt")
            out_file = os.path.join(tmp, "out.txt")
            with open(names_file, "w") as f:
                f.write("\n".join(remaining))
            open(out_file, "w").close()
            proc = subprocess.run([sys.executable, "-W", "ignore", __file__, "--worker", names_file, out_file])
            with open(out_file) as f:
                for line in f:
                    parts = line.rstrip("\n").split("\t")
                    if len(parts) == 3:
                        results[parts[0]] = (parts[1], parts[2])
            remaining = [n for n in remaining if n not in results]
            if remaining and proc.returncode != 0:
                results[remaining[0]] = ("FAIL", f"process crashed (exit code {proc.returncode})")
                remaining = remaining[1:]
            elif remaining:
                for n in remaining:
                    results[n] = ("FAIL", "not run")
                remaining = []
    return results


def _read_tracked() -> dict[str, str]:
    tracked: dict[str, str] = {}
    if os.path.exists(RESULTS):
        with open(RESULTS) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) >= 2 and not line.startswith("#"):
                    tracked[parts[0]] = parts[1]
    return tracked


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-k", dest="pattern", help="only tests whose name contains this substring")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every test's result")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(*args.worker)
        return 0

    names = sorted(_suite())
    if args.pattern:
        names = [n for n in names if args.pattern in n]
    results = _run_isolated([n for n in names if n not in NONDETERMINISTIC])
    for n in names:
        if n in NONDETERMINISTIC:
            results[n] = ("SKIP", "expected values come from an unseeded random generator")
    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    for name in names:
        status, reason = results[name]
        counts[status] += 1
        if args.verbose or (args.pattern and status != "PASS"):
            print(f"{status} {name} {reason}")

    if args.pattern:
        print(f"{counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
        return 0

    tracked = _read_tracked()
    regressions = [n for n in names if tracked.get(n) == "PASS" and results[n][0] != "PASS"]
    import onnx

    with open(RESULTS, "w") as f:
        f.write(f"# ONNX {onnx.__version__} backend tests through graft.backend: "
                f"{counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped\n")
        for name in names:
            status, reason = results[name]
            f.write(f"{name}\t{status}\t{reason}\n" if reason else f"{name}\t{status}\n")
    for n in regressions:
        print(f"REGRESSION {n}: {results[n][1]}")
    print(f"conformance: {counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
