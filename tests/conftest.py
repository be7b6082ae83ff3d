import os
from pathlib import Path

import pytest
import torch

# ../shared/data beside the project (CI has the same layout).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"../shared/data not found at {SHARED_DATA}; the tests read the real datasets from there")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


os.environ.setdefault("MPLBACKEND", "Agg")
