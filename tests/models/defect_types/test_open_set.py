"""Open-set decisions: known types named, ambiguous ones to review, far ones unknown; learning."""

import json

import numpy as np
import pytest

from latentline.models.defect_types.logistic import LogisticClassifier
from latentline.models.defect_types.open_set import (
    OpenSetClassifier,
    confidence_for_accuracy,
    knn_distance,
    view_means,
)
from latentline.models.deviation_space import DeviationSpace
from latentline.schemas import TypeStatus

DIM = 12


@pytest.fixture(scope="module")
def world():
    """Good latents around 0; three defect types pushing along their own directions."""
    rng = np.random.default_rng(1)
    good = rng.normal(size=(300, DIM))
    directions = np.eye(DIM)[:4] * 6  # a, b, c and d (d never labelled)

    def defects(k: int, n: int) -> np.ndarray:
        return directions[k] * rng.uniform(0.8, 1.5, size=(n, 1)) + rng.normal(size=(n, DIM))

    return {"good": good, "defects": defects, "directions": directions}


@pytest.fixture(scope="module")
def model(world):
    latents = np.concatenate([world["defects"](k, 30) for k in range(3)])
    labels = np.repeat(["a", "b", "c"], 30)
    return OpenSetClassifier(LogisticClassifier(), DeviationSpace(8)).fit(world["good"], latents, labels)


def test_known_types_are_named(model, world):
    for k, name in enumerate("abc"):
        decisions = model.decide(world["defects"](k, 40))
        named = [d.label for d in decisions if d.status is TypeStatus.KNOWN]
        assert len(named) >= 30 and named.count(name) >= len(named) - 1
        assert all(d.reason is None for d in decisions if d.status is TypeStatus.KNOWN)
        assert list(decisions[0].probabilities)[0] == decisions[0].label


def test_a_type_never_labelled_is_unknown(model, world):
    decisions = model.decide(world["defects"](3, 40))
    assert sum(d.status is TypeStatus.UNKNOWN for d in decisions) >= 36
    assert "unlike every known type" in decisions[0].reason


def test_halfway_between_two_types_goes_to_review(model, world):
    between = (world["directions"][0] + world["directions"][1]) / 2 * 1.2
    decision = model.decide(between[None])[0]
    assert decision.status is not TypeStatus.KNOWN
    assert set(decision.probabilities) >= {"a", "b"}


def test_learning_a_new_type_from_a_handful_of_labels(model, world):
    learned = model.learn(world["defects"](3, 8), ["d"] * 8)
    assert learned.classes == ["a", "b", "c", "d"] and model.classes == ["a", "b", "c"]
    decisions = learned.decide(world["defects"](3, 40))
    named = [d.label for d in decisions if d.status is TypeStatus.KNOWN]
    assert len(named) >= 28 and set(named) == {"d"}
    # the known types still come out as themselves
    assert [d.label for d in learned.decide(world["defects"](0, 20))].count("a") >= 18


def test_array_round_trip(model, world, tmp_path):
    params = json.loads(json.dumps(model.get_params()))
    np.savez(tmp_path / "c.npz", **model.to_arrays())
    with np.load(tmp_path / "c.npz", allow_pickle=False) as stored:
        restored = OpenSetClassifier.from_arrays(params, dict(stored))
    probe = np.concatenate([world["defects"](k, 5) for k in range(4)])
    assert restored.decide(probe) == model.decide(probe)


def test_thresholds_come_from_out_of_fold_calibration(model):
    calibration = model.calibration_
    assert 0 < calibration["confidence_threshold"] <= 1
    assert calibration["out_of_fold_accuracy"] > 0.9 and calibration["n_examples"] == 90


def test_confidence_for_accuracy():
    confidence = np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6])
    correct = np.array([1, 1, 1, 0, 1, 0], bool)
    assert confidence_for_accuracy(confidence, correct, 1.0) == 0.9
    assert confidence_for_accuracy(confidence, correct, 0.8) == 0.7
    assert confidence_for_accuracy(confidence, np.zeros(6, bool), 0.5) > 0.99  # all to review


