"""The one interface every anomaly scorer implements (see tests/models/test_scorer_conformance)."""

from typing import Protocol, Self

import numpy as np


class Scorer(Protocol):
    """Fit on latents of good images only; higher scores are more anomalous."""

    name: str

    def fit(self, latents: np.ndarray) -> Self: ...

    def score(self, latents: np.ndarray) -> np.ndarray: ...

    def get_params(self) -> dict: ...

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The fitted state as named arrays (saved with numpy, no pickle)."""
        ...

    @classmethod
    def from_arrays(cls, params: dict, arrays: dict[str, np.ndarray]) -> Self: ...


def registry() -> dict[str, type[Scorer]]:
    """Every scorer by name: what a bundle manifest may name, what the conformance test runs."""
    from models.mahalanobis import MahalanobisScorer  # here: implementations may import this module

    return {cls.name: cls for cls in (MahalanobisScorer,)}
