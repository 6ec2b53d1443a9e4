"""The dataset layout the CLI reads: MVTec AD, extended with labelled defects under train/, and
``values.csv`` (``file,value``) beside images of known value (a reference set)."""

import csv
import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

from latentline.models.errors import UserInputError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
GOOD = "good"
VALUES_CSV = "values.csv"


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    split: str  # "train" or "test"
    label: str  # "good" or a defect type (the folder name)

    @property
    def is_good(self) -> bool:
        return self.label == GOOD


def list_images(data_dir: Path, split: str, label: str | None = None) -> list[LabelledImage]:
    """Images of ``split`` (all labels, or one), sorted for reproducibility."""
    root = Path(data_dir) / split
    if not root.is_dir():
        raise UserInputError(f"{root} does not exist: a dataset folder holds train/good/ (and test/) "
                             "with one folder of images per label (the MVTec AD layout)")
    folders = [root / label] if label else sorted(p for p in root.iterdir() if p.is_dir())
    return [
        LabelledImage(path, split, folder.name)
        for folder in folders
        if folder.is_dir()
        for path in sorted(folder.iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]


def evenly_spaced(paths: list[Path], limit: int | None) -> list[Path]:
    """At most ``limit`` of ``paths``, evenly spaced: a capped set still spans the whole (sorted)
    folder, and every tool capping at the same limit takes the same images."""
    if limit is None or limit >= len(paths):
        return list(paths)
    step = (len(paths) - 1) / max(1, limit - 1)
    return [paths[round(i * step)] for i in range(limit)]


def at_defect_share(items: list[LabelledImage], share: float, count: int,
                    seed: int = 0) -> list[LabelledImage]:
    """``count`` of ``items`` in a shuffled order of which ``share`` are defects (the rest good),
    each drawn in turn from its own shuffled cycle: a line's stream at a chosen defect share (a
    good line at 0.02, a burst of defects at 1.0).

    >>> items = [LabelledImage(Path(f"{label}{i}.png"), "test", label)
    ...          for label in ("good", "open") for i in range(5)]
    >>> [i.label for i in at_defect_share(items, 0.2, 10)].count("open")
    2
    """
    if not 0 <= share <= 1:
        raise ValueError(f"a defect share is between 0 and 1, got {share}")
    rng = random.Random(seed)
    good = [i for i in items if i.is_good]
    defects = [i for i in items if not i.is_good]
    wanted = round(count * share)
    if (wanted and not defects) or (wanted < count and not good):
        raise ValueError(f"cannot make a defect share of {share} from {len(good)} good and "
                         f"{len(defects)} defective images")
    for group in (good, defects):
        rng.shuffle(group)
    chosen = ([defects[i % len(defects)] for i in range(wanted)]
              + [good[i % len(good)] for i in range(count - wanted)])
    rng.shuffle(chosen)
    return chosen


def fingerprint(paths: list[Path]) -> str:
    """sha256 over file names and contents: which data a model was fitted on."""
    digest = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.name):
        digest.update(path.name.encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


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
