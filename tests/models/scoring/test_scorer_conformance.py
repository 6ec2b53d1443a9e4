"""Every registered scorer honours the Scorer protocol the bundle and the stream rely on.

Synthetic good images in all three representations a scorer may read (pooled latents, feature
maps, pixels); a bad image carries one bright spot, at the same place in its maps and pixels,
and sits off the good cloud in its pooled latent.
"""

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from latentline.models.latents import Latents
from latentline.models.scoring.base import held_back_scores, top_mean
from latentline.models.scoring.mahalanobis import MahalanobisScorer
from latentline.models.scoring.registry import scorers

SCORERS = scorers()
DIM, CHANNELS, GRID, SIDE = 24, 6, 8, 32
# Small and quick settings where the defaults are sized for real data.
FAST = {
    "patchcore": {"coreset_ratio": 0.1, "coreset_passes": 10},
    "cascade": {"expensive_params": {"coreset_ratio": 0.1, "coreset_passes": 10}},
    "autoencoder": {"image_size": 16, "epochs": 30},
    "vae": {"image_size": 16, "epochs": 30},
}


def make_scorer(cls):
    return cls(**FAST.get(cls.name, {}))


def draw(rng: np.random.Generator, n: int, bad: bool) -> tuple[Latents, np.ndarray]:
    """``n`` images and where each one's spot is (row, col as fractions of the image)."""
    mixing = np.random.default_rng(99).normal(size=(DIM, DIM)) / np.sqrt(DIM)
    full = rng.normal(size=(n, DIM)) @ mixing + (3.0 if bad else 0.0)
    maps = rng.normal(size=(n, CHANNELS, GRID, GRID)) * 0.5 + np.linspace(0, 1, GRID)
    shade = np.linspace(40, 120, SIDE)[None, :, None, None] + rng.normal(size=(n, 1, 1, 1)) * 5
    pixels = np.broadcast_to(shade, (n, SIDE, SIDE, 3)).copy()
    spots = rng.uniform(0.15, 0.85, size=(n, 2))
    if bad:
        for k, (row, col) in enumerate(spots):
            r, c = int(row * GRID), int(col * GRID)
            maps[k, :, r, c] += 4.0
            pr, pc = int(row * SIDE), int(col * SIDE)
            pixels[k, pr - 2 : pr + 3, pc - 2 : pc + 3] = 255
    latents = Latents(full.astype(np.float32), full.astype(np.float32), maps.astype(np.float32),
                      pixels.astype(np.uint8))
    return latents, spots


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    train, _ = draw(rng, 160, bad=False)
    good, _ = draw(rng, 60, bad=False)
    bad, spots = draw(rng, 60, bad=True)
    return {"train": train, "good": good, "bad": bad, "spots": spots}


@pytest.fixture(scope="module", params=sorted(SCORERS), ids=str)
def fitted(request, data):
    """One fitted scorer per class, shared by the tests that only read it."""
    return make_scorer(SCORERS[request.param]).fit(data["train"])


def test_registry_names_match():
    assert all(cls.name == name for name, cls in SCORERS.items())


def test_declares_its_inputs(fitted):
    assert isinstance(fitted.needs_maps, bool) and isinstance(fitted.needs_pixels, bool)


def test_scores_shape_finite_non_negative(fitted, data):
    for n in (1, 7, 60):
        scores = np.asarray(fitted.score(data["good"].take(np.arange(n))))
        assert scores.shape == (n,)
        assert np.isfinite(scores).all() and (scores >= 0).all()


def test_outliers_score_higher(fitted, data):
    good, bad = fitted.score(data["good"]), fitted.score(data["bad"])
    labels = np.r_[np.zeros(len(good)), np.ones(len(bad))]
    assert roc_auc_score(labels, np.r_[good, bad]) > 0.9


def test_anomaly_maps_cover_the_image_and_find_the_spot(fitted, data):
    maps = np.asarray(fitted.anomaly_maps(data["bad"]))
    assert maps.ndim == 3 and len(maps) == len(data["bad"])
    assert np.isfinite(maps).all() and (maps >= 0).all()
    h, w = maps.shape[1:]
    peaks = np.array(np.unravel_index(maps.reshape(len(maps), -1).argmax(axis=1), (h, w))).T
    found = (peaks + 0.5) / [h, w]
    distance = np.abs(found - data["spots"]).max(axis=1)
    assert np.mean(distance < 0.2) > 0.8


def test_array_round_trip_gives_identical_scores(fitted, data, tmp_path):
    arrays = fitted.to_arrays()
    assert all(isinstance(value, np.ndarray) for value in arrays.values())
    # the bundle stores params as JSON and arrays as npz without pickle
    params = json.loads(json.dumps(fitted.get_params()))
    np.savez(tmp_path / "scorer.npz", **arrays)
    with np.load(tmp_path / "scorer.npz", allow_pickle=False) as stored:
        restored = type(fitted).from_arrays(params, dict(stored))
    np.testing.assert_array_equal(restored.score(data["bad"]), fitted.score(data["bad"]))
    np.testing.assert_array_equal(restored.anomaly_maps(data["bad"]), fitted.anomaly_maps(data["bad"]))
    assert restored.get_params() == fitted.get_params()


