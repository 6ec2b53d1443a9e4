"""``latentline make-reference``: write a reference set with known ground truth, for ``latentline
calibrate`` and ``evaluate``.

Defects of known size (models/metrology/reference.py) drawn onto real good images. Layout::

    OUT/reference/<n>.png + values.csv   drawn on DATA_DIR/train/good images: calibration
    OUT/test/<quantity>/ + values.csv    drawn on DATA_DIR/test/good images: evaluation
    OUT/test/good/                       untouched DATA_DIR/test/good images
    OUT/reference_set.json               how it was made
"""

import csv
import json
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from latentline.models.dataset import GOOD, VALUES_CSV, evenly_spaced, list_images
from latentline.models.metrology.reference import ReferenceDefect, draw_defect, plan_sizes


def make_reference_set(data_dir: Path, out_dir: Path, defect: ReferenceDefect = ReferenceDefect(),
                       n_reference: int = 300, n_test: int = 200, n_good: int = 100, seed: int = 0,
                       progress: bool = True) -> dict:
    """Write the reference set (module docstring) and return its description."""
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    train = [i.path for i in list_images(data_dir, "train", GOOD)]
    test = [i.path for i in list_images(data_dir, "test", GOOD)]
    reference_sizes, test_sizes = plan_sizes(defect, n_reference, n_test, rng)
    _write_drawn(out_dir / "reference", evenly_spaced(train, n_reference), reference_sizes, defect, rng,
                 progress)
    _write_drawn(out_dir / "test" / defect.quantity, evenly_spaced(test, n_test), test_sizes, defect, rng,
                 progress)
    good_dir = out_dir / "test" / GOOD
    good_dir.mkdir(parents=True, exist_ok=True)
    for path in evenly_spaced(test[::-1], n_good):  # from the other end: other backgrounds
        shutil.copyfile(path, good_dir / path.name)
    description = {"quantity": defect.quantity, "unit": "mm", "defect": asdict(defect), "seed": seed,
                   "source": str(Path(data_dir).name), "n_reference": n_reference, "n_test": n_test,
                   "n_good": n_good}
    (out_dir / "reference_set.json").write_text(json.dumps(description, indent=2) + "\n")
    return description


def _write_drawn(directory: Path, sources: list[Path], sizes: np.ndarray, defect: ReferenceDefect,
                 rng: np.random.Generator, progress: bool) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, (source, size) in enumerate(tqdm(list(zip(sources, sizes)), desc=directory.name,
                                                unit="img", disable=not progress)):
        name = f"{index:04d}_{source.stem}.png"
        with Image.open(source) as image:
            draw_defect(image, float(size), defect, rng).save(directory / name)
        rows.append((name, f"{size:.4f}"))
    write_values(directory, rows)


def write_values(directory: Path, rows: list[tuple[str, str]]) -> None:
    with open(directory / VALUES_CSV, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "value"])
        writer.writerows(rows)
