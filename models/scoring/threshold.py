"""Decision thresholds chosen from scores of held-back good images alone, and the normalised
score every method reports: 0.5 at the threshold, whatever the method's own scale.

>>> thresholds = Thresholds.from_good_scores(np.arange(101.0), target_fpr=0.01, review_fpr=0.03)
>>> thresholds.threshold, thresholds.review_threshold, thresholds.good_median
(99.0, 97.0, 50.0)
>>> [d.value for d in thresholds.decide([50.0, 98.0, 99.5])]
['ok', 'review', 'defect']
>>> thresholds.normalise([99.0, 50.0]).round(3).tolist()  # the two anchors
[0.5, 0.1]
"""

import math
from dataclasses import asdict, dataclass

import numpy as np

from latentline.schemas import Decision

THRESHOLD = 0.5  # the normalised score of the defect threshold
GOOD_MEDIAN = 0.1  # the normalised score of the typical good part


@dataclass(frozen=True)
class Thresholds:
    """``defect`` at or above ``threshold``; ``review`` from ``review_threshold`` up to it.
    ``good_median``: the median held-back good score, the second anchor of ``normalise``."""

    threshold: float
    review_threshold: float
    good_median: float

    @classmethod
    def from_good_scores(
        cls, scores: np.ndarray, target_fpr: float = 0.01, review_fpr: float = 0.03
    ) -> "Thresholds":
        """A target false-positive rate on good parts; the review band catches the next ones."""
        if not 0 < target_fpr <= review_fpr < 1:
            raise ValueError("need 0 < target_fpr <= review_fpr < 1")
        scores = np.asarray(scores, dtype=np.float64)
        return cls(
            threshold=float(np.quantile(scores, 1 - target_fpr)),
            review_threshold=float(np.quantile(scores, 1 - review_fpr)),
            good_median=float(np.median(scores)),
        )

    def decide(self, scores: np.ndarray) -> list[Decision]:
        return [
            Decision.DEFECT
            if s >= self.threshold
            else Decision.REVIEW
            if s >= self.review_threshold
            else Decision.OK
            for s in np.asarray(scores)
        ]

    def normalise(self, scores: np.ndarray) -> np.ndarray:
        """A logistic map of raw scores into (0, 1): the threshold goes to 0.5 and the median
        good part to 0.1. Monotone, so rankings and AUROC are unchanged; one scale for dashboards
        and subscribers whatever the method."""
        spread = max(self.threshold - self.good_median, 1e-12) / math.log((1 - GOOD_MEDIAN) / GOOD_MEDIAN)
        z = (np.asarray(scores, dtype=np.float64) - self.threshold) / spread
        return 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))

    def normalised(self) -> "Thresholds":
        """These thresholds on the normalised scale (``threshold`` is 0.5)."""
        review = float(self.normalise([self.review_threshold])[0])
        return Thresholds(THRESHOLD, min(review, THRESHOLD), GOOD_MEDIAN)

    def to_dict(self) -> dict:
        return asdict(self)