def test_get_params_rebuilds_an_equivalent_deterministic_scorer(fitted, data):
    fresh = type(fitted)(**json.loads(json.dumps(fitted.get_params())))
    assert fresh is not fitted and fresh.get_params() == fitted.get_params()
    np.testing.assert_allclose(fresh.fit(data["train"]).score(data["good"]), fitted.score(data["good"]),
                               rtol=1e-4, atol=1e-6)


def test_refit_replaces_state(fitted, data):
    scorer = make_scorer(type(fitted)).fit(data["bad"])
    scorer.fit(data["train"])
    np.testing.assert_allclose(scorer.score(data["good"]), fitted.score(data["good"]), rtol=1e-4, atol=1e-6)


def test_held_back_scores_come_from_a_model_that_never_saw_them(data):
    scorer = MahalanobisScorer()
    held = held_back_scores(scorer, data["train"], holdout=0.25)
    assert held.shape == (40,)
    fitted_on = scorer.score(data["train"])
    held_rows = np.flatnonzero(np.isin(fitted_on, held))
    assert len(held_rows) == 40  # the held-back images are scored by the model deployed
    # an image the model was fitted on scores lower than the same kind of image held back
    assert np.median(held) > np.median(np.delete(fitted_on, held_rows))


def test_top_mean():
    maps = np.zeros((2, 10, 10))
    maps[0, 0, :5] = 1.0
    np.testing.assert_allclose(top_mean(maps, 0.05), [1.0, 0.0])
    np.testing.assert_allclose(top_mean(maps, 0.10), [0.5, 0.0])
    np.testing.assert_allclose(top_mean(maps, 0.0), [1.0, 0.0])  # at least one cell


@pytest.mark.parametrize("shrinkage", [0.0, 0.1, 0.5, 1.0])
def test_mahalanobis_fixed_shrinkage(shrinkage, data):
    scorer = MahalanobisScorer(shrinkage=shrinkage).fit(data["train"])
    assert scorer.get_params()["shrinkage"] == shrinkage
    good, bad = scorer.score(data["good"]), scorer.score(data["bad"])
    assert np.isfinite(good).all() and (good >= 0).all()
    assert roc_auc_score(np.r_[np.zeros(60), np.ones(60)], np.r_[good, bad]) > 0.95


def test_mahalanobis_fixed_shrinkage_matches_formula(data):
    x = data["train"].full.astype(np.float64)
    shrinkage = 0.3
    scorer = MahalanobisScorer(shrinkage=shrinkage).fit(data["train"])
    empirical = np.cov(x, rowvar=False, bias=True)
    mu = np.trace(empirical) / DIM
    shrunk = (1 - shrinkage) * empirical + shrinkage * mu * np.eye(DIM)
    probe = data["bad"].take(np.arange(5))
    centred = probe.full.astype(np.float64) - x.mean(axis=0)
    expected = np.sqrt(np.einsum("ij,jk,ik->i", centred, np.linalg.inv(shrunk), centred))
    np.testing.assert_allclose(scorer.score(probe), expected, rtol=1e-5)


def test_mahalanobis_is_identity_distance_for_white_data():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20000, 3))
    maps = rng.normal(size=(20000, 2, 1, 1))
    scorer = MahalanobisScorer().fit(Latents(x, x, maps))
    probe = np.array([[0.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.0, 4.0, 0.0]])
    np.testing.assert_allclose(scorer.score(Latents(probe, probe, maps[:3])), [0.0, 3.0, 4.0], atol=0.1)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_maps_are_smoothed_as_scipy_smooths_them(sigma):
    """The batch's maps smoothed as one convolution (models/scoring/maps.py) against SciPy's
    Gaussian filter, the reference, edges repeated: within float32 rounding."""
    from scipy.ndimage import gaussian_filter

    from latentline.models.scoring.base import smooth_maps

    maps = np.random.default_rng(0).random((3, 28, 40)).astype(np.float32)
    reference = gaussian_filter(maps, (0, sigma, sigma), mode="nearest")
    np.testing.assert_allclose(smooth_maps(maps, sigma), reference, atol=1e-6)
    narrow = maps[:, :3]  # narrower than the kernel
    reference = gaussian_filter(narrow, (0, sigma, sigma), mode="nearest")
    np.testing.assert_allclose(smooth_maps(narrow, sigma), reference, atol=1e-6)


def test_the_top_cells_mean_of_tensors_is_top_mean():
    import torch

    from latentline.models.scoring.maps import top_cells_mean

    maps = np.random.default_rng(1).random((4, 28, 84)).astype(np.float32)
    for fraction in (0.0, 0.02, 0.1):
        on_device = top_cells_mean(torch.from_numpy(maps), fraction).numpy()
        np.testing.assert_allclose(on_device, top_mean(maps, fraction), rtol=1e-6)
