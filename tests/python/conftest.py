import os
import sys

import pytest

# Tests run against the in-tree package (python/graft with the freshly built _C).
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))

# onnxruntime reads models up to IR version 13; onnx.helper writes its newest IR by default.
ORT_IR_VERSION = 10


@pytest.fixture
def ort_ir_version():
    return ORT_IR_VERSION
