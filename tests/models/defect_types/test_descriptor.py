"""The type latents: peak and anomaly follow the anomaly map, peak more sharply; centre needs no map."""

import numpy as np
import pytest

from latentline.models.defect_types.descriptor import DESCRIPTORS, describe, needs_anomaly_maps
from latentline.models.latents import Latents


def part() -> tuple[Latents, np.ndarray]:
    """Cell (0, 0) holds the defect (feature 10), its neighbour (0, 1) a fringe (feature 5)."""
    maps = np.zeros((1, 1, 3, 3), np.float32)
    maps[0, 0, 0, 0], maps[0, 0, 0, 1] = 10.0, 5.0
    anomaly = np.zeros((1, 3, 3), np.float32)
    anomaly[0, 0, 0], anomaly[0, 0, 1] = 4.0, 2.0
    centre = np.full((1, 1), 7.0, np.float32)
    return Latents(np.zeros((1, 1), np.float32), centre, maps), anomaly


def test_peak_weighs_the_defect_over_its_fringe_more_than_anomaly_does():
    latents, anomaly = part()
    even, peak = describe("anomaly", latents, anomaly)[0, 0], describe("peak", latents, anomaly)[0, 0]
    assert 5.0 < even < peak < 10.0


def test_a_flat_map_weighs_every_cell_alike_whatever_the_power():
    latents, _ = part()
    flat = np.ones((1, 3, 3), np.float32)
    for kind in ("anomaly", "peak"):
        assert describe(kind, latents, flat)[0, 0] == pytest.approx(15.0 / 9)


def test_centre_reads_the_centre_view_and_needs_no_map():
    latents, _ = part()
    assert not needs_anomaly_maps("centre")
    assert describe("centre", latents, None)[0, 0] == 7.0


@pytest.mark.parametrize("kind", [k for k in DESCRIPTORS if needs_anomaly_maps(k)])
def test_map_descriptors_refuse_to_run_without_the_map(kind):
    latents, _ = part()
    with pytest.raises(ValueError, match="anomaly maps"):
        describe(kind, latents, None)


def test_an_unknown_descriptor_is_refused():
    latents, anomaly = part()
    with pytest.raises(ValueError, match="unknown descriptor"):
        describe("middle", latents, anomaly)


def test_cells_keep_the_hottest_cells_in_order_and_pool_like_peak():
    """The patch head's type latent: the hottest cells' features, then their excesses; pooled
    (for novelty) it is the peak descriptor of those cells."""
    from latentline.models.defect_types.descriptor import hot_cells, pooled, split_cells

    latents, anomaly = part()
    cells = describe("cells", latents, anomaly)
    assert cells.shape == (1, 64 * 1 + 64)  # a 3x3 map fills the rest with cells of no excess
    features, excess = split_cells(cells)
    assert features[0, :2, 0].tolist() == [10.0, 5.0] and excess[0, 2:].max() == 0
    np.testing.assert_allclose(pooled("cells", cells), describe("peak", latents, anomaly), rtol=1e-5)
    assert hot_cells(latents.maps, anomaly, cells=2).shape == (1, 2 + 2)
    with pytest.raises(ValueError, match="cells"):
        split_cells(np.zeros((1, 10), np.float32))
