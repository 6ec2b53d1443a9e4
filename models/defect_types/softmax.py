"""Probabilities from scores, shared by the classifiers.

>>> softmax(np.array([[0.0, 0.0], [0.0, np.log(3.0)]])).round(2).tolist()
[[0.5, 0.5], [0.25, 0.75]]
"""

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise; shifted by each row's maximum so that large logits do not overflow."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)
