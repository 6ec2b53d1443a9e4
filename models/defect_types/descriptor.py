"""What the defect-type classifier reads of a part: its type latent.

- ``peak`` (the default where the scorer gives anomaly maps): the patch features (the scorer's
  own ``Latents.maps``) averaged with weights from the part's anomaly map, the cube of each cell's
  excess over the map's mean. The descriptor follows the defect wherever it sits, and the good
  surface around it, which says nothing of the type, is left out; the cube keeps the weight on
  the defect's own cells rather than on the fringe around it.
- ``anomaly``: the same with the excess itself as the weight (bundles fitted before ``peak``).
- ``cells``: the ``cells`` hottest cells' patch features and excesses, unpooled, for the learned
  head that pools them (models/defect_types/patch_head.py, ``fit --classifier patch-head``).
- ``tuned``: ``peak`` followed by a fine-tuned network's embedding of the window around the
  defect (``fit --fine-tune``; models/defect_types/tuned.py). The network is the bundle's, so
  ``Inspector.type_latents`` makes it, not ``describe``.
- ``centre``: the centre view (``Latents.centre``, the middle half of each encoder layer),
  for scorers without maps and for bundles fitted before the anomaly view existed. It assumes
  the camera framed the defect in the middle.

Why the cube of the excess, and what else was tried: docs/studies.md (the type descriptor).

>>> maps = np.zeros((1, 2, 3, 3), np.float32); maps[0, :, 0, 2] = (4.0, 8.0)
>>> hot = np.zeros((1, 3, 3)); hot[0, 0, 2] = 1.0
>>> anomaly_weighted(maps, hot).tolist()  # the features of the one anomalous cell
[[4.0, 8.0]]
>>> [round(float(v), 3) for v in anomaly_weighted(maps, np.zeros((1, 3, 3)))[0]]  # a flat map: the mean
[0.444, 0.889]
"""

import numpy as np

from latentline.models.defect_types.type_network import EMBEDDING_DIMENSIONS
from latentline.models.latents import Latents, host

# descriptor -> the power of the anomaly map's excess its weights use (None: no map)
DESCRIPTORS = {"peak": 3, "anomaly": 1, "cells": 3, "tuned": 3, "centre": None}
HOT_CELLS = 64  # cells of a part the ``cells`` type latent keeps (a defect on deeppcb covers fewer)


def needs_anomaly_maps(kind: str) -> bool:
    return DESCRIPTORS.get(kind) is not None


def describe(kind: str, latents: Latents, anomaly_maps: np.ndarray | None) -> np.ndarray:
    """[N, dim] type latents of ``latents``; ``anomaly_maps`` [N, h, w] (raw or normalised: only
    their shape within each image counts) are needed for ``peak`` and ``anomaly``."""
    if kind not in DESCRIPTORS:
        raise ValueError(f"unknown descriptor {kind!r}: one of {', '.join(DESCRIPTORS)}")
    if not needs_anomaly_maps(kind):
        return latents.centre
    if latents.maps is None or anomaly_maps is None:
        raise ValueError(f"the {kind} descriptor needs the patch features and the anomaly maps")
    if kind == "cells":
        return hot_cells(host(latents.maps), anomaly_maps)
    if kind == "tuned":
        raise ValueError("the tuned descriptor needs the bundle's type network: Inspector.type_latents")
    return anomaly_weighted(host(latents.maps), anomaly_maps, DESCRIPTORS[kind])


def hot_cells(maps: np.ndarray, anomaly_maps: np.ndarray, cells: int = HOT_CELLS) -> np.ndarray:
    """The ``cells`` type latent (models/defect_types/patch_head.py reads it): the patch features
    of each part's ``cells`` cells of highest excess over its map's mean, then those excesses,
    flattened to [N, cells * channels + cells]."""
    n, channels, h, w = maps.shape
    excess = excess_of(anomaly_maps)
    features = maps.reshape(n, channels, h * w).transpose(0, 2, 1)
    if h * w < cells:  # a map smaller than the latent: cells of no excess fill it up
        features = np.pad(features, ((0, 0), (0, cells - h * w), (0, 0)))
        excess = np.pad(excess, ((0, 0), (0, cells - h * w)))
    hottest = np.argsort(-excess, axis=1, kind="stable")[:, :cells]
    features = np.take_along_axis(features, hottest[:, :, None], 1).reshape(n, -1)
    return np.concatenate([features, np.take_along_axis(excess, hottest, 1)], axis=1).astype(np.float32)


def split_cells(latents: np.ndarray, cells: int = HOT_CELLS) -> tuple[np.ndarray, np.ndarray]:
    """``hot_cells``' layout back: [N, cells, channels] features and [N, cells] excesses."""
    latents = np.asarray(latents, np.float32)
    channels, rest = divmod(latents.shape[1] - cells, cells)
    if rest or channels < 1:
        raise ValueError(f"a {latents.shape[1]}-long latent is not {cells} cells and their excesses")
    features = latents[:, : cells * channels].reshape(len(latents), cells, channels)
    return features, latents[:, cells * channels :]


def pooled(kind: str, type_latents: np.ndarray) -> np.ndarray:
    """One vector per part whatever the kind: ``cells`` pooled as ``peak`` pools (over the hot
    cells only), ``tuned``'s ``peak`` part, the other kinds as they are. What novelty clusters
    (models/online)."""
    if kind == "tuned":
        return split_tuned(type_latents)[0]
    if kind != "cells":
        return type_latents
    features, excess = split_cells(type_latents)
    weights = pooling_weights(excess, DESCRIPTORS["peak"]).astype(np.float32)
    return np.einsum("nkc,nk->nc", features, weights).astype(np.float32)


def split_tuned(latents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A ``tuned`` type latent's two parts: the frozen ``peak`` descriptor, the tuned embedding."""
    latents = np.asarray(latents, np.float32)
    return latents[:, :-EMBEDDING_DIMENSIONS], latents[:, -EMBEDDING_DIMENSIONS:]


def anomaly_weighted(maps: np.ndarray, anomaly_maps: np.ndarray, power: float = 1.0) -> np.ndarray:
    """[N, C, h, w] patch features pooled with weights from [N, h, w] anomaly maps: each cell's
    excess over its map's mean, to ``power`` (a flat map, with no excess anywhere, weighs every
    cell alike)."""
    n, channels = maps.shape[:2]
    weights = pooling_weights(excess_of(anomaly_maps), power).astype(np.float32)
    return np.einsum("ncp,np->nc", maps.reshape(n, channels, -1), weights).astype(np.float32)


def excess_of(anomaly_maps: np.ndarray) -> np.ndarray:
    """[N, h * w]: each cell's excess over its map's mean, 0 below it."""
    excess = np.maximum(anomaly_maps - anomaly_maps.mean(axis=(1, 2), keepdims=True), 0.0)
    return excess.reshape(len(anomaly_maps), -1)


def pooling_weights(excess: np.ndarray, power: float) -> np.ndarray:
    """[N, cells] weights summing to 1 per part: the excess to ``power`` (a part with no excess
    anywhere weighs every cell alike)."""
    weights = excess**power
    weights = np.where(weights.sum(axis=1, keepdims=True) <= 0, 1.0, weights)
    return weights / weights.sum(axis=1, keepdims=True)
