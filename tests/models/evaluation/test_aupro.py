"""AUPRO (models/evaluation/aupro.py): every region counts the same, whatever its size."""

import numpy as np

from latentline.models.evaluation.aupro import aupro


def regions() -> np.ndarray:
    masks = np.zeros((2, 32, 32), bool)
    masks[0, 2:22, 2:22] = True  # a large region (400 px)
    masks[1, 10:12, 10:12] = True  # a small one (4 px)
    return masks


def test_a_map_that_finds_only_the_large_region_gets_half_the_credit():
    masks = regions()
    maps = np.where(masks, 1.0, 0.0)
    maps[1] = 0.0  # the small region is missed
    # half the regions at every FPR, the other half only as the FPR grows past 0: about 0.575,
    # where pixel AUROC would be above 0.99 (the large region holds 99 % of the defect pixels)
    assert 0.5 < aupro(maps, masks) < 0.6


def test_perfect_and_inverted_maps():
    masks = regions()
    assert aupro(masks.astype(float), masks) == 1.0
    assert aupro((~masks).astype(float), masks) < 0.01


def test_images_of_different_sizes_and_no_regions():
    small, large = np.zeros((8, 8), bool), np.zeros((16, 4), bool)
    small[2:4, 2:4] = True
    assert aupro([small * 1.0, large * 1.0], [small, large]) == 1.0
    assert aupro(np.zeros((1, 4, 4)), np.zeros((1, 4, 4), bool)) is None
