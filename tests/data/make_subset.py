"""Cut the test suite's deeppcb-patches subset (tests/data/deeppcb-patches) from the full set.

    python tests/data/make_subset.py SOURCE [OUT]

SOURCE is a full deeppcb-patches folder (train/good, train/<type>, test/good, test/<type> and its
LICENSE); OUT defaults to tests/data/deeppcb-patches beside this script. Its train/ and test/ are
replaced, LICENSE is copied, README.md is left as it is. Each folder keeps, in sorted file-name
order, the union of
- its first FIRST images: the tests that take the first n of a folder get the same files as from
  the full set;
- SPREAD images evenly spaced over the whole folder (index round(i * (n - 1) / (SPREAD - 1)), the
  rule of models.dataset.evenly_spaced): the tests that fit on a capped or random share of a folder
  still see every board of it, not only the first boards in name order.
Standalone (standard library only), so the cut does not change when the code does.
"""

import shutil
import sys
from pathlib import Path

# (split, label) -> (FIRST, SPREAD); the defect types not named take DEFECT_COUNTS of their split.
COUNTS = {
    ("train", "good"): (60, 300),  # typed_dir takes the first 60; integration fits max_images=300
    ("test", "good"): (360, 100),  # test_watch_state.py takes the first 360
    ("test", "spur"): (90, 20),  # test_watch_state.py takes the first 90
}
DEFECT_COUNTS = {
    "train": (20, 0),  # the integration bundle's max_per_type=20 (labelled_defects: the first 20)
    "test": (20, 20),  # test_prometheus.py takes the first 20 shorts
}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def evenly_spaced(paths: list[Path], limit: int) -> list[Path]:
    if limit <= 0:
        return []
    if limit >= len(paths):
        return list(paths)
    step = (len(paths) - 1) / max(1, limit - 1)
    return [paths[round(i * step)] for i in range(limit)]


def chosen(folder: Path, first: int, spread: int) -> list[Path]:
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return sorted(set(paths[:first]) | set(evenly_spaced(paths, spread)))


def make_subset(source: Path, out: Path) -> dict[str, int]:
    if not (source / "train" / "good").is_dir() or not (source / "LICENSE").is_file():
        raise SystemExit(f"{source} is not a deeppcb-patches folder (train/good and LICENSE expected)")
    counts = {}
    for split in ("train", "test"):
        shutil.rmtree(out / split, ignore_errors=True)
        for folder in sorted(p for p in (source / split).iterdir() if p.is_dir()):
            first, spread = COUNTS.get((split, folder.name), DEFECT_COUNTS[split])
            target = out / split / folder.name
            target.mkdir(parents=True)
            paths = chosen(folder, first, spread)
            for path in paths:
                shutil.copyfile(path, target / path.name)
            counts[f"{split}/{folder.name}"] = len(paths)
    shutil.copyfile(source / "LICENSE", out / "LICENSE")
    return counts


def main(argv: list[str]) -> None:
    if len(argv) not in (1, 2):
        raise SystemExit(__doc__)
    out = Path(argv[1]) if len(argv) == 2 else Path(__file__).resolve().parent / "deeppcb-patches"
    counts = make_subset(Path(argv[0]), out)
    for name, n in counts.items():
        print(f"{name:16} {n:4}")
    print(f"{'total':16} {sum(counts.values()):4}")


if __name__ == "__main__":
    main(sys.argv[1:])
