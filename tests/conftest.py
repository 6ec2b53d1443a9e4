import os
import shutil
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

# Real PCB patches in the repository: a subset of deeppcb-patches (its README says which files).
TEST_DATA = Path(__file__).resolve().parent / "data" / "deeppcb-patches"
collect_ignore = ["data"]  # images and the script that cuts them: no tests


@pytest.fixture(scope="session")
def pcb_dir() -> Path:
    """Real PCB patches (MVTec layout): the bundled subset, or LATENTLINE_TEST_DATA when set
    (another copy in the same layout, such as the full deeppcb-patches)."""
    path = Path(os.environ.get("LATENTLINE_TEST_DATA") or TEST_DATA)
    if not (path / "train" / "good").is_dir():
        pytest.fail(f"test data not found at {path}")
    return path


# A small deeppcb-patches with three known defect types and spur only in test/ (a new type).
KNOWN_TYPES = ("copper", "pin_hole", "short")
TYPED_COUNTS = {("train", "good"): 60, ("test", "good"): 30, **{("train", t): 12 for t in KNOWN_TYPES},
                **{("test", t): 15 for t in (*KNOWN_TYPES, "spur")}}


def copy_subset(pcb_dir: Path, root: Path, counts: dict[tuple[str, str], int]) -> Path:
    """The first ``n`` images of each (split, label) folder of the real data, under ``root``."""
    for (split, label), n in counts.items():
        target = root / split / label
        target.mkdir(parents=True)
        for path in sorted((pcb_dir / split / label).glob("*.png"))[:n]:
            shutil.copy(path, target / path.name)
    return root


@pytest.fixture(scope="session")
def typed_dir(tmp_path_factory, pcb_dir) -> Path:
    return copy_subset(pcb_dir, tmp_path_factory.mktemp("pcb-types"), TYPED_COUNTS)


@pytest.fixture(scope="session")
def typed_bundle(typed_dir):
    """Pretrained features at 96 px, two views per example: quick, and the types still separate.
    The frozen ``peak`` path (``fine_tune=0``), as the integration bundle;
    tests/models/training/test_fine_tune.py fits the default, fine-tuned one."""
    from latentline.models.encoding.config import EncoderConfig
    from latentline.models.training.fit import TypeOptions, fit_bundle

    with threadpool_limits(limits=1):  # see tests/models/training/test_bundle_and_fit.py
        return fit_bundle(typed_dir, EncoderConfig(image_size=96), device="cpu", progress=False,
                          types=TypeOptions(views=2, fine_tune=0))
