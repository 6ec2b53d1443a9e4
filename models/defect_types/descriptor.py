"""What the defect-type classifier reads of a part: its type latent.

- ``anomaly`` (the default where the scorer gives anomaly maps): the patch features (the
  scorer's own ``Latents.maps``) averaged with weights from the part's anomaly map, each cell's
  excess over the map's mean. The descriptor follows the defect wherever it sits, and the good
  surface around it, which says nothing of the type, is left out.
- ``centre``: the centre view (``Latents.centre``, the middle half of each encoder layer),
  for scorers without maps and for bundles fitted before the anomaly view existed. It assumes
  the camera framed the defect in the middle.

Measured with one view per labelled example (``fit --views 1``; docs/defect-types.md has the
default's figures), anomaly-weighted against the centre view:

| set | accuracy | review rate | new-type recall |
|---|---|---|---|
| deeppcb-patches (defects centred) | 0.80 vs 0.71 | 0.39 vs 0.83 | 0.77 vs 0.92 |

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

from models.latents import Latents

DESCRIPTORS = ("anomaly", "centre")


def describe(kind: str, latents: Latents, anomaly_maps: np.ndarray | None) -> np.ndarray:
    """[N, dim] type latents of ``latents``; ``anomaly_maps`` [N, h, w] (raw or normalised: only
    their shape within each image counts) are needed for ``anomaly``."""
    if kind == "centre":
        return latents.centre
    if kind == "anomaly":
        if latents.maps is None or anomaly_maps is None:
            raise ValueError("the anomaly descriptor needs the patch features and the anomaly maps")
        return anomaly_weighted(latents.maps, anomaly_maps)
    raise ValueError(f"unknown descriptor {kind!r}: one of {', '.join(DESCRIPTORS)}")


def anomaly_weighted(maps: np.ndarray, anomaly_maps: np.ndarray) -> np.ndarray:
    """[N, C, h, w] patch features pooled with weights from [N, h, w] anomaly maps: each cell's
    excess over its map's mean (a flat map, with no excess anywhere, weighs every cell alike)."""
    excess = np.maximum(anomaly_maps - anomaly_maps.mean(axis=(1, 2), keepdims=True), 0.0)
    flat = excess.sum(axis=(1, 2), keepdims=True) <= 0
    weights = np.where(flat, 1.0, excess)
    weights = weights / weights.sum(axis=(1, 2), keepdims=True)
    return np.einsum("nchw,nhw->nc", maps, weights.astype(np.float32)).astype(np.float32)
