"""PatchCore's one search per batch: what it gives equals what the separate calls give, whatever
the search, and the search a bundle was fitted with is the one it loads with."""

import numpy as np
import pytest

from latentline.models.latents import Latents
from latentline.models.scoring.base import score_batch
from latentline.models.scoring.patchcore import PatchCoreScorer
from latentline.models.scoring.search import faiss_available, resolve_search


def latents(rng: np.random.Generator, n: int, spot: bool = False) -> Latents:
    maps = rng.normal(size=(n, 8, 6, 6)).astype(np.float32)
    if spot:
        maps[:, :, 2, 3] += 6
    return Latents(np.zeros((n, 1), np.float32), np.zeros((n, 1), np.float32), maps)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    return PatchCoreScorer(coreset_ratio=0.2, coreset_passes=5, search="exact").fit(latents(rng, 80)), rng


def test_one_pass_gives_scores_maps_and_defect_latents(fitted):
    scorer, rng = fitted
    batch = latents(rng, 5, spot=True)
    scored = score_batch(scorer, batch)
    # the defect latent, written out the long way: each patch minus its nearest good patch
    patches = batch.maps.transpose(0, 2, 3, 1).reshape(-1, 8)
    nearest = ((patches[:, None] - scorer.bank_[None]) ** 2).sum(axis=2).argmin(axis=1)
    residuals = (patches - scorer.bank_[nearest]).reshape(5, 36, 8).mean(axis=1)
    np.testing.assert_allclose(scored.spaces["defect"], residuals, atol=1e-5)
    np.testing.assert_allclose(scored.scores, scorer.score(batch))
    np.testing.assert_allclose(scored.maps, scorer.anomaly_maps(batch))
    assert (scored.maps.reshape(5, -1).argmax(axis=1) == 2 * 6 + 3).all()


@pytest.mark.skipif(not faiss_available(), reason="FAISS is not installed")
@pytest.mark.parametrize("search", ["faiss-flat", "faiss-hnsw"])
def test_faiss_searches_score_like_the_exact_one(fitted, search):
    scorer, rng = fitted
    batch = latents(rng, 20)
    faiss_scorer = PatchCoreScorer.from_arrays(scorer.get_params() | {"search": search}, scorer.to_arrays())
    np.testing.assert_allclose(faiss_scorer.score(batch), scorer.score(batch), rtol=0.02)


def test_the_search_is_a_recorded_hyperparameter(fitted):
    scorer, _ = fitted
    params = scorer.get_params() | {"search": "exact", "search_params": {"block_elements": 4096}}
    loaded = PatchCoreScorer.from_arrays(params, scorer.to_arrays())
    assert loaded.get_params()["search_params"] == {"block_elements": 4096}
    assert loaded.index_.block_elements == 4096


def test_auto_search_is_chosen_for_the_device(fitted):
    scorer, _ = fitted
    auto = PatchCoreScorer.from_arrays(scorer.get_params() | {"search": "auto"}, scorer.to_arrays())
    assert auto.get_params()["search"] == "auto"  # the bundle keeps the rule, not one device's pick
    assert auto.index_.name == ("faiss-hnsw" if faiss_available() else "exact")
    assert auto.to("cpu").index_.name == auto.index_.name
    assert resolve_search("auto", "cuda") == "exact" and resolve_search("faiss-ivf", "cuda") == "faiss-ivf"


def test_maps_left_on_the_device_score_as_on_the_host(fitted):
    """The GPU path (maps as a device tensor, searched and reduced there) runs on the CPU
    through the same code and gives the host path's scores, maps and defect latents."""
    import torch

    scorer, rng = fitted
    batch = latents(rng, 6, spot=True)
    on_device = Latents(batch.full, batch.centre, torch.from_numpy(batch.maps.copy()))
    expected, got = score_batch(scorer, batch), score_batch(scorer, on_device)
    np.testing.assert_allclose(got.scores, expected.scores, rtol=1e-5)
    np.testing.assert_allclose(got.maps, expected.maps, rtol=1e-5)
    np.testing.assert_allclose(got.spaces["defect"], expected.spaces["defect"], atol=1e-5)


@pytest.mark.skipif(not faiss_available(), reason="FAISS is not installed")
def test_device_maps_reach_a_host_search_too(fitted):
    """A search without a device form (FAISS HNSW on a CPU worker) takes the maps via the host."""
    import torch

    scorer, rng = fitted
    hnsw = PatchCoreScorer.from_arrays(scorer.get_params() | {"search": "faiss-hnsw"}, scorer.to_arrays())
    batch = latents(rng, 4)
    on_device = Latents(batch.full, batch.centre, torch.from_numpy(batch.maps.copy()))
    np.testing.assert_allclose(hnsw.score(on_device), hnsw.score(batch), rtol=1e-5)
