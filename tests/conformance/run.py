"""Runs the ONNX backend test suite of the pinned `onnx` package through graft.backend.

Writes one line per test to tests/conformance/results.txt (tracked, so a regression shows as a
diff), prints `N passed, N failed, N skipped`, and exits non-zero when a test listed as passing
in the tracked file no longer passes.

    python tests/conformance/run.py            # the whole suite
    python tests/conformance/run.py -k conv    # tests whose name contains "conv"; file untouched

Where the ONNX spec leaves output elements undefined (Cast of out-of-range floats to 4- and
2-bit integers), only the defined elements are compared with the expected outputs.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import unittest

import ml_dtypes
import numpy as np
import onnx
import onnx.backend.test
from onnx import TensorProto, numpy_helper
from onnx.backend.test.case.test_case import TestCase

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
SMALL_INTS = (ml_dtypes.int4, ml_dtypes.uint4, ml_dtypes.int2, ml_dtypes.uint2)


def _spec_defined(model_test: TestCase) -> TestCase:
    """`model_test` with the expected outputs of a Cast or CastLike from a float to a 4- or 2-bit
    integer masked where the ONNX spec leaves them undefined (see _mask_out_of_range)."""
    if not model_test.name.startswith(("test_cast_", "test_castlike_")) or not model_test.data_sets:
        return model_test
    data_sets = []
    for inputs, refs in model_test.data_sets:
        x = numpy_helper.to_array(inputs[0]) if isinstance(inputs[0], TensorProto) else inputs[0]
        refs = [numpy_helper.to_array(r) if isinstance(r, TensorProto) else r for r in refs]
        if x.dtype.kind == "f" or x.dtype == ml_dtypes.bfloat16:
            refs = [_mask_out_of_range(x, r) if r.dtype in SMALL_INTS else r for r in refs]
        data_sets.append((inputs, refs))
    return dataclasses.replace(model_test, data_sets=data_sets)


def _mask_out_of_range(x: np.ndarray, ref: np.ndarray) -> np.ma.MaskedArray:
    """`ref`, the float `x` cast to a 4- or 2-bit integer, masked where `x` rounds out of range.
    int4.md and int2.md, section Cast: "Cast to a 4 bit type is done by rounding to the
    nearest-integer (with ties to even) nearest-even integer and truncating"; the Cast schema:
    "Casting from floating point to: [...] fixed point: undefined if OOR". Only elements whose
    rounded input fits the type are defined; the expected values of the others are whatever
    ml_dtypes (behind the reference) gives, which differs between its versions."""
    info = ml_dtypes.iinfo(ref.dtype)
    rounded = np.rint(x.astype(np.float64))
    return np.ma.masked_array(ref, mask=~((rounded >= info.min) & (rounded <= info.max)))


class BackendTest(onnx.backend.test.BackendTest):
    """onnx's runner, comparing only the elements of an expected output that are not masked.
    _add_model_test is where the runner takes in each test case of the (pinned) onnx package."""

    def _add_model_test(self, model_test: TestCase, kind: str) -> None:
        super()._add_model_test(_spec_defined(model_test), kind)

    @classmethod
    def assert_similar_outputs(cls, ref_outputs, outputs, rtol, atol, model_dir=None) -> None:
        # onnx calls this again on each element of a sequence output: those pass through as
        # they are, like every list without a masked output.
        masked = isinstance(ref_outputs, list) and any(isinstance(r, np.ma.MaskedArray)
                                                        for r in ref_outputs)
        if masked:
            ref_outputs, outputs = list(ref_outputs), list(outputs)
            for i, ref in enumerate(ref_outputs):
                if isinstance(ref, np.ma.MaskedArray):
                    np.testing.assert_array_equal(outputs[i].shape, ref.shape,
                                                  err_msg=f"Output {i} has incorrect shape")
                    defined = ~np.ma.getmaskarray(ref)
                    ref_outputs[i], outputs[i] = ref.data[defined], np.asarray(outputs[i])[defined]
        super().assert_similar_outputs(ref_outputs, outputs, rtol, atol, model_dir=model_dir)


def _suite() -> dict[str, unittest.TestCase]:
    import graft.backend

    backend_test = BackendTest(graft.backend, __name__)
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
