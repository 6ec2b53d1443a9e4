"""The one interface every anomaly scorer implements, and the helpers they share
(tests/models/scoring/test_scorer_conformance.py holds every scorer to it).

A scorer reads the parts of ``models.latents.Latents`` it declares: every scorer gets the pooled
``full`` latents; ``needs_maps`` asks the encoder for spatial feature maps, ``needs_pixels`` for
the prepared input images. Scores are raw (higher is more anomalous, any scale):
``models.scoring.threshold.Thresholds`` calibrates and normalises them so that 0.5 is the
threshold. The scorers by name are in ``models.scoring.registry``.
"""

from dataclasses import dataclass, field
from typing import Protocol, Self

import numpy as np

from latentline.models.latents import Latents


class Scorer(Protocol):
    """Fit on good images only; higher scores are more anomalous."""

    name: str
    needs_maps: bool
    needs_pixels: bool

    def fit(self, latents: Latents, progress: bool = False) -> Self: ...

    def score(self, latents: Latents) -> np.ndarray:
        """[N] float, >= 0."""
        ...

    def anomaly_maps(self, latents: Latents) -> np.ndarray:
        """[N, h, w] float, >= 0, on a grid covering the whole image (any resolution: callers
        resize it to the image)."""
        ...

    def get_params(self) -> dict: ...

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The fitted state as named arrays (saved with numpy, no pickle)."""
        ...

    @classmethod
    def from_arrays(cls, params: dict, arrays: dict[str, np.ndarray]) -> Self: ...


@dataclass(frozen=True)
class Scored:
    """What one pass of a scorer over a batch yields: the scores, and when the same pass gives
    them for free, every part's anomaly map and latents a quantity is measured in ({space: [N,
    dim]}, models/metrology/measurement.py)."""

    scores: np.ndarray  # [N] raw
    maps: np.ndarray | None = None  # [N, h, w] raw
    spaces: dict[str, np.ndarray] = field(default_factory=dict)


def score_batch(scorer: Scorer, latents: Latents) -> Scored:
    """Everything a batch needs from ``scorer`` at once: a scorer whose score, maps and defect
    latents come from one search (PatchCore) offers ``score_batch``; the others score, and maps
    are computed later for the anomalous parts only."""
    if hasattr(scorer, "score_batch"):
        return scorer.score_batch(latents)
    return Scored(scorer.score(latents))


def place(scorer: Scorer, device) -> None:
    """Move a scorer's fitted arrays to the inference device, for the scorers that compute there."""
    if hasattr(scorer, "to"):
        scorer.to(device)


def encoder_inputs(scorer: Scorer) -> dict[str, bool]:
    """What to ask the encoder for on behalf of ``scorer`` (``PooledEncoder.encode_views``' keyword flags)."""
    return {"maps": scorer.needs_maps, "pixels": scorer.needs_pixels}


def held_back_scores(scorer: Scorer, latents: Latents, holdout: float = 0.2, seed: int = 0,
                     progress: bool = False) -> np.ndarray:
    """Fit on all but a random ``holdout`` share of the good images and score those: the scores
    that calibrate the thresholds. The scorer is not refitted on everything afterwards: a denser
    PatchCore bank or a tighter Gaussian would score new good parts lower than its calibration
    did (on 60 images the refitted model put every defect under the threshold)."""
    if not 0 < holdout < 1:
        raise ValueError("holdout must be in (0, 1)")
    order = np.random.default_rng(seed).permutation(len(latents))
    held = max(1, round(len(latents) * holdout))
    scorer.fit(latents.take(order[held:]), progress)
    return scorer.score(latents.take(order[:held]))


def top_mean(maps: np.ndarray, fraction: float) -> np.ndarray:
    """Image score from an anomaly map: the mean of its highest ``fraction`` of cells. Small
    defects light a few cells; the maximum alone is noisier (on deeppcb-patches the top 2 %
    gave 0.986 image AUROC with PaDiM where the maximum gave 0.971). The fraction is of a square
    of the map's short side, so that a long strip's score (many tiles, models/encoding/config.py)
    is not diluted by its length: one defect lights as many cells in a strip as in one tile."""
    flat = maps.reshape(len(maps), -1)
    k = max(1, round(min(maps.shape[1:]) ** 2 * fraction))
    return np.sort(flat, axis=1)[:, -k:].mean(axis=1)


def smooth_maps(maps: np.ndarray, sigma: float) -> np.ndarray:
    """[N, h, w] maps Gaussian-smoothed within each image, ``sigma`` in cells of the patch grid
    (0: unchanged). Neighbouring patches overlap in the image, so a lone hot cell is mostly
    noise; anomalib smooths its maps the same way (sigma 4 px at 256 px input, a third of a
    stride-8 cell). Image scores are taken from the unsmoothed maps. A batch at once, as a
    convolution (models/scoring/maps.py)."""
    if sigma <= 0:
        return maps
    import torch  # only scorers that smooth pay for the import

    from latentline.models.scoring.maps import gaussian_smooth

    with torch.inference_mode():
        smoothed = gaussian_smooth(torch.from_numpy(np.ascontiguousarray(maps)), sigma)
    return smoothed.numpy().astype(maps.dtype, copy=False)


def patch_rows(maps: np.ndarray) -> np.ndarray:
    """[N, C, h, w] feature maps -> [N * h * w, C] float32 patches, image by image, row by row."""
    return np.ascontiguousarray(maps.transpose(0, 2, 3, 1), dtype=np.float32).reshape(-1, maps.shape[1])
