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
- ``pixel_clipped``: share of pixels at either end of the range (over- or under-exposure, glare).
  One share, not one per end: on near-binary images (deeppcb-patches: most patches are all
  copper or all substrate) each end's share varies with the part, their sum hardly, so a
  dimming moved the sum by 19 reference std and the top share by 2;
- ``pixel_midtone``: mean of the pixels not clipped (absent when all are): on images that clip,
  the only place a brightening shows (deeppcb-patches, 20 % brighter: the mean moves by 0.0
  reference std, the mid-tone mean by 2.7);
- ``pixel_centroid_x``, ``pixel_centroid_y``: the intensity centroid as a share of the width and
  height, and ``pixel_orientation``: the dominant edge direction modulo 90 degrees, in degrees
  (the gradients' angles times four averaged as unit phasors weighted by squared gradient
  magnitude, the four-fold analogue of the structure tensor's orientation). Lighting and focus
  leave them alone; a camera knocked or a fixture moved shifts and turns what the camera sees.
  They only speak on a line whose parts sit alike in the frame (on ELPV's aligned cells a 1
  degree turn moves the orientation by almost 6 reference standard deviations; deeppcb's random
  patches vary by 19 degrees, so there they see nothing);
- ``pixel_red_green``, ``pixel_blue_green``: mean red and blue minus mean green, only for images
  whose channels differ (colour cameras; a lamp's colour temperature, white balance).

Measured (``latentline evaluate-scenarios``, docs/drift.md): standardised per camera and watched
with ADWIN they found every scenario of the library (dimming, brightening, contrast loss, defocus,
sensor noise, camera shift, another material) at its stronger setting within 48 events on
deeppcb-patches and ELPV mono cells, with no false alarm over 4 x 2,000 stable events.

>>> flat = np.full((32, 32), 128, np.uint8)
>>> stats = pixel_statistics(flat)
>>> [round(stats[k], 3) for k in ("pixel_mean", "pixel_contrast", "pixel_clipped", "pixel_midtone")]
[0.502, 0.0, 0.0, 0.502]
>>> "pixel_red_green" in stats  # grey: no colour balance
False
"""

import numpy as np
from PIL import Image
from scipy import ndimage

PREFIX = "pixel_"
STATISTICS = (
    "pixel_mean",
    "pixel_contrast",
    "pixel_sharpness",
    "pixel_clipped",
    "pixel_midtone",
    "pixel_centroid_x",
    "pixel_centroid_y",
    "pixel_orientation",
    "pixel_red_green",
    "pixel_blue_green",
)
SHARPNESS_FLOOR = 1e-8  # var of the Laplacian of a flat image is 0; its log must stay finite

# What a change of each statistic usually means on a line: (going up, going down).
_MOVED = "camera or fixture shifted, parts placed differently"
_LAMP = "lamp colour temperature (ageing, another lamp) or white balance"
MEANINGS = {
    "pixel_mean": ("brighter: exposure or gain raised, stray light or a new lamp, or a lighter material",
                   "darker: lamp ageing or failing, exposure or gain lowered, or a darker material"),
    "pixel_contrast": ("harsher: lighting or exposure changed, or another material",
                       "flatter: diffuse or stray light, a fogged or dirty lens or window"),
    "pixel_sharpness": ("grainier or sharper: sensor noise (gain raised, heat), refocused, another texture",
                        "softer: focus lost (camera or part distance moved), a dirty lens, motion blur"),
    "pixel_clipped": ("more clipped pixels: over- or under-exposure, glare or reflections",
                      "fewer clipped pixels: exposure, gain or lighting changed (dimmer, flatter), noise"),
    "pixel_midtone": ("brighter mid-tones (or the darkest now clipped): exposure, gain or lighting changed",
                      "darker mid-tones (or the brightest now clipped): exposure, gain or lighting changed"),
    "pixel_centroid_x": (f"content moved right: {_MOVED}", f"content moved left: {_MOVED}"),
    "pixel_centroid_y": (f"content moved down: {_MOVED}", f"content moved up: {_MOVED}"),
    "pixel_orientation": ("turned: camera knocked or fixture moved, parts fed at another angle",) * 2,
    "pixel_red_green": (f"redder: {_LAMP}", f"less red: {_LAMP}"),
    "pixel_blue_green": (f"bluer: {_LAMP}", f"less blue: {_LAMP}"),
}


def meaning(statistic: str, direction: str) -> str | None:
    """What a change of ``statistic`` in ``direction`` ('up'/'down') usually means; None if unknown."""
    if statistic not in MEANINGS or direction not in ("up", "down"):
        return None
    return MEANINGS[statistic][direction == "down"]


def pixel_statistics(
    image: Image.Image | np.ndarray, max_side: int = 512, clip_margin: int = 1
) -> dict[str, float]:
    """The statistics of one 8-bit image (grey [H, W] or RGB [H, W, 3]).

    ``max_side``: larger images are first reduced by an integer box filter (cost, not accuracy:
    the reference is taken on equally reduced images). ``clip_margin``: grey levels within this
    of 0 or 255 count as clipped.
    """
    pixels = _reduced(np.asarray(image), max_side)
    colour = pixels.ndim == 3 and not (
        np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(pixels[..., 1], pixels[..., 2])
    )
    if pixels.ndim == 3:  # Pillow's luma (ITU-R 601), in C: a float matrix product costs 5x more
        grey8 = np.asarray(Image.fromarray(np.ascontiguousarray(pixels[..., :3])).convert("L"))
    else:
        grey8 = pixels
    grey = grey8.astype(np.float32) / np.float32(255.0)
    laplacian = ndimage.laplace(grey, mode="reflect")
    stats = (
        {
            "pixel_mean": float(grey.mean(dtype=np.float64)),
            "pixel_contrast": float(grey.std(dtype=np.float64)),
            "pixel_sharpness": float(np.log10(laplacian.var(dtype=np.float64) + SHARPNESS_FLOOR)),
        }
        | _clipping(grey8, grey, clip_margin)
        | _geometry(grey)
    )
    if colour:
        red, green, blue = (pixels[..., c].mean(dtype=np.float64) / 255.0 for c in range(3))
        stats |= {"pixel_red_green": float(red - green), "pixel_blue_green": float(blue - green)}
    return stats


def _clipping(grey8: np.ndarray, grey: np.ndarray, margin: int) -> dict[str, float]:
    unclipped = (grey8 > margin) & (grey8 < 255 - margin)
    stats = {"pixel_clipped": 1.0 - float(unclipped.mean())}
    if unclipped.any():
        stats["pixel_midtone"] = float(grey[unclipped].mean(dtype=np.float64))
    return stats


def _geometry(grey: np.ndarray) -> dict[str, float]:
    height, width = grey.shape
    total = grey.sum(dtype=np.float64)
    if total <= 0:  # a black frame has no centroid: the middle, not NaN
        cx = cy = 0.5
    else:
        cx = float(grey.sum(axis=0, dtype=np.float64) @ (np.arange(width) + 0.5)) / total / width
        cy = float(grey.sum(axis=1, dtype=np.float64) @ (np.arange(height) + 0.5)) / total / height
    gx, gy = ndimage.sobel(grey, axis=1), ndimage.sobel(grey, axis=0)
    # sum of |g|^2 e^{4i theta} = sum of (gx + i gy)^4 / |g|^2, without a trigonometric call per pixel
    squared = gx * gx + gy * gy
    real2, imag2 = gx * gx - gy * gy, 2 * gx * gy
    keep = squared > 0
    real4 = ((real2 * real2 - imag2 * imag2)[keep] / squared[keep]).sum(dtype=np.float64)
    imag4 = ((2 * real2 * imag2)[keep] / squared[keep]).sum(dtype=np.float64)
    orientation = float(np.degrees(np.arctan2(imag4, real4)) / 4)
    return {"pixel_centroid_x": float(cx), "pixel_centroid_y": float(cy), "pixel_orientation": orientation}


def _reduced(pixels: np.ndarray, max_side: int) -> np.ndarray:
    factor = -(-max(pixels.shape[:2]) // max_side)
    if factor <= 1:
        return pixels
    return np.asarray(Image.fromarray(pixels).reduce(factor))
