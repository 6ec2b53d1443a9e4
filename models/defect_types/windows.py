"""The window around a part's defect that the fine-tuned type network reads
(models/defect_types/type_network.py).

One tile of the encoder's input (``image_size`` pixels square) around the defect, shifted inside
the image where the defect is near an edge: on a one-tile bundle the whole image, on a tiled one
(off-centre mosaics, line-scan strips) the defect's neighbourhood at the resolution the scorer
saw it. A fixed window rather than one cut to the defect's extent, so that its scale says how
big the defect is, as it does for the frozen descriptor.

Where it is centred (``centre``):

- ``centroid`` (the default since it was measured): the centroid of the anomaly map's excess
  over its mean within one tile around the map's highest cell. The hottest cell is one edge or
  corner of a defect as often as its middle; the centroid follows the defect's mass.
- ``peak``: the highest cell itself (bundles fitted before ``centroid``).

Measured on the 3x3 mosaics of deeppcb-patches (docs/images.md), whose defects sit at the centre
of their tile, with the anomaly maps of the default bundle's test run: the window's centre lies
a median 8.0 px (of a 64 px window) from the defect's with ``peak``, 4.8 px with ``centroid``;
more than 16 px for 18 % and 6 % of the 360 defects. A type network trained and tested on
windows placed with those offsets (one run each, 6 epochs, 8 views, windows cut from the
mosaics): test accuracy 0.863 with ``peak``, 0.883 with ``centroid``, 0.947 centred exactly on
the defect; AUROC of the tuned distance, the unseen type (spur) against the known ones, 0.803,
0.845 and 0.913. With the tuned path's whole calibration in the same study (five fold networks,
the review band, no witness), ``peak`` against ``centroid``: accuracy 0.857 / 0.900, automatic
labels right 0.967 / 0.987, review 0.500 / 0.470, unseen type kept out 0.800 / 0.900 (the study's
review runs higher than a whole fit's; only the comparison is read from it). A window with half
as much context again around the defect did worse (0.933 / 0.887 centred exactly).

>>> pixels = np.zeros((1, 60, 90, 3), np.uint8); pixels[0, 20:40, 60:90] = 255
>>> maps = np.zeros((1, 6, 9)); maps[0, 3, 8] = 1.0  # the peak at the right edge
>>> window = defect_windows(pixels, maps, tile=30, size=30)
>>> window.shape, int(window[0, 10:20, 10:30].min())  # the bright area, shifted inside
((1, 30, 30, 3), 255)
>>> blob = np.zeros((12, 12)); blob[4:7, 4:7] = 1.0; blob[4, 4] = 1.5  # hottest at a corner
>>> window_centre(blob, tile_cells=(6, 6), centre="peak")
(4.5, 4.5)
>>> [round(v, 2) for v in window_centre(blob, tile_cells=(6, 6), centre="centroid")]  # the middle
[5.44, 5.44]
"""

import numpy as np
from PIL import Image

CENTRES = ("centroid", "peak")


def defect_windows(pixels: np.ndarray, anomaly_maps: np.ndarray, tile: int, size: int,
                   centre: str = "centroid") -> np.ndarray:
    """uint8 [N, size, size, 3]: for each of ``pixels`` [N, H, W, 3] a ``tile``-pixel square
    around the defect its anomaly map [N, h, w] shows (``centre``), resized to ``size``."""
    windows = [_window(image, anomaly_map, tile, size, centre)
               for image, anomaly_map in zip(pixels, anomaly_maps)]
    return np.stack(windows) if windows else np.zeros((0, size, size, 3), np.uint8)


def window_centre(anomaly_map: np.ndarray, tile_cells: tuple[float, float],
                  centre: str) -> tuple[float, float]:
    """(row, column) of the window's centre in map cells (a cell's middle is at +0.5);
    ``tile_cells``: the window's side in cells, (rows, columns)."""
    if centre not in CENTRES:
        raise ValueError(f"unknown window centre {centre!r}: one of {', '.join(CENTRES)}")
    row, column = np.unravel_index(int(np.argmax(anomaly_map)), anomaly_map.shape)
    peak = float(row) + 0.5, float(column) + 0.5
    if centre == "peak":
        return peak
    rows, columns = np.mgrid[0 : anomaly_map.shape[0], 0 : anomaly_map.shape[1]] + 0.5
    near = (abs(rows - peak[0]) <= tile_cells[0] / 2) & (abs(columns - peak[1]) <= tile_cells[1] / 2)
    weight = np.maximum(anomaly_map - anomaly_map.mean(), 0.0) * near
    if weight.sum() <= 0:  # a flat map: no excess anywhere
        return peak
    return float((rows * weight).sum() / weight.sum()), float((columns * weight).sum() / weight.sum())


def _window(image: np.ndarray, anomaly_map: np.ndarray, tile: int, size: int, centre: str) -> np.ndarray:
    height, width = image.shape[:2]
    cells_y, cells_x = anomaly_map.shape[0] / height, anomaly_map.shape[1] / width
    row, column = window_centre(anomaly_map, (tile * cells_y, tile * cells_x), centre)
    centre_y, centre_x = row / cells_y, column / cells_x
    side_y, side_x = min(tile, height), min(tile, width)
    top = int(np.clip(round(centre_y - side_y / 2), 0, height - side_y))
    left = int(np.clip(round(centre_x - side_x / 2), 0, width - side_x))
    crop = Image.fromarray(image[top : top + side_y, left : left + side_x])
    return np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)
