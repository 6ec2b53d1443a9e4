"""Global Mahalanobis distance with a shrinkage covariance (few images, many dimensions).

After "Modeling the Distribution of Normal Data in Pre-Trained Deep Features for Anomaly
Detection" (Rippel, Mertens and Merhof, 2020), with Ledoit and Wolf's shrinkage ("A
well-conditioned estimator for large-dimensional covariance matrices", 2004).

The image score reads the pooled latents. Its anomaly map scores every patch of the feature
maps against one Gaussian of all good patches, wherever they sit: the same idea, per patch.
Measured on deeppcb-patches (docs/scoring.md): image AUROC 0.960, recall 0.27 and F1
0.42 at the defect threshold (1,500 good training images, 320 px); 0.873 from 200 images at
224 px. The default before PatchCore, and the cascade's cheap stage.

>>> import numpy as np
>>> from latentline.models.latents import Latents
>>> rng = np.random.default_rng(0)
>>> def latents(n, shift=0.0):
...     pooled, maps = rng.normal(shift, 1, (n, 8)), rng.normal(shift, 1, (n, 4, 3, 3))
...     return Latents(pooled, pooled, maps)
>>> scorer = MahalanobisScorer().fit(latents(200))
>>> bool(scorer.score(latents(5, shift=3.0)).min() > scorer.score(latents(50)).max())
True
>>> scorer.anomaly_maps(latents(2)).shape
(2, 3, 3)
"""

from typing import Self

import numpy as np
from sklearn.covariance import LedoitWolf, ShrunkCovariance

from latentline.models.latents import Latents
from latentline.models.scoring.base import patch_rows

MAX_MAP_PATCHES = 100_000  # patches sampled to fit the map's Gaussian: plenty for ~200 dims


class GaussianDistance:
    """One Gaussian: mean and shrunk precision; ``distance`` is the Mahalanobis distance."""

    def __init__(self, shrinkage: float | str = "ledoit_wolf"):
        self.shrinkage = shrinkage

    def fit(self, x: np.ndarray) -> Self:
        if self.shrinkage == "ledoit_wolf":
            estimator = LedoitWolf(assume_centered=False)
        else:
            estimator = ShrunkCovariance(shrinkage=float(self.shrinkage))
        estimator.fit(np.asarray(x, dtype=np.float64))
        self.mean_, self.precision_ = estimator.location_, estimator.get_precision()
        return self

    def distance(self, x: np.ndarray) -> np.ndarray:
        centred = np.asarray(x, dtype=np.float64) - self.mean_
        squared = ((centred @ self.precision_) * centred).sum(axis=1)  # BLAS, unlike einsum here
        return np.sqrt(np.maximum(squared, 0.0))


class MahalanobisScorer:
    """``shrinkage``: "ledoit_wolf" picks it from the data; a float in [0, 1] fixes it."""

    name = "mahalanobis"
    needs_maps = True  # for the anomaly map only; the score reads the pooled latents
    needs_pixels = False

    def __init__(self, shrinkage: float | str = "ledoit_wolf", seed: int = 0):
        self.shrinkage = shrinkage
        self.seed = seed

    def get_params(self) -> dict:
        return {"shrinkage": self.shrinkage, "seed": self.seed}

    def fit(self, latents: Latents, progress: bool = False) -> Self:
        self.image_ = GaussianDistance(self.shrinkage).fit(latents.full)
        patches = patch_rows(latents.maps)
        if len(patches) > MAX_MAP_PATCHES:
            rng = np.random.default_rng(self.seed)
            patches = patches[rng.choice(len(patches), MAX_MAP_PATCHES, replace=False)]
        self.patch_ = GaussianDistance(self.shrinkage).fit(patches)
        return self

    def score(self, latents: Latents) -> np.ndarray:
        return self.image_.distance(latents.full)

    def anomaly_maps(self, latents: Latents) -> np.ndarray:
        n, _, h, w = latents.maps.shape
        return self.patch_.distance(patch_rows(latents.maps)).reshape(n, h, w)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.image_.mean_, "precision": self.image_.precision_,
                "patch_mean": self.patch_.mean_, "patch_precision": self.patch_.precision_}

    @classmethod
    def from_arrays(cls, params: dict, arrays: dict[str, np.ndarray]) -> Self:
        scorer = cls(**params)
        scorer.image_, scorer.patch_ = GaussianDistance(), GaussianDistance()
        scorer.image_.mean_, scorer.image_.precision_ = arrays["mean"], arrays["precision"]
        scorer.patch_.mean_, scorer.patch_.precision_ = arrays["patch_mean"], arrays["patch_precision"]
        return scorer

