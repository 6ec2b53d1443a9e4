"""The localisation part of ``latentline evaluate``: pixel AUROC against ground-truth masks
(when DATA_DIR/ground_truth has them) and the grid of test images with their anomaly maps."""

from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.metrics import roc_auc_score

from models.dataset import GOOD, LabelledImage, evenly_spaced
from models.encoding.images import decode_image
from models.inspector import Inspector
from models.latents import Latents

MASK_GRID = 64  # masks and maps compared on this grid: pixel AUROC without megapixel arrays
CHUNK = 64  # images per anomaly-map call (bounds memory)
GRID_COLUMNS = 4


def mask_path(data_dir: Path, item: LabelledImage) -> Path:
    """MVTec AD naming: ground_truth/<type>/<stem>_mask.png."""
    return Path(data_dir) / "ground_truth" / item.label / f"{item.path.stem}_mask.png"


def pixel_auroc(inspector: Inspector, latents: Latents, items: list[LabelledImage],
                data_dir: Path) -> float | None:
    """Over every pixel of every test image (good images: all background); None without masks."""
    defects = [item for item in items if not item.is_good]
    if not defects or not any(mask_path(data_dir, item).is_file() for item in defects):
        return None
    truth, scores = [], []
    for start in range(0, len(items), CHUNK):
        maps = inspector.anomaly_maps(latents.take(np.arange(start, min(start + CHUNK, len(items)))))
        for item, anomaly_map in zip(items[start : start + CHUNK], maps):
            truth.append(_mask(data_dir, item).ravel())
            scores.append(_resize(anomaly_map, Image.Resampling.BILINEAR).ravel())
    truth, scores = np.concatenate(truth), np.concatenate(scores)
    return float(roc_auc_score(truth, scores)) if 0 < truth.mean() < 1 else None


def _mask(data_dir: Path, item: LabelledImage) -> np.ndarray:
    path = mask_path(data_dir, item)
    if item.is_good or not path.is_file():  # a defect without its mask counts as all background
        return np.zeros((MASK_GRID, MASK_GRID), bool)
    mask = np.asarray(Image.open(path).convert("L"), np.float32)
    return _resize(mask, Image.Resampling.NEAREST) > 127


def _resize(values: np.ndarray, resample) -> np.ndarray:
    image = Image.fromarray(np.asarray(values, np.float32), mode="F")
    return np.asarray(image.resize((MASK_GRID, MASK_GRID), resample))


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
    from models.evaluation.plots import report as report_plots  # matplotlib only when a report is written
    from models.overlay import overlay

    chosen = grid_examples(truth, scores)
    maps = inspector.anomaly_maps(latents.take(chosen))
    images = [decode_image(items[i].path.read_bytes()) for i in chosen]
    panels = [(image, overlay(image, m), f"{truth[i]}  {scores[i]:.2f}")
              for i, image, m in zip(chosen, images, maps)]
    report_plots.image_grid(path, panels, GRID_COLUMNS)
