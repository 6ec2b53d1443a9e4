"""Off-centre mosaics and long strips from real patches (models/evaluation/hard_cases.py)."""

import json

import numpy as np
import pytest
from PIL import Image

from latentline.models.dataset import list_images
from latentline.models.evaluation.hard_cases import HardCases, make_hard_cases
from latentline.models.evaluation.localisation import mask_path

SMALL = dict(n_train_good=6, n_test_good=4, n_test_per_type=3)


@pytest.fixture(scope="module")
def mosaics(typed_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("mosaic")
    return out, make_hard_cases(typed_dir, out, HardCases(**SMALL), progress=False)


def test_mosaics_keep_the_layout_and_every_label(mosaics, typed_dir):
    out, described = mosaics
    assert {i.label for i in list_images(out, "train")} == {i.label for i in list_images(typed_dir, "train")}
    assert {i.label for i in list_images(out, "test")} == {i.label for i in list_images(typed_dir, "test")}
    assert len(list_images(out, "train", "good")) == 6 and len(list_images(out, "test", "spur")) == 3
    assert json.loads((out / "hard_cases.json").read_text())["plan"]["kind"] == "mosaic"
    assert all(Image.open(i.path).size == (192, 192) for i in list_images(out, "test"))


def test_the_defect_tile_is_the_labelled_patch_and_its_mask(mosaics, typed_dir):
    out, described = mosaics
    item = list_images(out, "test", "copper")[0]
    record = described["images"][f"test/copper/{item.path.name}"]
    cell, source = record["defect_cell"], record["sources"][record["defect_cell"]]
    x, y = HardCases().position(cell)
    tile = np.asarray(Image.open(item.path).convert("L"))[y : y + 64, x : x + 64]
    patch = Image.open(typed_dir / "test" / "copper" / source).convert("L")
    w, h = patch.size
    expected = np.asarray(patch)[(h - 64) // 2 : (h - 64) // 2 + 64, (w - 64) // 2 : (w - 64) // 2 + 64]
    np.testing.assert_array_equal(tile, expected)
    mask = np.asarray(Image.open(mask_path(out, item))) > 0
    assert mask.sum() == 64 * 64 and mask[y : y + 64, x : x + 64].all()
    # good tiles come from good patches of the same split, never the training ones
    test_goods = {p.path.name for p in list_images(typed_dir, "test", "good")}
    assert set(record["sources"]) - {source} <= test_goods


def test_strips_are_long_and_hold_one_defect(typed_dir, tmp_path):
    plan = HardCases(kind="strip", length=5, **SMALL)
    described = make_hard_cases(typed_dir, tmp_path, plan, progress=False)
    item = list_images(tmp_path, "test", "short")[0]
    assert Image.open(item.path).size == (5 * 64, 64)
    assert 0 <= described["images"][f"test/short/{item.path.name}"]["defect_cell"] < 5
    assert all(r["defect_cell"] is None for k, r in described["images"].items() if "/good/" in k)


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="mosaic or strip"):
        HardCases(kind="spiral")


def test_twin_masks_hold_the_defect_pixels_only(typed_dir, tmp_path):
    """A defect patch with a good twin (the template board's same window) gets the pixels where
    the two differ as its mask; defects without a twin are left out of the test set."""
    plan = HardCases(grid=1, masks="twin", **SMALL)
    described = make_hard_cases(typed_dir, tmp_path, plan, progress=False)
    twins = {p.name for p in (typed_dir / "test" / "good").iterdir()}
    defects = [i for i in list_images(tmp_path, "test") if not i.is_good]
    assert defects
    for item in defects:
        source = described["images"][f"test/{item.label}/{item.path.name}"]["sources"][0]
        assert source in twins
        mask = np.asarray(Image.open(mask_path(tmp_path, item))) > 0
        patch = np.asarray(Image.open(item.path).convert("L"), np.int16)
        twin = Image.open(typed_dir / "test" / "good" / source).convert("L")
        left, top = (twin.size[0] - 64) // 2, (twin.size[1] - 64) // 2
        twin = np.asarray(twin, np.int16)[top : top + 64, left : left + 64]
        np.testing.assert_array_equal(mask, np.abs(patch - twin) > 64)
        assert 0 < mask.mean() < 0.5  # the defect, not the tile


def test_unknown_masks_are_refused():
    with pytest.raises(ValueError, match="tile or twin"):
        HardCases(masks="box")
