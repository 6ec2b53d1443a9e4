"""Every registered scorer honours the Scorer protocol the bundle and the stream rely on."""

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from models.mahalanobis import MahalanobisScorer
from models.scorer import registry

SCORERS = registry()

DIM = 24


def make_scorer(cls):
    return cls()  # default parameters


@pytest.fixture(scope="module")
def latents():
    """Correlated Gaussian 'good' latents, fewer samples than a comfortable covariance wants."""
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(DIM, DIM)) / np.sqrt(DIM)
    shift = rng.normal(size=DIM)

    def draw(n, offset=0.0):
        return (rng.normal(size=(n, DIM)) @ mixing + shift + offset).astype(np.float32)

    return {
        "train": draw(150),
        "good": draw(100),
        "bad": draw(100, offset=3.0),
    }


@pytest.fixture(params=sorted(SCORERS), ids=str)
def scorer_cls(request):
    return SCORERS[request.param]


def test_registry_names_match(scorer_cls):
    name = next(key for key, value in SCORERS.items() if value is scorer_cls)
    assert scorer_cls.name == name


def test_scores_shape_finite_non_negative(scorer_cls, latents):
    scorer = make_scorer(scorer_cls).fit(latents["train"])
    for n in (1, 7, 100):
        scores = np.asarray(scorer.score(latents["good"][:n]))
        assert scores.shape == (n,)
        assert np.isfinite(scores).all()
        assert (scores >= 0).all()


def test_fit_returns_self(scorer_cls, latents):
    scorer = make_scorer(scorer_cls)
    assert scorer.fit(latents["train"]) is scorer


def test_outliers_score_higher(scorer_cls, latents):
    scorer = make_scorer(scorer_cls).fit(latents["train"])
    good = scorer.score(latents["good"])
    bad = scorer.score(latents["bad"])
    labels = np.r_[np.zeros(len(good)), np.ones(len(bad))]
    assert roc_auc_score(labels, np.r_[good, bad]) > 0.95


def test_scores_grow_with_distance(scorer_cls, latents):
    scorer = make_scorer(scorer_cls).fit(latents["train"])
    centre = latents["train"].mean(axis=0)
    direction = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)
    probes = np.stack([centre + k * direction for k in (0.0, 2.0, 5.0, 20.0)])
    assert np.all(np.diff(scorer.score(probes)) > 0)


def test_array_round_trip_gives_identical_scores(scorer_cls, latents, tmp_path):
    scorer = make_scorer(scorer_cls).fit(latents["train"])
    arrays = scorer.to_arrays()
    assert all(isinstance(value, np.ndarray) for value in arrays.values())
    # the bundle stores params as JSON and arrays as npz without pickle
    params = json.loads(json.dumps(scorer.get_params()))
    np.savez(tmp_path / "scorer.npz", **arrays)
    with np.load(tmp_path / "scorer.npz", allow_pickle=False) as stored:
        restored = scorer_cls.from_arrays(params, dict(stored))
    probe = np.r_[latents["good"], latents["bad"]]
    np.testing.assert_array_equal(restored.score(probe), scorer.score(probe))
    assert restored.get_params() == scorer.get_params()


def test_get_params_rebuilds_equivalent_unfitted_scorer(scorer_cls, latents):
    fitted = make_scorer(scorer_cls).fit(latents["train"])
    fresh = scorer_cls(**fitted.get_params())
    assert fresh is not fitted
    assert fresh.get_params() == fitted.get_params()
    assert json.loads(json.dumps(fresh.get_params())) == fresh.get_params()
    probe = latents["good"]
    np.testing.assert_allclose(fresh.fit(latents["train"]).score(probe), fitted.score(probe))


def test_refit_replaces_state(scorer_cls, latents):
    scorer = make_scorer(scorer_cls).fit(latents["bad"])
    scorer.fit(latents["train"])
    reference = make_scorer(scorer_cls).fit(latents["train"])
    np.testing.assert_allclose(scorer.score(latents["good"]), reference.score(latents["good"]))


@pytest.mark.parametrize("shrinkage", [0.0, 0.1, 0.5, 1.0])
def test_mahalanobis_fixed_shrinkage(shrinkage, latents, tmp_path):
    scorer = MahalanobisScorer(shrinkage=shrinkage).fit(latents["train"])
    assert scorer.get_params() == {"shrinkage": shrinkage}
    good = scorer.score(latents["good"])
    bad = scorer.score(latents["bad"])
    assert good.shape == (100,) and np.isfinite(good).all() and (good >= 0).all()
    labels = np.r_[np.zeros(len(good)), np.ones(len(bad))]
    assert roc_auc_score(labels, np.r_[good, bad]) > 0.95
    restored = MahalanobisScorer.from_arrays(scorer.get_params(), scorer.to_arrays())
    np.testing.assert_array_equal(restored.score(latents["bad"]), bad)


def test_mahalanobis_fixed_shrinkage_matches_formula(latents):
    x = latents["train"].astype(np.float64)
    shrinkage = 0.3
    scorer = MahalanobisScorer(shrinkage=shrinkage).fit(x)
    empirical = np.cov(x, rowvar=False, bias=True)
    mu = np.trace(empirical) / DIM
    shrunk = (1 - shrinkage) * empirical + shrinkage * mu * np.eye(DIM)
    probe = latents["bad"][:5].astype(np.float64)
    centred = probe - x.mean(axis=0)
    expected = np.sqrt(np.einsum("ij,jk,ik->i", centred, np.linalg.inv(shrunk), centred))
    np.testing.assert_allclose(scorer.score(probe), expected, rtol=1e-6)


def test_mahalanobis_shrinkage_differs_from_ledoit_wolf(latents):
    probe = latents["bad"][:10]
    lw = MahalanobisScorer().fit(latents["train"]).score(probe)
    fixed = MahalanobisScorer(shrinkage=0.9).fit(latents["train"]).score(probe)
    assert not np.allclose(lw, fixed)


def test_mahalanobis_is_identity_distance_for_white_data():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20000, 3))
    scorer = MahalanobisScorer().fit(x)
    probe = np.array([[0.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.0, 4.0, 0.0]])
    np.testing.assert_allclose(scorer.score(probe), [0.0, 3.0, 4.0], atol=0.1)
