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

Measured with one view per labelled example (``fit --views 1``; docs/defect-types.md has the
default's figures), anomaly-weighted against the centre view:

| set | accuracy | review rate | new-type recall |
|---|---|---|---|
| deeppcb-patches (defects centred) | 0.80 vs 0.71 | 0.39 vs 0.83 | 0.77 vs 0.92 |

The weight's power, measured with 4 views per labelled example, the classifier refitted on
cached descriptors of the same encodings (one run; deeppcb-patches with spur held out, and the
3x3 off-centre mosaics of ``latentline make-hard-cases``, docs/images.md):

| power | deeppcb: accuracy / auto accuracy / review / new-type recall | mosaics: the same |
|---|---|---|
| 1 (``anomaly``) | 0.855 / 0.946 / 0.259 / 0.633 | 0.603 / 0.910 / 0.777 / 0.917 |
| 2 | 0.857 / 0.958 / 0.296 / 0.700 | 0.693 / 0.943 / 0.767 / 0.900 |
| 3 (``peak``) | 0.845 / 0.960 / 0.308 / 0.687 | 0.710 / 0.977 / 0.710 / 0.917 |
| 4 | 0.852 / 0.949 / 0.289 / 0.627 | 0.720 / 0.988 / 0.733 / 0.950 |
| 6 | 0.845 / 0.937 / 0.276 / 0.567 | 0.703 / 0.966 / 0.710 / 0.933 |

Powers 2 to 4 beat 1 on both sets; 3 is the best balance of the two (on the mosaics, where the
defect is off-centre, it gains 0.11 accuracy and 0.07 auto accuracy and sends 7 % fewer parts
to review). Pooling the residuals to the nearest good patch instead, or beside the features,
raised new-type recall (0.93 on deeppcb) at twice the review rate (0.53); a softmax over the
map, a median baseline and the top 2 % of cells were within the noise of powers 2-3 or worse.

Pooling all three encoder layers (1,408 dimensions, the deepest with 1,280 ImageNet-class
channels) with the same weights did worse than either (0.58 accuracy): the mid-level patch
features hold what tells one defect from another.

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
