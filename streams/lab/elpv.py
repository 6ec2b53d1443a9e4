"""The demo's default data: real solar-cell electroluminescence images from PyPI (elpv-dataset).

Laid out once in the cache in the dataset layout the CLI reads. Defect probability 0 is good,
1 is defective; the uncertain 1/3 and 2/3 cells are left out. One folder per cell type.
Licence of the images: CC BY-NC-SA 4.0 (see the elpv-dataset package).
"""

import csv
import importlib.util
import random
import shutil
from pathlib import Path

CELL_TYPES = ("mono", "poly")
TRAIN_SHARE = 0.7


def elpv_root() -> Path:
    spec = importlib.util.find_spec("elpv_dataset")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("pip install elpv-dataset (make demo installs it)")
    return Path(spec.origin).parent / "data"


def read_labels(root: Path) -> list[tuple[str, float, str]]:
    with open(root / "labels.csv") as handle:
        rows = csv.reader(handle, delimiter=" ", skipinitialspace=True)
        return [(name, float(prob), kind) for name, prob, kind in rows]


def layout(cache_dir: Path, cell_type: str = "mono", seed: int = 0) -> Path:
    """The folder for ``cell_type``, created on first use; returns it."""
    if cell_type not in CELL_TYPES:
        raise ValueError(f"cell type must be one of {CELL_TYPES}")
    target = Path(cache_dir) / f"elpv-{cell_type}"
    if (target / ".complete").exists():
        return target
    root = elpv_root()
    rows = [row for row in read_labels(root) if row[2] == cell_type]
    good = sorted(name for name, prob, _ in rows if prob == 0.0)
    defective = sorted(name for name, prob, _ in rows if prob == 1.0)
    random.Random(seed).shuffle(good)
    cut = int(len(good) * TRAIN_SHARE)
    shutil.rmtree(target, ignore_errors=True)
    for folder, names in (("train/good", good[:cut]), ("test/good", good[cut:]),
                          ("test/defective", defective)):
        (target / folder).mkdir(parents=True)
        for name in names:
            shutil.copyfile(root / name, target / folder / Path(name).name)
    (target / ".complete").touch()
    return target
