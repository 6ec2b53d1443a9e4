"""Decision thresholds chosen from scores of held-back good images alone."""

from dataclasses import asdict, dataclass

import numpy as np

from schemas import Decision


@dataclass(frozen=True)
class Thresholds:
    """``defect`` at or above ``threshold``; ``review`` from ``review_threshold`` up to it."""

    threshold: float
    review_threshold: float

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

    def to_dict(self) -> dict:
        return asdict(self)
