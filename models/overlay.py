"""Anomaly-map overlays: what an operator sees next to the verdict.

Pure image work (Pillow and numpy, no matplotlib): the worker renders one PNG per anomalous
part in its I/O threads.
"""

import io

import numpy as np
from PIL import Image

# Cells below this normalised value stay transparent: a good part's map is mostly under it
# (the median good image scores 0.1), so colour means "looks like a defect".
VISIBLE_FROM = 0.3


def colourise(values: np.ndarray) -> np.ndarray:
    """[h, w] in [0, 1] -> [h, w, 3] uint8, blue -> green -> yellow -> red (a jet-like ramp
    without matplotlib)."""
    v = np.clip(values, 0.0, 1.0)[..., None]
    stops = np.array([[0, 0, 255], [0, 255, 0], [255, 255, 0], [255, 0, 0]], dtype=np.float64)
    position = v * (len(stops) - 1)
    low = np.clip(np.floor(position).astype(int), 0, len(stops) - 2)
    fraction = position - low
    return (stops[low[..., 0]] * (1 - fraction) + stops[low[..., 0] + 1] * fraction).astype(np.uint8)


def overlay(image: Image.Image, anomaly_map: np.ndarray, max_opacity: float = 0.6) -> Image.Image:
    """The image with ``anomaly_map`` (normalised, 0.5 = defect level) laid over it, stretched
    to the image's own size and aspect."""
    base = image.convert("RGB")
    grid = Image.fromarray(np.asarray(anomaly_map, dtype=np.float32), mode="F")
    values = np.asarray(grid.resize(base.size, Image.Resampling.BILINEAR))
    alpha = np.clip((values - VISIBLE_FROM) / (1 - VISIBLE_FROM), 0, 1) * max_opacity
    blended = np.asarray(base, np.float64) * (1 - alpha[..., None]) + colourise(values) * alpha[..., None]
    return Image.fromarray(blended.astype(np.uint8))


def overlay_png(image: Image.Image, anomaly_map: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    overlay(image, anomaly_map).save(buffer, format="PNG")
    return buffer.getvalue()
