"""Anomaly-map overlays (models/overlay.py): what an operator sees next to the verdict."""

import numpy as np
from PIL import Image

from latentline.models.overlay import VISIBLE_FROM, colourise, overlay, overlay_png


def test_overlay_keeps_the_image_where_the_map_is_low():
    image = Image.new("L", (40, 20), 100)
    anomaly_map = np.zeros((4, 4))
    anomaly_map[1:3, 1:3] = 1.0
    result = np.asarray(overlay(image, anomaly_map))
    assert result.shape == (20, 40, 3)
    assert (result[0, 0] == 100).all()  # below VISIBLE_FROM: untouched
    assert result[10, 20, 0] > 150  # red where the map is 1
    assert overlay_png(image, anomaly_map)[:8] == b"\x89PNG\r\n\x1a\n"


def test_colourise_ramps_from_blue_to_red():
    ramp = colourise(np.array([0.0, VISIBLE_FROM, 1.0]))
    np.testing.assert_array_equal(ramp[0], [0, 0, 255])
    np.testing.assert_array_equal(ramp[-1], [255, 0, 0])
