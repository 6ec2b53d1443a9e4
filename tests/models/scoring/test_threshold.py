"""Thresholds chosen from good scores, and the three-way decision."""

import numpy as np
import pytest

from latentline.models.scoring.threshold import Thresholds
from latentline.schemas import Decision


def test_from_good_scores_uniform():
    scores = np.linspace(0.0, 1.0, 10_001)
    np.random.default_rng(0).shuffle(scores)
    thresholds = Thresholds.from_good_scores(scores)
    assert thresholds.threshold == pytest.approx(0.99, abs=1e-3)
    assert thresholds.review_threshold == pytest.approx(0.97, abs=1e-3)
    assert thresholds.review_threshold <= thresholds.threshold
    assert isinstance(thresholds.threshold, float)


def test_from_good_scores_realises_target_fpr():
    scores = np.random.default_rng(1).gamma(2.0, size=5000)
    thresholds = Thresholds.from_good_scores(scores, target_fpr=0.05, review_fpr=0.2)
    decisions = thresholds.decide(scores)
    flagged = np.mean([d is Decision.DEFECT for d in decisions])
    flagged_or_review = np.mean([d is not Decision.OK for d in decisions])
    assert flagged == pytest.approx(0.05, abs=0.002)
    assert flagged_or_review == pytest.approx(0.2, abs=0.002)


def test_equal_fprs_give_empty_review_band():
    thresholds = Thresholds.from_good_scores(np.arange(100.0), target_fpr=0.1, review_fpr=0.1)
    assert thresholds.threshold == thresholds.review_threshold
    assert thresholds.decide([thresholds.threshold - 1e-9, thresholds.threshold]) == [
        Decision.OK,
        Decision.DEFECT,
    ]


def test_decide_boundaries():
    thresholds = Thresholds(threshold=10.0, review_threshold=8.0, good_median=5.0)
    scores = np.array([0.0, 7.999, 8.0, 9.5, 9.999, 10.0, 10.001, 1e9])
    assert thresholds.decide(scores) == [
        Decision.OK,
        Decision.OK,
        Decision.REVIEW,  # at review_threshold: review
        Decision.REVIEW,
        Decision.REVIEW,
        Decision.DEFECT,  # at threshold: defect
        Decision.DEFECT,
        Decision.DEFECT,
    ]


def test_decide_empty_and_lists():
    thresholds = Thresholds(threshold=1.0, review_threshold=0.5, good_median=0.2)
    assert thresholds.decide(np.array([])) == []
    assert thresholds.decide([0.7]) == [Decision.REVIEW]


@pytest.mark.parametrize(
    ("target_fpr", "review_fpr"),
    [
        (0.05, 0.01),  # review band above the defect threshold
        (0.0, 0.03),
        (-0.01, 0.03),
        (0.01, 1.0),
        (0.5, 1.5),
    ],
)
def test_invalid_fprs_raise(target_fpr, review_fpr):
    with pytest.raises(ValueError, match="target_fpr"):
        Thresholds.from_good_scores(np.linspace(0, 1, 100), target_fpr, review_fpr)


def test_to_dict_round_trip():
    thresholds = Thresholds.from_good_scores(np.linspace(0, 1, 101))
    assert Thresholds(**thresholds.to_dict()) == thresholds
    assert set(thresholds.to_dict()) == {"threshold", "review_threshold", "good_median"}


def test_normalised_scores_put_the_threshold_at_one_half():
    rng = np.random.default_rng(1)
    thresholds = Thresholds.from_good_scores(rng.gamma(2.0, 3.0, size=2000))
    normalised = thresholds.normalise([0.0, thresholds.good_median, thresholds.threshold, 1e9])
    np.testing.assert_allclose(normalised[1:3], [0.1, 0.5])
    assert 0 <= normalised[0] < 0.1 and normalised[3] == pytest.approx(1.0)
    scores = rng.gamma(2.0, 3.0, size=500)
    assert np.all(np.diff(thresholds.normalise(np.sort(scores))) >= 0)  # monotone: rankings kept
    on_scale = thresholds.normalised()
    assert on_scale.threshold == 0.5 and on_scale.good_median == 0.1
    assert on_scale.decide(thresholds.normalise(scores)) == thresholds.decide(scores)
