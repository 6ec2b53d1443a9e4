"""Pixel statistics on synthetic images whose answers are known."""

import numpy as np
import pytest
from PIL import Image, ImageFilter

from latentline.models.online.pixel_stats import MEANINGS, STATISTICS, meaning, pixel_statistics


@pytest.fixture(scope="module")
def texture() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(40, 216, (96, 128), dtype=np.uint8)).convert("RGB")


def test_known_values_of_a_two_level_image():
    pixels = np.zeros((10, 10), np.uint8)
    pixels[:, 5:] = 255  # half black, half white: mean 0.5, std 0.5, every pixel clipped
    stats = pixel_statistics(pixels)
    assert stats["pixel_mean"] == pytest.approx(0.5)
    assert stats["pixel_contrast"] == pytest.approx(0.5)
    assert stats["pixel_clipped"] == 1.0
    assert set(stats) == set(STATISTICS[:8]) - {"pixel_midtone"}, (
        "grey: no colour balance; all clipped: no mid-tone"
    )
    assert stats["pixel_centroid_x"] == pytest.approx(0.75) and stats["pixel_centroid_y"] == pytest.approx(
        0.5
    )


def test_darker_and_flatter_images_lower_mean_and_contrast(texture):
    base = pixel_statistics(texture)
    darker = pixel_statistics(Image.eval(texture, lambda v: int(v * 0.8)))
    flatter = pixel_statistics(Image.eval(texture, lambda v: int(128 + (v - 128) * 0.5)))
    assert darker["pixel_mean"] == pytest.approx(base["pixel_mean"] * 0.8, rel=0.02)
    assert flatter["pixel_contrast"] == pytest.approx(base["pixel_contrast"] * 0.5, rel=0.05)
    assert flatter["pixel_mean"] == pytest.approx(base["pixel_mean"], abs=0.01)


def test_blur_lowers_and_noise_raises_the_sharpness():
    rng = np.random.default_rng(1)
    smooth = np.kron(rng.integers(0, 256, (12, 16)), np.ones((8, 8))).astype(np.uint8)  # blocks
    image = Image.fromarray(smooth)
    base = pixel_statistics(image)["pixel_sharpness"]
    blurred = pixel_statistics(image.filter(ImageFilter.GaussianBlur(2)))["pixel_sharpness"]
    noisy = np.clip(smooth + rng.normal(0, 8, smooth.shape), 0, 255).astype(np.uint8)
    assert blurred < base - 0.3, "log10: blur removes most of the Laplacian's variance"
    assert pixel_statistics(noisy)["pixel_sharpness"] > base


def test_overexposure_raises_the_clipped_share_and_the_midtone_is_what_is_left(texture):
    base = pixel_statistics(texture)
    assert base["pixel_clipped"] == 0.0 and base["pixel_midtone"] == pytest.approx(base["pixel_mean"])
    bright = pixel_statistics(Image.eval(texture, lambda v: min(255, int(v * 1.5))))
    assert 0.2 < bright["pixel_clipped"] < 0.8
    assert bright["pixel_midtone"] < bright["pixel_mean"], "the brightest pixels are clipped, not mid-tones"


def test_colour_balance_only_for_colour_images():
    warm = np.zeros((8, 8, 3), np.uint8) + np.array([160, 120, 90], np.uint8)
    stats = pixel_statistics(warm)
    assert stats["pixel_red_green"] == pytest.approx(40 / 255)
    assert stats["pixel_blue_green"] == pytest.approx(-30 / 255)
    assert stats["pixel_mean"] == pytest.approx((0.299 * 160 + 0.587 * 120 + 0.114 * 90) / 255, abs=1 / 255)


def test_a_shift_moves_the_centroid_and_a_turn_the_orientation():
    grid = np.full((120, 120), 60, np.uint8)
    grid[::20, :], grid[:, ::20] = 200, 200  # busbars and cell edges, axis-aligned
    grid[:, :30] = 20  # a dark margin on the left
    image = Image.fromarray(grid)
    base = pixel_statistics(image)
    assert base["pixel_orientation"] == pytest.approx(0.0, abs=0.5)
    turned = pixel_statistics(image.rotate(3, resample=Image.Resampling.BILINEAR))
    assert abs(turned["pixel_orientation"]) == pytest.approx(3.0, abs=1.0)
    moved = pixel_statistics(image.transform(image.size, Image.Transform.AFFINE, (1, 0, -10, 0, 1, 0)))
    assert moved["pixel_centroid_x"] > base["pixel_centroid_x"] + 0.02
    assert moved["pixel_centroid_y"] == pytest.approx(base["pixel_centroid_y"], abs=0.01)


def test_large_images_are_reduced_first_and_measure_alike(texture):
    large = texture.resize((1280, 960), Image.Resampling.NEAREST)
    reduced = pixel_statistics(large, max_side=128)
    assert reduced["pixel_mean"] == pytest.approx(pixel_statistics(texture)["pixel_mean"], abs=0.005)


def test_every_statistic_has_a_meaning_both_ways():
    for statistic in STATISTICS:
        assert meaning(statistic, "up") and meaning(statistic, "down")
    assert meaning("anomaly_score", "up") is None and set(MEANINGS) == set(STATISTICS)
    assert meaning("pixel_mean", "down").startswith("darker")
