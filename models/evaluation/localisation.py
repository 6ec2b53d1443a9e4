"""The localisation part of ``latentline evaluate``: pixel AUROC and AUPRO against ground-truth
masks (when DATA_DIR/ground_truth has them) and the grid of test images with their anomaly maps."""

from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.metrics import roc_auc_score

from latentline.models.dataset import GOOD, LabelledImage, evenly_spaced
from latentline.models.encoding.images import decode_image
from latentline.models.evaluation.aupro import aupro
from latentline.models.inspector import Inspector
from latentline.models.latents import Latents

# Masks and maps are compared with the image's longer side at this many pixels, its aspect kept:
# MVTec-style benchmarks report pixel AUROC at 256 px, and full-size masks of large images would
# cost gigabytes for no change in the figure.
PIXEL_SIDE = 256
CHUNK = 64  # images per anomaly-map call (bounds memory)
GRID_COLUMNS = 4


def mask_path(data_dir: Path, item: LabelledImage) -> Path:
    """MVTec AD naming: ground_truth/<type>/<stem>_mask.png."""
    return Path(data_dir) / "ground_truth" / item.label / f"{item.path.stem}_mask.png"


def localisation(inspector: Inspector, latents: Latents, items: list[LabelledImage],
                 data_dir: Path) -> dict:
    """Pixel AUROC and AUPRO (models/evaluation/aupro.py) over every test image (good images:
    all background), the scorer's anomaly maps upsampled to the masks at ``PIXEL_SIDE``; both
    None without masks."""
    none = {"pixel_auroc": None, "aupro": None}
    defects = [item for item in items if not item.is_good]
    if not defects or not any(mask_path(data_dir, item).is_file() for item in defects):
        return none
    masks, maps = [], []
    for start in range(0, len(items), CHUNK):
        chunk = items[start : start + CHUNK]
        chunk_maps = inspector.anomaly_maps(latents.take(np.arange(start, start + len(chunk))))
        for item, anomaly_map in zip(chunk, chunk_maps):
            masks.append(_mask(data_dir, item))
            maps.append(_resize(anomaly_map, masks[-1].shape, Image.Resampling.BILINEAR))
    truth = np.concatenate([m.ravel() for m in masks])
    if not 0 < truth.mean() < 1:
        return none
    scores = np.concatenate([m.ravel() for m in maps])
    return {"pixel_auroc": float(roc_auc_score(truth, scores)), "aupro": aupro(maps, masks),
            "pixel_side": PIXEL_SIDE}


def _mask(data_dir: Path, item: LabelledImage) -> np.ndarray:
    """The item's mask at ``PIXEL_SIDE`` (all background for a good image or a missing mask)."""
    path = mask_path(data_dir, item)
    if item.is_good or not path.is_file():
        with Image.open(item.path) as image:  # the header alone: its size
            return np.zeros(_compared_shape(image.size), bool)
    with Image.open(path) as mask:
        values = np.asarray(mask.convert("L"), np.float32)
    return _resize(values, _compared_shape(values.shape[::-1]), Image.Resampling.NEAREST) > 127


def _compared_shape(size: tuple[int, int]) -> tuple[int, int]:
    """(height, width) with the longer side at ``PIXEL_SIDE``, from a (width, height) size."""
    width, height = size
    scale = PIXEL_SIDE / max(width, height)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _resize(values: np.ndarray, shape: tuple[int, int], resample) -> np.ndarray:
    image = Image.fromarray(np.asarray(values, np.float32), mode="F")
    return np.asarray(image.resize(shape[::-1], resample))


def grid_examples(truth: np.ndarray, scores: np.ndarray, per_type: int = GRID_COLUMNS) -> list[int]:
    """Per type (good first), the images at evenly spaced score ranks: the grid shows typical
    maps, the worst and the best, not a hand-picked few."""
    chosen = []
    for label in [GOOD] + sorted(set(truth) - {GOOD}):
        mine = np.flatnonzero(truth == label)
        ranked = mine[np.argsort(scores[mine])]
        chosen += [int(i) for i in evenly_spaced(list(ranked), per_type)]
    return chosen


def anomaly_grid(path: Path, inspector: Inspector, latents: Latents, items: list[LabelledImage],
                 truth: np.ndarray, scores: np.ndarray) -> None:
    from latentline.models.evaluation.plots import (
        report as report_plots,  # matplotlib only when a report is written
    )
    from latentline.models.overlay import overlay

    chosen = grid_examples(truth, scores)
    maps = inspector.anomaly_maps(latents.take(chosen))
    images = [decode_image(items[i].path.read_bytes()) for i in chosen]
    panels = [(image, overlay(image, m), f"{truth[i]}  {scores[i]:.2f}")
              for i, image, m in zip(chosen, images, maps)]
    report_plots.image_grid(path, panels, GRID_COLUMNS)
