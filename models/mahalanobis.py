"""Global Mahalanobis distance with a shrinkage covariance (few images, many dimensions)."""

from typing import Self

import numpy as np
from sklearn.covariance import LedoitWolf, ShrunkCovariance


class MahalanobisScorer:
    """``shrinkage``: "ledoit_wolf" picks it from the data; a float in [0, 1] fixes it."""

    name = "mahalanobis"

    def __init__(self, shrinkage: float | str = "ledoit_wolf"):
        self.shrinkage = shrinkage

    def get_params(self) -> dict:
        return {"shrinkage": self.shrinkage}

    def fit(self, latents: np.ndarray) -> Self:
        latents = np.asarray(latents, dtype=np.float64)
        if self.shrinkage == "ledoit_wolf":
            estimator = LedoitWolf(assume_centered=False)
        else:
            estimator = ShrunkCovariance(shrinkage=float(self.shrinkage))
        estimator.fit(latents)
        self.mean_ = estimator.location_
        self.precision_ = estimator.get_precision()
        return self

    def score(self, latents: np.ndarray) -> np.ndarray:
        centred = np.asarray(latents, dtype=np.float64) - self.mean_
        squared = np.einsum("ij,jk,ik->i", centred, self.precision_, centred)
        return np.sqrt(np.maximum(squared, 0.0))

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean_, "precision": self.precision_}

    @classmethod
    def from_arrays(cls, params: dict, arrays: dict[str, np.ndarray]) -> Self:
        scorer = cls(**params)
        scorer.mean_ = arrays["mean"]
        scorer.precision_ = arrays["precision"]
        return scorer
