"""Every registered defect-type classifier honours the TypeClassifier protocol."""

import json

import numpy as np
import pytest

from latentline.models.defect_types.registry import classifiers

CLASSIFIERS = classifiers()
DIM = 16


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def clusters(rng, n_per: int, names=("a", "b", "c"), spread: float = 0.25):
    """Unit vectors around one random direction per type, like deviation vectors of defects."""
    centres = unit(rng.normal(size=(len(names), DIM)))
    vectors = np.concatenate([unit(c + spread * rng.normal(size=(n_per, DIM))) for c in centres])
    return vectors.astype(np.float32), np.repeat(np.array(names), n_per), centres


@pytest.fixture(params=sorted(CLASSIFIERS), ids=str)
def classifier_cls(request):
    return CLASSIFIERS[request.param]


@pytest.fixture(scope="module")
def vectors():
    rng = np.random.default_rng(0)
    train_x, train_y, centres = clusters(rng, 20)
    test_x = np.concatenate([unit(c + 0.25 * rng.normal(size=(30, DIM))) for c in centres])
    return train_x, train_y, test_x, np.repeat(np.array(["a", "b", "c"]), 30)


# Classifiers that read another type latent than a vector get each vector in their layout: the
# patch head reads hot cells (models/defect_types/descriptor.hot_cells), here one cell per part.
ONE_CELL = {"patch-head": {"cells": 1}}


def in_layout(classifier_cls, x: np.ndarray) -> np.ndarray:
    if classifier_cls.name in ONE_CELL:
        return np.concatenate([x, np.ones((len(x), 1), np.float32)], axis=1)  # the cell, its excess
    return x


@pytest.fixture
def data(classifier_cls, vectors):
    train_x, train_y, test_x, test_y = vectors
    return in_layout(classifier_cls, train_x), train_y, in_layout(classifier_cls, test_x), test_y


def make(classifier_cls, **params):
    return classifier_cls(**ONE_CELL.get(classifier_cls.name, {}) | params)


def test_registry_names_match(classifier_cls):
    assert CLASSIFIERS[classifier_cls.name] is classifier_cls


def test_fit_returns_self_and_probabilities_are_distributions(classifier_cls, data):
    train_x, train_y, test_x, _ = data
    model = make(classifier_cls)
    assert model.fit(train_x, train_y) is model
    assert list(model.classes_) == ["a", "b", "c"]
    proba = model.predict_proba(test_x)
    assert proba.shape == (len(test_x), 3)
    assert np.isfinite(proba).all() and (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)


def test_separated_types_are_named(classifier_cls, data):
    train_x, train_y, test_x, test_y = data
    model = make(classifier_cls).fit(train_x, train_y)
    predicted = model.classes_[model.predict_proba(test_x).argmax(axis=1)]
    assert (predicted == test_y).mean() > 0.95


def test_two_types_and_a_type_with_three_examples(classifier_cls, data):
    train_x, train_y, test_x, test_y = data
    two = train_y != "c"
    assert make(classifier_cls).fit(train_x[two], train_y[two]).predict_proba(test_x).shape == (90, 2)
    few = np.r_[np.flatnonzero(train_y != "c"), np.flatnonzero(train_y == "c")[:3]]
    model = make(classifier_cls).fit(train_x[few], train_y[few])
    predicted = model.classes_[model.predict_proba(test_x).argmax(axis=1)]
    assert (predicted[test_y == "c"] == "c").mean() > 0.8  # balanced: three labels are heard


def test_one_type_is_refused(classifier_cls, data):
    train_x, train_y, _, _ = data
    with pytest.raises(ValueError, match="two defect types"):
        make(classifier_cls).fit(train_x[train_y == "a"], train_y[train_y == "a"])


def test_array_round_trip_gives_identical_probabilities(classifier_cls, data, tmp_path):
    train_x, train_y, test_x, _ = data
    model = make(classifier_cls).fit(train_x, train_y)
    params = json.loads(json.dumps(model.get_params()))
    np.savez(tmp_path / "c.npz", **model.to_arrays())
    with np.load(tmp_path / "c.npz", allow_pickle=False) as stored:
        restored = classifier_cls.from_arrays(params, dict(stored))
    np.testing.assert_array_equal(restored.predict_proba(test_x), model.predict_proba(test_x))
    assert list(restored.classes_) == list(model.classes_)


def test_get_params_rebuilds_an_equivalent_classifier(classifier_cls, data):
    train_x, train_y, test_x, _ = data
    fitted = make(classifier_cls).fit(train_x, train_y)
    fresh = classifier_cls(**fitted.get_params())
    refitted = fresh.fit(train_x, train_y)
    np.testing.assert_allclose(refitted.predict_proba(test_x), fitted.predict_proba(test_x))
