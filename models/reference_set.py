"""A reference data set with known ground truth, for ``latentline calibrate`` and ``evaluate``.

Defects of known physical size (a spot of known diameter, a scratch of known length) are drawn
onto real good images at a stated pixel pitch, anti-aliased, so a size between two pixel counts
is drawn as such. Layout::

    OUT/reference/<n>.png + values.csv   drawn on DATA_DIR/train/good images: calibration
    OUT/test/<quantity>/ + values.csv    drawn on DATA_DIR/test/good images: evaluation
    OUT/test/good/                       untouched DATA_DIR/test/good images
    OUT/reference_set.json               how it was made
"""

import csv
import json
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from models.dataset import GOOD, evenly_spaced, list_images

KINDS = {"spot": "spot_diameter", "scratch": "scratch_length"}
SUPERSAMPLE = 8  # drawn at 8x and area-averaged: edges carry the sub-pixel part of the size
VALUES_CSV = "values.csv"


@dataclass(frozen=True)
class ReferenceDefect:
    """What to draw. Sizes are uniform in [min_mm, max_mm]; the default spans a factor of 10."""

    kind: str = "spot"
    # Millimetres per pixel of the source images (a stated property of the camera and optics).
    pixel_pitch_mm: float = 0.05
    min_mm: float = 0.15
    max_mm: float = 1.5
    width_mm: float = 0.1  # a scratch's width
    grey: int = 128  # mid-grey stands out on both the dark substrate and bright copper

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}, got {self.kind!r}")
        if not 0 < self.min_mm < self.max_mm:
            raise ValueError("need 0 < min_mm < max_mm")

    @property
    def quantity(self) -> str:
        return KINDS[self.kind]


def draw_defect(image: Image.Image, size_mm: float, defect: ReferenceDefect,
                rng: np.random.Generator) -> Image.Image:
    """``image`` with one defect of ``size_mm`` at a random place (wholly inside) and angle."""
    grey = image.convert("L")
    size_px = size_mm / defect.pixel_pitch_mm
    alpha = _coverage(grey.size, size_px, defect, rng)
    pixels = np.asarray(grey, np.float32)
    drawn = pixels * (1 - alpha) + defect.grey * alpha
    return Image.fromarray(np.rint(drawn).astype(np.uint8), mode="L")


def _coverage(shape: tuple[int, int], size_px: float, defect: ReferenceDefect,
              rng: np.random.Generator) -> np.ndarray:
    """Fraction of each pixel the defect covers, [height, width] in [0, 1]."""
    width, height = shape
    s = SUPERSAMPLE
    angle = rng.uniform(0, math.pi)
    half_x, half_y = _half_extent(size_px, defect, angle)
    if 2 * half_x >= width or 2 * half_y >= height:
        raise ValueError(f"a {size_px:.1f} px {defect.kind} does not fit a {width}x{height} image")
    cx, cy = rng.uniform(half_x, width - half_x), rng.uniform(half_y, height - half_y)
    mask = Image.new("L", (width * s, height * s), 0)
    canvas = ImageDraw.Draw(mask)
    if defect.kind == "spot":
        r = size_px / 2
        # PIL's box includes its last pixel: one supersampled pixel less keeps the stated diameter
        canvas.ellipse([(cx - r) * s, (cy - r) * s, (cx + r) * s - 1, (cy + r) * s - 1], fill=255)
    else:
        dx, dy = math.cos(angle) * size_px / 2, math.sin(angle) * size_px / 2
        line_width = max(1, round(defect.width_mm / defect.pixel_pitch_mm * s))
        canvas.line([((cx - dx) * s, (cy - dy) * s), ((cx + dx) * s, (cy + dy) * s)], fill=255,
                    width=line_width)
    covered = np.asarray(mask, np.float32).reshape(height, s, width, s).mean(axis=(1, 3))
    return covered / 255.0


def _half_extent(size_px: float, defect: ReferenceDefect, angle: float) -> tuple[float, float]:
    if defect.kind == "spot":
        return size_px / 2, size_px / 2
    pad = defect.width_mm / defect.pixel_pitch_mm / 2
    return (abs(math.cos(angle)) * size_px / 2 + pad, abs(math.sin(angle)) * size_px / 2 + pad)


def make_reference_set(data_dir: Path, out_dir: Path, defect: ReferenceDefect = ReferenceDefect(),
                       n_reference: int = 300, n_test: int = 200, n_good: int = 100, seed: int = 0,
                       progress: bool = True) -> dict:
    """Write the reference set (module docstring) and return its description."""
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    train = [i.path for i in list_images(data_dir, "train", GOOD)]
    test = [i.path for i in list_images(data_dir, "test", GOOD)]
    # Reference sizes evenly cover the range (calibration wants no gaps); test sizes are random.
    reference_sizes = rng.permutation(np.linspace(defect.min_mm, defect.max_mm, n_reference))
    test_sizes = rng.uniform(defect.min_mm, defect.max_mm, n_test)
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


def read_values(directory: Path) -> dict[str, float]:
    """``values.csv`` (header ``file,value``) as {file name: value}; every file must exist."""
    with open(Path(directory) / VALUES_CSV, newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"file", "value"} <= set(reader.fieldnames):
            raise ValueError(f"{directory / VALUES_CSV}: the header must be 'file,value'")
        values = {row["file"]: float(row["value"]) for row in reader}
    missing = [name for name in values if not (Path(directory) / name).is_file()]
    if missing:
        raise ValueError(f"{directory / VALUES_CSV} names missing images: {missing[:3]}")
    return values
