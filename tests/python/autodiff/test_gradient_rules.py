"""Every gradient rule passes a numeric check; the cases come from the rule registry."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import graft.autodiff  # noqa: E402
from cases import CASES  # noqa: E402
from gradcheck import check  # noqa: E402

RULES = sorted({(domain, op) for domain, op, _, _ in graft.autodiff.rule_ops()})


@pytest.mark.parametrize("domain,op", RULES, ids=[f"{d or 'ai.onnx'}.{o}" for d, o in RULES])
def test_rule(domain, op):
    cases = CASES.get((domain, op))
    assert cases, f"gradient rule for {domain or 'ai.onnx'}.{op} has no numeric check in cases.py"
    for case in cases:
        print(check(case))
