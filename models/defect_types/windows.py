"""The window around a part's defect that the fine-tuned type network reads
(models/defect_types/type_network.py).

One tile of the encoder's input (``image_size`` pixels square) centred on the anomaly map's
highest cell, shifted inside the image where the peak is near an edge: on a one-tile bundle the
whole image, on a tiled one (off-centre mosaics, line-scan strips) the defect's neighbourhood at
the resolution the scorer saw it. A fixed window rather than one cut to the defect's extent,
so that its scale says how big the defect is, as it does for the frozen descriptor.

>>> pixels = np.zeros((1, 60, 90, 3), np.uint8); pixels[0, 20:40, 60:90] = 255
>>> maps = np.zeros((1, 6, 9)); maps[0, 3, 8] = 1.0  # the peak at the right edge
>>> window = defect_windows(pixels, maps, tile=30, size=30)
>>> window.shape, int(window[0, 10:20, 10:30].min())  # the bright area, shifted inside
((1, 30, 30, 3), 255)
"""

import numpy as np
from PIL import Image


def defect_windows(pixels: np.ndarray, anomaly_maps: np.ndarray, tile: int, size: int) -> np.ndarray:
    """uint8 [N, size, size, 3]: for each of ``pixels`` [N, H, W, 3] a ``tile``-pixel square
    around the highest cell of its anomaly map [N, h, w], resized to ``size``."""
    windows = [_window(image, anomaly_map, tile, size) for image, anomaly_map in zip(pixels, anomaly_maps)]
    return np.stack(windows) if windows else np.zeros((0, size, size, 3), np.uint8)


def _window(image: np.ndarray, anomaly_map: np.ndarray, tile: int, size: int) -> np.ndarray:
    height, width = image.shape[:2]
    row, column = np.unravel_index(int(np.argmax(anomaly_map)), anomaly_map.shape)
    centre_y = (row + 0.5) * height / anomaly_map.shape[0]
    centre_x = (column + 0.5) * width / anomaly_map.shape[1]
    side_y, side_x = min(tile, height), min(tile, width)
    top = int(np.clip(round(centre_y - side_y / 2), 0, height - side_y))
    left = int(np.clip(round(centre_x - side_x / 2), 0, width - side_x))
    crop = Image.fromarray(image[top : top + side_y, left : left + side_x])
    return np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)
