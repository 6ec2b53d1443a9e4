import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def pcb_dir() -> Path:
    """Real PCB patches (MVTec layout); LATENTLINE_TEST_DATA overrides the location."""
    path = Path(os.environ.get("LATENTLINE_TEST_DATA", REPO.parent / "shared" / "data" / "deeppcb-patches"))
    if not (path / "train" / "good").is_dir():
        pytest.fail(f"test data not found at {path} (set LATENTLINE_TEST_DATA)")
    return path
