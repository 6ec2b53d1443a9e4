"""fit chooses how finely to tile from the labelled defects (models/training/tiling.py)."""

import pytest
from threadpoolctl import threadpool_limits

from latentline.models.encoding.config import EncoderConfig
from latentline.models.evaluation.hard_cases import HardCases, make_hard_cases
from latentline.models.training.fit import TypeOptions, fit_bundle
from latentline.models.training.tiling import TilingSearch


def test_finer_candidates_keep_enough_source_pixels_per_tile():
    search = TilingSearch(zooms=(1, 2, 4), min_tile_pixels=50)
    assert search.candidates((1, 1), (200, 200)) == [(1, 1), (2, 2), (4, 4)]
    assert search.candidates((1, 1), (120, 120)) == [(1, 1), (2, 2)]
    assert search.candidates((4, 1), (1600, 90)) == [(4, 1)]  # 90 px tall tiles: 45 px at the next zoom
    assert search.candidates((2, 1), (800, 200)) == [(2, 1), (4, 2), (8, 4)]


def test_zooms_never_exceed_the_longest_tiling():
    assert TilingSearch(zooms=(1, 2), min_tile_pixels=1).candidates((16, 1), (4096, 256)) == [(16, 1)]


def test_the_coarsest_tiling_within_the_tolerance_wins():
    search = TilingSearch(tolerance=0.01)
    assert search.choose({(1, 1): 0.80, (2, 2): 0.975, (3, 3): 0.98}) == (2, 2)
    assert search.choose({(1, 1): 0.995, (2, 2): 0.999, (3, 3): 1.0}) == (1, 1)
    assert search.choose({(1, 1): 0.70, (2, 2): 0.90, (3, 3): 0.99}) == (3, 3)


def test_a_single_candidate_is_taken_untried():
    def never(tiles):
        raise AssertionError("no trial for a single candidate")

    assert TilingSearch().run((1, 1), (80, 80), never) == ((1, 1), {})


@pytest.fixture(scope="module")
def mosaics(typed_dir, tmp_path_factory):
    """192 px mosaics of 64 px patches, defects at random cells: room for 3x3 tiles."""
    out = tmp_path_factory.mktemp("mosaic-tiling")
    plan = HardCases(n_train_good=24, n_test_good=4, n_test_per_type=3)
    make_hard_cases(typed_dir, out, plan, progress=False)
    return out


def test_fit_measures_each_tiling_on_the_labelled_defects_and_keeps_its_choice(mosaics):
    search = TilingSearch(zooms=(1, 3), max_good=20, max_defects=18)
    with threadpool_limits(limits=1):
        bundle = fit_bundle(mosaics, EncoderConfig(image_size=64), device="cpu", progress=False,
                            types=TypeOptions(views=1), tiling=search)
    report = bundle.training["tiling"]
    aurocs = report["labelled_defect_image_auroc"]
    assert set(aurocs) == {"1x1", "3x3"} and all(0.0 <= v <= 1.0 for v in aurocs.values())
    chosen = search.choose({tuple(map(int, k.split("x"))): v for k, v in aurocs.items()})
    assert tuple(report["tiles"]) == chosen == bundle.encoder.tiles


def test_by_shape_alone_no_trial_runs(mosaics):
    with threadpool_limits(limits=1):
        bundle = fit_bundle(mosaics, EncoderConfig(image_size=64), device="cpu", progress=False,
                            types=TypeOptions(enabled=False), tiling=None)
    assert bundle.encoder.tiles == (1, 1) and "tiling" not in bundle.training
