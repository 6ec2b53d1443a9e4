"""Pixel statistics of one decoded image: the most direct evidence of a lighting, focus or lens change.

The latent summaries and the anomaly score are built to ignore what varies among good parts, so
on a line whose good images already vary in brightness they barely move when the lamp dims
(issue 16: a 20 % dimming at 10 % less contrast was never found in 600 events on such a line).
The pixels move at once. Per image, on the grey level scaled to [0, 1]:

- ``pixel_mean``: mean intensity (lamp, exposure, gain, aperture);
- ``pixel_contrast``: standard deviation of the intensity (stray or diffuse light, a fogged lens);
- ``pixel_sharpness``: log10 of the variance of the Laplacian, the focus measure "LAP4" of
  Pertuz, Puig and Garcia, "Analysis of focus measure operators for shape-from-focus" (Pattern
  Recognition 46, 2013); in logs, so blur and noise are additive changes of similar spread;
- ``pixel_clipped``: share of pixels at the ends of the range (over- or under-exposure, glare);
- ``pixel_red_green``, ``pixel_blue_green``: mean red and blue minus mean green, only for images
  whose channels differ (colour cameras; a lamp's colour temperature, white balance).

Measured (``latentline evaluate-scenarios``, docs/drift.md): standardised per camera and watched
with ADWIN they find every lighting, focus, noise and material scenario of the library at its
stronger setting within 100 events on deeppcb-patches and ELPV, with no false alarm over 4 x 2,000
stable events.

>>> flat = np.full((32, 32), 128, np.uint8)
>>> stats = pixel_statistics(flat)
>>> round(stats["pixel_mean"], 3), stats["pixel_contrast"], stats["pixel_clipped"]
(0.502, 0.0, 0.0)
>>> "pixel_red_green" in stats  # grey: no colour balance
False
"""

import numpy as np
from PIL import Image
from scipy import ndimage

PREFIX = "pixel_"
STATISTICS = ("pixel_mean", "pixel_contrast", "pixel_sharpness", "pixel_clipped", "pixel_red_green",
              "pixel_blue_green")
GREY_WEIGHTS = np.array([0.299, 0.587, 0.114])  # ITU-R 601 luma, as PIL's convert("L")
SHARPNESS_FLOOR = 1e-8  # var of the Laplacian of a flat image is 0; its log must stay finite

# What a change of each statistic usually means on a line, by direction.
MEANINGS = {
    ("pixel_mean", "down"): "darker: lamp ageing or failing, exposure or gain lowered, or a darker material",
    ("pixel_mean", "up"): "brighter: exposure or gain raised, stray light or a new lamp, or a lighter material",
    ("pixel_contrast", "down"): "flatter: diffuse or stray light, a fogged or dirty lens or window",
    ("pixel_contrast", "up"): "harsher: lighting or exposure changed, or another material",
    ("pixel_sharpness", "down"): "softer: focus lost (camera or part distance moved), a dirty lens, motion blur",
    ("pixel_sharpness", "up"): "grainier or sharper: sensor noise (gain raised, heat), refocused, another texture",
    ("pixel_clipped", "up"): "more clipped pixels: over- or under-exposure, glare or reflections",
    ("pixel_clipped", "down"): "fewer clipped pixels: exposure or lighting changed",
    ("pixel_red_green", "up"): "redder: lamp colour temperature (ageing, another lamp) or white balance",
    ("pixel_red_green", "down"): "less red: lamp colour temperature (ageing, another lamp) or white balance",
    ("pixel_blue_green", "up"): "bluer: lamp colour temperature (another lamp) or white balance",
    ("pixel_blue_green", "down"): "less blue: lamp colour temperature (ageing, another lamp) or white balance",
}


def meaning(statistic: str, direction: str) -> str | None:
    """What a change of ``statistic`` in ``direction`` ('up'/'down') usually means; None if unknown."""
    return MEANINGS.get((statistic, direction))


def pixel_statistics(image: Image.Image | np.ndarray, max_side: int = 1024, clip_margin: int = 1) -> dict[str, float]:
    """The statistics of one 8-bit image (grey [H, W] or RGB [H, W, 3]).

    ``max_side``: larger images are first reduced by an integer box filter (cost, not accuracy:
    the reference is taken on equally reduced images). ``clip_margin``: grey levels within this
    of 0 or 255 count as clipped.
    """
    pixels = _reduced(np.asarray(image), max_side)
    colour = pixels.ndim == 3 and not (np.array_equal(pixels[..., 0], pixels[..., 1])
                                       and np.array_equal(pixels[..., 1], pixels[..., 2]))
    rgb = pixels.astype(np.float64) / 255.0
    grey = rgb @ GREY_WEIGHTS if rgb.ndim == 3 else rgb
    laplacian = ndimage.laplace(grey, mode="reflect")
    low, high = clip_margin / 255.0, 1.0 - clip_margin / 255.0
    stats = {
        "pixel_mean": float(grey.mean()),
        "pixel_contrast": float(grey.std()),
        "pixel_sharpness": float(np.log10(laplacian.var() + SHARPNESS_FLOOR)),
        "pixel_clipped": float(np.mean((grey <= low) | (grey >= high))),
    }
    if colour:
        red, green, blue = (rgb[..., c].mean() for c in range(3))
        stats |= {"pixel_red_green": float(red - green), "pixel_blue_green": float(blue - green)}
    return stats


def _reduced(pixels: np.ndarray, max_side: int) -> np.ndarray:
    factor = -(-max(pixels.shape[:2]) // max_side)
    if factor <= 1:
        return pixels
    return np.asarray(Image.fromarray(pixels).reduce(factor))
