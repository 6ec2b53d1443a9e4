"""The one interface every defect-type classifier implements (tests/models/test_classifier_conformance).

Classifiers work on DeviationSpace vectors of the centre view (unit length), see
models/open_set.py, which turns their probabilities into known / review / unknown decisions.
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


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def registry() -> dict[str, type[TypeClassifier]]:
    """Every classifier by name: what a bundle manifest may name, what the conformance test runs."""
    from models.logistic import LogisticClassifier  # here: implementations import this module
    from models.prototype import PrototypeClassifier

    return {cls.name: cls for cls in (LogisticClassifier, PrototypeClassifier)}