def test_knn_distance_is_cosine_to_the_nearest():
    examples = np.eye(3, dtype=np.float32)
    distances = knn_distance(np.array([[1, 0, 0], [0.6, 0.8, 0]], np.float32), examples, 1)
    np.testing.assert_allclose(distances, [0.0, 0.2], atol=1e-6)


def test_the_confidence_bar_is_set_by_the_parts_it_would_name(world, monkeypatch):
    """Held-out predictions beyond the distance threshold become unknown, never named: their
    errors must not push the rest to review."""
    model = OpenSetClassifier(LogisticClassifier(), DeviationSpace(8), unknown_quantile=0.8)
    distance = np.linspace(0, 1, 100)
    correct = distance <= 0.8  # every error lies beyond the 0.8 quantile
    monkeypatch.setattr(model, "_out_of_fold", lambda *a: (np.full(100, 0.9), correct, distance))
    latents = np.concatenate([world["defects"](k, 10) for k in range(3)])
    model.fit(world["good"], latents, np.repeat(["a", "b", "c"], 10))
    assert model.confidence_threshold_ == 0.9  # on all 100 it would be above every confidence
    assert model.calibration_["out_of_fold_auto_share"] == pytest.approx(0.8)


def test_held_out_examples_are_judged_by_the_mean_of_their_views():
    vectors = np.array([[1, 0], [0, 1], [1, 0], [1, 0]], np.float32)
    means = view_means(vectors, groups=np.array([0, 0, 1, 1]), rows=np.array([0, 2]))
    np.testing.assert_allclose(means, [[0.7071, 0.7071], [1, 0]], atol=1e-4)


def _banded(world, monkeypatch, review_quantile):
    """Held-out distances 0..1, errors only beyond 0.8: the band's effect alone."""
    model = OpenSetClassifier(LogisticClassifier(), DeviationSpace(8), unknown_quantile=0.95,
                              review_quantile=review_quantile)
    distance = np.linspace(0, 1, 101)
    monkeypatch.setattr(model, "_out_of_fold", lambda *a: (np.full(101, 0.9), distance <= 0.8, distance))
    latents = np.concatenate([world["defects"](k, 10) for k in range(3)])
    return model.fit(world["good"], latents, np.repeat(["a", "b", "c"], 10))


def test_a_review_band_keeps_unknown_for_the_clearly_unlike(world, monkeypatch):
    """Beyond the review quantile a part is never named; up to the unknown quantile an operator
    is asked to review it, beyond it it is unknown. Which parts are named is the band's line."""
    model = _banded(world, monkeypatch, review_quantile=0.8)
    assert model.review_distance_ == pytest.approx(0.8) and model.distance_threshold_ == pytest.approx(0.95)
    assert model.confidence_threshold_ == 0.9  # set on the parts within the band's line
    proba = np.array([0.95, 0.03, 0.02])
    status = {d: model._decision(proba, d, frozenset()) for d in (0.5, 0.9, 0.99)}
    assert [status[d].status for d in (0.5, 0.9, 0.99)] == [TypeStatus.KNOWN, TypeStatus.REVIEW,
                                                           TypeStatus.UNKNOWN]
    assert status[0.9].reason.startswith("far from the labelled examples") and "a 0.95" in status[0.9].reason
    assert model._decision(proba, 0.9, frozenset({"a"})).status is TypeStatus.KNOWN  # a taught type


def test_the_review_band_travels_with_the_model_and_old_models_have_none(world, monkeypatch):
    model = _banded(world, monkeypatch, review_quantile=0.8)
    again = OpenSetClassifier.from_arrays(model.get_params(), model.to_arrays())
    assert again.review_distance_ == model.review_distance_ and again.review_quantile == 0.8
    old = model.to_arrays() | {"thresholds": model.to_arrays()["thresholds"][:2]}
    params = {k: v for k, v in model.get_params().items() if k != "review_quantile"}
    before = OpenSetClassifier.from_arrays(params, old)
    assert before.review_distance_ == before.distance_threshold_ and before.review_quantile is None
