"""Gradient-check cases for the rules in autodiff/rules/ (elementwise ops)."""

from __future__ import annotations

import numpy as np

from gradcheck import Case

CASES: list[Case] = []
