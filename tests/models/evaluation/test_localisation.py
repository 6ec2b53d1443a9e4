"""Pixel AUROC and AUPRO against MVTec-style masks, and the grid of examples (evaluation/localisation.py)."""

import shutil

import numpy as np
import pytest
from PIL import Image

from latentline.models.dataset import list_images
from latentline.models.evaluation.localisation import PIXEL_SIDE, grid_examples, localisation, mask_path
from latentline.models.inspector import Inspector


@pytest.fixture(scope="module")
def masked_dir(tmp_path_factory, typed_dir):
    """typed_dir with a mask for every copper test image: the middle of the patch, where
    deeppcb-patches centres its defects."""
    root = tmp_path_factory.mktemp("masked")
    shutil.copytree(typed_dir, root, dirs_exist_ok=True)
    for item in list_images(root, "test", "copper"):
        width, height = Image.open(item.path).size
        mask = np.zeros((height, width), np.uint8)
        mask[height // 3 : 2 * height // 3, width // 3 : 2 * width // 3] = 255
        mask_path(root, item).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask).save(mask_path(root, item))
    return root


def test_pixel_auroc_and_aupro_with_masks(typed_bundle, masked_dir):
    inspector = Inspector(typed_bundle, device="cpu")
    items = list_images(masked_dir, "test", "good")[:10] + list_images(masked_dir, "test", "copper")
    latents = inspector.encode_files([i.path for i in items], progress=False)
    metrics = localisation(inspector, latents, items, masked_dir)
    assert metrics["pixel_auroc"] > 0.6  # the maps light up the middle, where the defects are
    assert 0.15 < metrics["aupro"] <= 1  # better than a map of noise (about 0.15)
    assert metrics["pixel_side"] == PIXEL_SIDE


def test_localisation_is_none_without_masks(typed_bundle, typed_dir):
    inspector = Inspector(typed_bundle, device="cpu")
    items = list_images(typed_dir, "test")[:3]
    latents = inspector.encode_files([i.path for i in items], progress=False)
    assert localisation(inspector, latents, items, typed_dir) == {"pixel_auroc": None, "aupro": None}


def test_grid_examples_span_the_scores_of_every_type():
    truth = np.array(["good"] * 10 + ["scratch"] * 3)
    scores = np.r_[np.arange(10.0), [5.0, 7.0, 6.0]]
    chosen = grid_examples(truth, scores, per_type=4)
    assert chosen[:4] == [0, 3, 6, 9]  # lowest, evenly spaced, highest
    assert sorted(chosen[4:]) == [10, 11, 12]  # all three when fewer than asked
