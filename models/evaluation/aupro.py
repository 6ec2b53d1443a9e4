"""AUPRO: the area under the per-region-overlap curve up to a false-positive rate of 30 %.

After Bergmann, Batzner, Fauser, Sattlegger and Steger, "The MVTec Anomaly Detection Dataset"
(IJCV 2021), section 5.1: pixel AUROC is dominated by large defects (they hold most of the
defect pixels); PRO gives every connected defect region the same weight, so a map that finds the
small ones scores higher. For a threshold, PRO is the mean over regions of the share of each
region's pixels at or above it; FPR is the share of defect-free pixels at or above it. The curve
is integrated over FPR in [0, ``max_fpr``] and divided by ``max_fpr`` (1.0 is perfect, a random
map about ``max_fpr / 2``).

Thresholds are taken at ``steps`` quantiles of the defect-free and of the defect pixels rather
than at every distinct score (the MVTec code's way): the same curve at a fraction of the memory,
with the FPR and PRO of each threshold computed exactly.

>>> import numpy as np
>>> masks = np.zeros((2, 8, 8), bool); masks[0, :2, :2] = True; masks[1, 5:, 5:] = True
>>> round(aupro(masks.astype(float), masks), 3)  # the map is the mask: every region found at once
1.0
>>> noise, square = np.random.default_rng(0).random((20, 32, 32)), np.zeros((20, 32, 32), bool)
>>> square[:, 4:12, 4:12] = True
>>> round(aupro(noise, square), 2)  # a map of noise: about max_fpr / 2
0.15
"""

import numpy as np
from scipy import ndimage


def aupro(maps, masks, max_fpr: float = 0.3, steps: int = 200) -> float | None:
    """``maps``: anomaly scores [H, W] per image (an [N, H, W] array or a list of images of any
    sizes); ``masks``: bool of the same shapes, True on defect pixels. None without any defect
    region or defect-free pixel."""
    regions = list(_regions(maps, masks))
    background = np.sort(np.concatenate([np.ravel(m[~k]) for m, k in zip(maps, masks)]))
    if not regions or not len(background):
        return None
    fpr, pro = _curve(background, regions, _thresholds(background, regions, max_fpr, steps))
    # the curve up to max_fpr, its end interpolated between the points either side (as MVTec's code)
    inside = fpr <= max_fpr
    end = np.interp(max_fpr, fpr, pro)
    return float(np.trapezoid(np.r_[pro[inside], end], np.r_[fpr[inside], max_fpr]) / max_fpr)


def _thresholds(background: np.ndarray, regions: list[np.ndarray], max_fpr: float, steps: int) -> np.ndarray:
    """Quantiles of the defect-free pixels at evenly spaced FPRs, and of the defect pixels (so
    that ties and gaps in the background do not hide where the regions are found), and +inf."""
    levels = np.linspace(0.0, 1.0, steps)
    defect = np.concatenate(regions)
    quantiles = np.r_[np.quantile(background, 1.0 - levels * max_fpr), np.quantile(defect, levels)]
    return np.unique(np.r_[quantiles, np.inf])


def _curve(background: np.ndarray, regions: list[np.ndarray], thresholds: np.ndarray):
    """(FPR, PRO) at each threshold (a pixel at or above it is called a defect), by FPR."""
    fpr = 1.0 - np.searchsorted(background, thresholds, side="left") / len(background)
    pro = np.mean([1.0 - np.searchsorted(r, thresholds, side="left") / len(r) for r in regions], axis=0)
    order = np.lexsort((pro, fpr))
    return fpr[order], pro[order]


def _regions(maps: np.ndarray, masks: np.ndarray):
    """Each connected defect region's scores, sorted (8-connectivity, as the MVTec code labels)."""
    structure = np.ones((3, 3), bool)
    for anomaly_map, mask in zip(maps, masks):
        labelled, count = ndimage.label(mask, structure=structure)
        for region in range(1, count + 1):
            yield np.sort(anomaly_map[labelled == region])
