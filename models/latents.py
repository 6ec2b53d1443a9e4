"""The record every stage passes on: what one forward pass of the encoder yields for a batch.

Plain arrays, no torch: scorers, detectors and classifiers read it without loading the encoder.
One exception: on a GPU the Inspector leaves ``maps`` and ``trunk`` on the device for the
stages that compute there (the scorer's search, the type network), so a batch's feature maps
never cross to the host; ``host`` brings any part back.

>>> import numpy as np
>>> batch = Latents(np.zeros((3, 4)), np.ones((3, 4)))
>>> len(batch), batch.take([0, 2]).centre.shape
(3, (2, 4))
>>> len(Latents.concat([batch, batch])), Latents.concat([batch, batch]).maps is None
(6, True)
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Latents:
    """Two pooled views, ``full`` for anomaly scoring and drift, ``centre`` for naming the defect
    type; and, when a scorer asks for them, the spatial feature ``maps`` (localising scorers) and
    the input ``pixels`` (autoencoders); for a fine-tuned type network, the ``trunk``: the map of
    the encoder layer its tuned blocks start from (models/defect_types/type_network.py)."""

    full: np.ndarray  # [N, dim]
    centre: np.ndarray  # [N, dim]
    maps: np.ndarray | None = None  # [N, channels, h, w] float32, neighbourhood-averaged patches
    pixels: np.ndarray | None = None  # [N, H, W, 3] uint8, as ``PooledEncoder.prepare`` made them
    trunk: np.ndarray | None = None  # [N, channels, H / 8, W / 8] float32, the whole map

    def __len__(self) -> int:
        return len(self.full)

    def take(self, index) -> "Latents":
        return Latents(*(None if part is None else part[index] for part in self._parts()))

    def _parts(self) -> tuple:
        return self.full, self.centre, self.maps, self.pixels, self.trunk

    @classmethod
    def concat(cls, parts: list["Latents"]) -> "Latents":
        if not parts:
            return cls(np.empty((0, 0), np.float32), np.empty((0, 0), np.float32))
        columns = zip(*(p._parts() for p in parts))
        return cls(*(None if column[0] is None else np.concatenate(column) for column in columns))


def host(array) -> np.ndarray:
    """A numpy array of ``array``, copied from the device if it is a tensor there (duck-typed:
    this module does not import torch)."""
    if hasattr(array, "detach"):
        return array.detach().cpu().numpy()
    return array
