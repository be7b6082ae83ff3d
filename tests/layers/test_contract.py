"""One shared, parametrised contract test over every layer (cases listed in tests/layers/cases_*.py)."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest
import torch

from .contract import assert_layer_contract


def _cases():
    cases = []
    here = Path(__file__).parent
    for info in pkgutil.iter_modules([str(here)]):
        if info.name.startswith("cases_"):
            module = importlib.import_module(f"{__package__}.{info.name}")
            cases += module.CASES
    return cases


CASES = _cases()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_layer_contract(case, dtype):
    _, make = case
    torch.manual_seed(0)
    assert_layer_contract(make(), dtype=dtype)
