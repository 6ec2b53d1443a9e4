"""Reference defects (models/metrology/reference.py): drawn sizes are the stated sizes."""

import math

import numpy as np
import pytest
from PIL import Image

from latentline.models.metrology.reference import ReferenceDefect, draw_defect

PITCH = 0.05  # mm per pixel


def blank(value: int = 0, size: int = 64) -> Image.Image:
    return Image.new("L", (size, size), value)


@pytest.mark.parametrize("diameter_mm", [0.15, 0.5, 1.5])
def test_a_spot_covers_its_stated_area(diameter_mm):
    defect = ReferenceDefect(pixel_pitch_mm=PITCH, grey=255)
    drawn = np.asarray(draw_defect(blank(), diameter_mm, defect, np.random.default_rng(0)), np.float64)
    radius_px = diameter_mm / PITCH / 2
    # anti-aliased: sub-pixel sizes are drawn as such, to within a few per cent of the area
    assert drawn.sum() / 255 == pytest.approx(math.pi * radius_px**2, rel=0.02)


def test_a_scratch_covers_length_times_width():
    defect = ReferenceDefect(kind="scratch", pixel_pitch_mm=PITCH, min_mm=0.25, max_mm=2.5, grey=255)
    for seed in range(3):  # several angles
        drawn = np.asarray(draw_defect(blank(), 2.0, defect, np.random.default_rng(seed)), np.float64)
        length_px, width_px = 2.0 / PITCH, defect.width_mm / PITCH
        assert drawn.sum() / 255 == pytest.approx(length_px * width_px, rel=0.12)


def test_the_defect_is_blended_in_grey_and_stays_inside():
    defect = ReferenceDefect(pixel_pitch_mm=PITCH, grey=128)
    drawn = np.asarray(draw_defect(blank(255), 1.5, defect, np.random.default_rng(1)))
    assert drawn.min() == 128 and (drawn == 255).any()
    assert (drawn[0] == 255).all() and (drawn[-1] == 255).all()  # wholly inside: edges untouched
    with pytest.raises(ValueError, match="fit"):
        draw_defect(blank(size=16), 1.5, defect, np.random.default_rng(0))


def test_bad_definitions_fail():
    with pytest.raises(ValueError, match="kind"):
        ReferenceDefect(kind="crack")
    with pytest.raises(ValueError, match="min_mm"):
        ReferenceDefect(min_mm=2.0, max_mm=1.0)
