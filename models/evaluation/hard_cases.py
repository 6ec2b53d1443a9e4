"""``latentline make-hard-cases``: datasets in which the defect is not where the camera was
framed, built from real patches of a dataset in the MVTec AD layout (issue: "any image shape").

Two kinds, both with every source patch recorded:

- ``mosaic``: a ``grid`` x ``grid`` square of tiles; a defect image holds one labelled defect
  patch at a random cell among good patches. The defect is off-centre in most images, so a
  descriptor that reads the middle of the image sees mostly good surface.
- ``strip``: ``length`` tiles side by side, one long image (a line-scan camera's view); a
  defect strip holds one defect patch at a random position.

Good tiles of train images come from DATA_DIR/train/good, those of test images from
DATA_DIR/test/good, so nothing seen in fitting is tested on. Each test defect image gets a
mask (MVTec naming: ground_truth/<type>/<stem>_mask.png), one of two kinds (``masks``):

- ``tile``: the whole defect tile. The source patches are windows around one annotated defect
  with no mask of their own, so the tile is the region known to hold it; it rewards blurred maps.
- ``twin``: the defect's own pixels. deeppcb-patches cuts each good patch as the same window of
  the defect-free template board, and where a defect patch's good twin (same file name under
  <split>/good) exists, the pixels in which the two differ are exactly the defect (the boards are
  aligned and binarised). Only defects with a twin are used: 40 of the full set's 900 test
  defects, a small set, but with masks as tight as MVTec AD's.

``--grid 1`` gives the patches themselves, centre-cropped, with their masks. Layout::

    OUT/train/good/, OUT/train/<type>/, OUT/test/good/, OUT/test/<type>/, OUT/ground_truth/<type>/
    OUT/hard_cases.json    how it was made and, per image, its source patches and defect cell
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from latentline.models.dataset import GOOD, evenly_spaced, list_images

# grey levels two aligned, binarised board windows must differ by to count as the defect (the
# boards are 0 or 255 with a few grey edge pixels from resampling)
TWIN_DIFFERENCE = 64


@dataclass(frozen=True)
class HardCases:
    """``kind``: mosaic or strip; ``tile``: side in pixels each source patch is centre-cropped
    (or padded) to; ``grid``: tiles per side of a mosaic; ``length``: tiles in a strip;
    ``masks``: tile or twin (module docstring)."""

    kind: str = "mosaic"
    tile: int = 64
    grid: int = 3
    length: int = 8
    n_train_good: int = 300
    n_test_good: int = 100
    n_test_per_type: int = 60
    seed: int = 0
    masks: str = "tile"

    def __post_init__(self):
        if self.kind not in ("mosaic", "strip"):
            raise ValueError(f"kind must be mosaic or strip, not {self.kind!r}")
        if self.masks not in ("tile", "twin"):
            raise ValueError(f"masks must be tile or twin, not {self.masks!r}")

    @property
    def cells(self) -> int:
        return self.grid * self.grid if self.kind == "mosaic" else self.length

    def position(self, cell: int) -> tuple[int, int]:
        """Top-left pixel of ``cell`` (row-major in a mosaic, left to right in a strip)."""
        if self.kind == "strip":
            return cell * self.tile, 0
        return (cell % self.grid) * self.tile, (cell // self.grid) * self.tile

    @property
    def size(self) -> tuple[int, int]:
        if self.kind == "strip":
            return self.tile * self.length, self.tile
        return self.tile * self.grid, self.tile * self.grid


def make_hard_cases(data_dir: Path, out_dir: Path, plan: HardCases = HardCases(),
                    progress: bool = True) -> dict:
    """Write the dataset (module docstring) and return its description."""
    rng = np.random.default_rng(plan.seed)
    out_dir = Path(out_dir)
    manifest: dict[str, dict] = {}
    for split, n_good in (("train", plan.n_train_good), ("test", plan.n_test_good)):
        goods = [i.path for i in list_images(data_dir, split, GOOD)]
        for label in _labels(data_dir, split):
            defects = [None] * n_good if label == GOOD else _defects(data_dir, split, label, plan)
            folder = out_dir / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for index, defect in enumerate(tqdm(defects, desc=f"{split}/{label}", unit="img",
                                                disable=not progress)):
                name = f"{index:04d}" + ("" if defect is None else f"_{defect.stem}")
                manifest[f"{split}/{label}/{name}.png"] = _write_one(
                    folder / f"{name}.png", goods, defect, plan, rng, _mask_path(out_dir, split, label, name))
    description = {"plan": asdict(plan), "source": Path(data_dir).name, "images": manifest}
    (out_dir / "hard_cases.json").write_text(json.dumps(description, indent=1) + "\n")
    return description


def _labels(data_dir: Path, split: str) -> list[str]:
    return sorted({i.label for i in list_images(data_dir, split)} | {GOOD}, key=lambda x: (x != GOOD, x))


def _defects(data_dir: Path, split: str, label: str, plan: HardCases) -> list[Path]:
    paths = [i.path for i in list_images(data_dir, split, label)]
    if split == "train":
        return paths
    if plan.masks == "twin":
        paths = [p for p in paths if twin_pixels(p, plan.tile) is not None]
    return evenly_spaced(paths, plan.n_test_per_type)


def twin_pixels(defect: Path, side: int) -> np.ndarray | None:
    """[side, side] bool: where the centre-cropped defect patch differs from its good twin (the
    template board's same window, <split>/good/<same name>); None without a twin or a difference."""
    twin = defect.parent.parent / GOOD / defect.name
    if not twin.is_file():
        return None
    with Image.open(defect) as a, Image.open(twin) as b:
        if a.size != b.size:
            return None
        pair = [np.asarray(_fit_tile(image.convert("L"), side), np.int16) for image in (a, b)]
    pixels = np.abs(pair[0] - pair[1]) > TWIN_DIFFERENCE
    return pixels if pixels.any() else None


def _mask_path(out_dir: Path, split: str, label: str, name: str) -> Path | None:
    if split != "test" or label == GOOD:
        return None
    return out_dir / "ground_truth" / label / f"{name}_mask.png"


def _write_one(path: Path, goods: list[Path], defect: Path | None, plan: HardCases,
               rng: np.random.Generator, mask_path: Path | None) -> dict:
    """One image of good tiles with ``defect`` (if any) at a random cell; returns its record."""
    sources = [goods[i] for i in rng.choice(len(goods), size=plan.cells, replace=False)]
    cell = None if defect is None else int(rng.integers(plan.cells))
    if cell is not None:
        sources[cell] = defect
    canvas = Image.new("RGB", plan.size)
    for index, source in enumerate(sources):
        with Image.open(source) as tile:
            canvas.paste(_fit_tile(tile.convert("RGB"), plan.tile), plan.position(index))
    canvas.save(path)
    if mask_path is not None:
        pixels = twin_pixels(defect, plan.tile) if plan.masks == "twin" else None
        _write_mask(mask_path, plan, cell, pixels)
    return {"sources": [s.name for s in sources], "defect_cell": cell}


def _fit_tile(tile: Image.Image, side: int) -> Image.Image:
    """Centre crop (zero-padded if smaller) to ``side`` x ``side``: the defect stays at the tile's centre."""
    width, height = tile.size
    left, top = (width - side) // 2, (height - side) // 2
    return tile.crop((left, top, left + side, top + side))


def _write_mask(path: Path, plan: HardCases, cell: int, pixels: np.ndarray | None = None) -> None:
    """The defect tile, or only its ``pixels`` (a twin's difference) where given."""
    mask = Image.new("L", plan.size, 0)
    x, y = plan.position(cell)
    if pixels is None:
        mask.paste(255, (x, y, x + plan.tile, y + plan.tile))
    else:
        mask.paste(Image.fromarray(pixels.astype(np.uint8) * 255), (x, y))
    path.parent.mkdir(parents=True, exist_ok=True)
    mask.save(path)


def one_by_one(inspector, data_dir: Path, progress: bool = True) -> dict:
    """The test images of a hard-case set (``make_hard_cases``) cut back into their tiles, each
    tile scored alone by ``inspector`` (a bundle fitted on the tiles' own dataset), an image's
    score the maximum of its tiles': the figure an image-level model of the whole image should
    match. Returns its image AUROC."""
    from sklearn.metrics import roc_auc_score

    from latentline.models.encoding.images import decode_image

    plan = HardCases(**json.loads((Path(data_dir) / "hard_cases.json").read_text())["plan"])
    items = list_images(data_dir, "test")
    scores = []
    for item in tqdm(items, desc="tiles one by one", unit="img", disable=not progress):
        image = decode_image(item.path.read_bytes())
        corners = [plan.position(cell) for cell in range(plan.cells)]
        tiles = [image.crop((x, y, x + plan.tile, y + plan.tile)) for x, y in corners]
        result = inspector.infer(np.stack([inspector.prepare(tile) for tile in tiles]))
        scores.append(float(result.assessment.scores.max()))
    truth = [not item.is_good for item in items]
    return {"one_by_one_image_auroc": float(roc_auc_score(truth, scores))}
