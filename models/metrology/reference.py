"""Reference defects of known size: the artefacts a quantity is calibrated and checked on.

A defect of known physical size (a spot of known diameter, a scratch of known length) is drawn
onto a real good image at a stated pixel pitch, anti-aliased, so a size between two pixel counts
is drawn as such (tests/models/metrology/test_reference.py: the drawn area matches the stated size
to within 1 to 2 %). Pure computation: models/evaluation/reference_set.py writes the sets.

>>> from PIL import Image
>>> spot = ReferenceDefect(pixel_pitch_mm=0.1, grey=255)
>>> drawn = draw_defect(Image.new("L", (40, 40)), 1.0, spot, np.random.default_rng(0))
>>> round(float(np.asarray(drawn, float).sum() / 255), 1)  # pixels covered; pi x (5 px)^2 = 78.54
78.4
"""

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

KINDS = {"spot": "spot_diameter", "scratch": "scratch_length"}
SUPERSAMPLE = 8  # drawn at 8x and area-averaged: edges carry the sub-pixel part of the size


@dataclass(frozen=True)
class ReferenceDefect:
    """What to draw. Sizes are uniform in [min_mm, max_mm]; the default spans a factor of 10."""

    kind: str = "spot"
    # Millimetres per pixel of the source images (a stated property of the camera and optics).
    pixel_pitch_mm: float = 0.05
    min_mm: float = 0.15
    max_mm: float = 1.5
    width_mm: float = 0.1  # a scratch's width
    grey: int = 128  # mid-grey stands out on both the dark substrate and bright copper

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}, got {self.kind!r}")
        if not 0 < self.min_mm < self.max_mm:
            raise ValueError("need 0 < min_mm < max_mm")

    @property
    def quantity(self) -> str:
        return KINDS[self.kind]


def draw_defect(image: Image.Image, size_mm: float, defect: ReferenceDefect,
                rng: np.random.Generator) -> Image.Image:
    """``image`` with one defect of ``size_mm`` at a random place (wholly inside) and angle."""
    grey = image.convert("L")
    size_px = size_mm / defect.pixel_pitch_mm
    alpha = _coverage(grey.size, size_px, defect, rng)
    pixels = np.asarray(grey, np.float32)
    drawn = pixels * (1 - alpha) + defect.grey * alpha
    return Image.fromarray(np.rint(drawn).astype(np.uint8), mode="L")


def _coverage(shape: tuple[int, int], size_px: float, defect: ReferenceDefect,
              rng: np.random.Generator) -> np.ndarray:
    """Fraction of each pixel the defect covers, [height, width] in [0, 1]."""
    width, height = shape
    s = SUPERSAMPLE
    angle = rng.uniform(0, math.pi)
    half_x, half_y = _half_extent(size_px, defect, angle)
    if 2 * half_x >= width or 2 * half_y >= height:
        raise ValueError(f"a {size_px:.1f} px {defect.kind} does not fit a {width}x{height} image")
    cx, cy = rng.uniform(half_x, width - half_x), rng.uniform(half_y, height - half_y)
    mask = Image.new("L", (width * s, height * s), 0)
    canvas = ImageDraw.Draw(mask)
    if defect.kind == "spot":
        r = size_px / 2
        # PIL's box includes its last pixel: one supersampled pixel less keeps the stated diameter
        canvas.ellipse([(cx - r) * s, (cy - r) * s, (cx + r) * s - 1, (cy + r) * s - 1], fill=255)
    else:
        dx, dy = math.cos(angle) * size_px / 2, math.sin(angle) * size_px / 2
        line_width = max(1, round(defect.width_mm / defect.pixel_pitch_mm * s))
        canvas.line([((cx - dx) * s, (cy - dy) * s), ((cx + dx) * s, (cy + dy) * s)], fill=255,
                    width=line_width)
    covered = np.asarray(mask, np.float32).reshape(height, s, width, s).mean(axis=(1, 3))
    return covered / 255.0


def _half_extent(size_px: float, defect: ReferenceDefect, angle: float) -> tuple[float, float]:
    if defect.kind == "spot":
        return size_px / 2, size_px / 2
    pad = defect.width_mm / defect.pixel_pitch_mm / 2
    return (abs(math.cos(angle)) * size_px / 2 + pad, abs(math.sin(angle)) * size_px / 2 + pad)


def plan_sizes(defect: ReferenceDefect, n_reference: int, n_test: int,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sizes in mm for the reference images (evenly covering the range, since calibration wants no
    gaps, in random order) and for the test images (uniform at random)."""
    reference = rng.permutation(np.linspace(defect.min_mm, defect.max_mm, n_reference))
    return reference, rng.uniform(defect.min_mm, defect.max_mm, n_test)
