"""Every nearest-neighbour search honours one interface and agrees with the brute-force answer:
exactly for the exact ones, at a stated recall for the approximate ones."""

import numpy as np
import pytest
import torch

from latentline.models.scoring.search import SEARCHES, ExactSearch, faiss_available, make_search, nearest

APPROXIMATE = {"faiss-ivf": 0.9, "faiss-hnsw": 0.95}  # least recall of the true nearest row


def brute_force(bank: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    squared = ((queries[:, None, :] - bank[None]) ** 2).sum(axis=2)
    rows = squared.argmin(axis=1)
    return np.sqrt(squared[np.arange(len(queries)), rows]), rows


@pytest.fixture(scope="module")
def clouds():
    """A bank of patch-like rows in clusters, and queries near them and far off."""
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 4, size=(40, 32))
    bank = (centres[rng.integers(0, 40, 3000)] + rng.normal(size=(3000, 32))).astype(np.float32)
    near = bank[rng.integers(0, 3000, 300)] + rng.normal(scale=0.3, size=(300, 32))
    far = rng.normal(0, 8, size=(100, 32))
    return bank, np.concatenate([near, far]).astype(np.float32)


@pytest.mark.parametrize("name", SEARCHES)
def test_search_agrees_with_brute_force(name, clouds):
    if name.startswith("faiss") and not faiss_available():
        pytest.skip("FAISS is not installed")
    bank, queries = clouds
    distances, rows = make_search(name).fit(bank).to("cpu").search(queries)
    true_distances, true_rows = brute_force(bank, queries)
    assert distances.dtype == np.float32 and rows.dtype == np.int64 and rows.shape == (len(queries),)
    # what a search returns is consistent: the distance is the one to the row it names
    np.testing.assert_allclose(distances, np.linalg.norm(queries - bank[rows], axis=1), rtol=1e-4, atol=1e-4)
    recall = float((rows == true_rows).mean())
    assert recall >= APPROXIMATE.get(name, 1.0), f"{name}: recall {recall:.3f}"
    if name not in APPROXIMATE:
        np.testing.assert_allclose(distances, true_distances, rtol=1e-4, atol=1e-4)


def test_search_takes_tensors_too(clouds):
    bank, queries = clouds
    from_array = ExactSearch().fit(bank).search(queries)
    from_tensor = ExactSearch().fit(bank).search(torch.from_numpy(queries))
    np.testing.assert_array_equal(from_array[1], from_tensor[1])


def test_blocks_bound_memory_without_changing_the_answer(clouds):
    bank, queries = clouds
    whole = ExactSearch().fit(bank).search(queries)
    blocked = ExactSearch(block_elements=bank.shape[0] * 7).fit(bank).search(queries)  # 7 rows a block
    np.testing.assert_array_equal(whole[1], blocked[1])


def test_nearest_on_the_points_themselves_is_zero():
    points = torch.randn(50, 8)
    distances, rows = nearest(points, points)
    assert torch.equal(rows, torch.arange(50)) and float(distances.max()) < 1e-2


def test_unknown_search_is_refused():
    with pytest.raises(ValueError, match="unknown search"):
        make_search("annoy")
