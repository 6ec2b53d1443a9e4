"""The one interface every defect-type classifier implements
(tests/models/defect_types/test_classifier_conformance.py holds every classifier to it).

Classifiers work on DeviationSpace vectors of the type latent (unit length), or on the type
latents themselves where they learn their own space (the patch head reads the ``cells`` latent
and offers ``embed(vectors)``, where the open set then measures its distances); see
models/defect_types/open_set.py, which turns their probabilities into known / review / unknown
decisions. The classifiers by name are in ``models.defect_types.registry``.
"""

from typing import Protocol, Self

import numpy as np


class TypeClassifier(Protocol):
    """Fit on a few labelled latents per type; ``classes_`` orders ``predict_proba``'s columns."""

    name: str
    classes_: np.ndarray  # str

    def fit(self, vectors: np.ndarray, labels: np.ndarray) -> Self: ...

    def predict_proba(self, vectors: np.ndarray) -> np.ndarray:
        """[N, len(classes_)], rows summing to 1."""
        ...

    def get_params(self) -> dict: ...

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The fitted state as named arrays (saved with numpy, no pickle)."""
        ...

    @classmethod
    def from_arrays(cls, params: dict, arrays: dict[str, np.ndarray]) -> Self: ...
