"""evaluate's search recall: 1.0 for the exact search, below it for a coarse approximate one,
and nothing for scorers without a bank."""

import numpy as np
import pytest

from latentline.models.evaluation.search_recall import search_recall
from latentline.models.latents import Latents
from latentline.models.scoring.mahalanobis import MahalanobisScorer
from latentline.models.scoring.patchcore import PatchCoreScorer
from latentline.models.scoring.search import faiss_available


def latents(rng: np.random.Generator, n: int) -> Latents:
    maps = rng.normal(size=(n, 16, 6, 6)).astype(np.float32)
    return Latents(rng.normal(size=(n, 4)).astype(np.float32), np.zeros((n, 4), np.float32), maps)


def fitted(search: str, **params) -> PatchCoreScorer:
    rng = np.random.default_rng(0)
    return PatchCoreScorer(coreset_ratio=0.5, coreset_passes=2, search=search,
                           search_params=params).fit(latents(rng, 60))


def test_the_exact_search_finds_every_exact_neighbour():
    report = search_recall(fitted("exact"), latents(np.random.default_rng(1), 10))
    assert report["search"] == "exact" and report["search_recall"] == 1.0
    assert report["search_miss_distance_ratio"] is None and report["search_queries"] == 360


@pytest.mark.skipif(not faiss_available(), reason="FAISS is not installed")
def test_a_coarse_approximate_search_misses_some_and_says_how_far_off():
    scorer = fitted("faiss-ivf", nlist=32, nprobe=1)
    report = search_recall(scorer, latents(np.random.default_rng(1), 10), max_queries=200)
    assert report["search"] == "faiss-ivf" and report["search_queries"] == 200
    assert 0.0 < report["search_recall"] < 1.0
    assert report["search_miss_distance_ratio"] > 1.0


def test_scorers_without_a_bank_report_nothing():
    rng = np.random.default_rng(0)
    scorer = MahalanobisScorer().fit(latents(rng, 40))
    assert search_recall(scorer, latents(rng, 3)) == {}
