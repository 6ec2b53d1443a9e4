"""The encoder's later blocks fine-tuned on the labelled defects: the space defect types are named in.

After "Investigating the Potential of Latent Space for the Classification of Paint Defects"
(Almhaithawi et al., 2025), who fine-tune the backbone on their labelled defects before naming
them. Here MobileNetV2's blocks 7-13 (stride 8 to 16, 96 channels out) are trained with a linear
head on the window around each labelled example's defect, cut from the encoder's own output of
blocks 0-6 (the ``trunk``, models/defect_types/windows.py): those blocks stay frozen, so the
network reads what the encoder's single pass already computed, at fit and in the worker alike,
and every training step runs only the tuned half. In training each window is moved by a few
cells at random (``shift``), so that a window placed off the defect embeds as a centred one. The
head is thrown away: the pooled (the maximum over the map, ``POOLS``), unit-length output of the
tuned blocks is the type embedding that the open-set classifier reads
(models/defect_types/tuned.py). The figures it reaches are on the evaluation pages
(docs/defect-types.md).

>>> network = TypeNetwork(weights=None, cells=8)
>>> network.get_params()["cells"], network.trunk_layer
(8, 'features.6')

torch is imported where the network runs, so reading a bundle does not load it.
"""

import numpy as np

from latentline.models.errors import UserInputError

TUNED_BLOCKS = (7, 14)  # features[7:14] of MobileNetV2: what is trained
TRUNK_LAYER = "features.6"  # the frozen blocks' output, which the encoder hands over
TRUNK_CHANNELS = 32
EMBEDDING_DIMENSIONS = 96  # channels out of features[13]: the width of the type embedding
BACKBONE = "mobilenet_v2"
DEFAULT_EPOCHS = 3
# Windows embedded per pass. On a GPU every pass is padded to it, so that the number of anomalous
# parts in a batch is never a new input shape, whose first pass a GPU pays for.
CHUNK = 16
# How the tuned blocks' map is pooled into the embedding. A defect is a few strong responses in
# a map of good surface: the maximum keeps them wherever the window placed them, the mean dilutes
# them with whatever else the window holds (a neighbouring tile, a seam).
POOLS = ("max", "mean")


class TypeNetwork:
    """``epochs``, ``learning_rate`` (tuned blocks; the head takes 10x), ``weight_decay``,
    ``batch_size``, ``label_smoothing``, ``seed``: the training, ``epochs`` passes over the
    examples but at least ``min_steps`` optimiser steps (few examples, or few views of each, still
    train as long as the measured default); ``cells``: the side, in cells of
    the trunk map, that each window is resampled to (a tile of the encoder's input is
    ``image_size / 8`` cells: 40 at 320 px; fewer cells train and run faster);
    ``views``: flipped and turned copies of a window's trunk (models/defect_types/views.py) whose
    embeddings are averaged at inference (1: the window alone); ``centre``: where a window is
    centred on the anomaly map (models/defect_types/windows.py); ``pool``: how the tuned blocks'
    map becomes the embedding (``POOLS``); ``shift``: in training, each window moved by up to
    this many cells in each direction; ``weights``: the backbone's (the bundle encoder's), the
    tuned blocks' start.

    >>> import torch
    >>> network = TypeNetwork(weights=None, cells=8, epochs=1, batch_size=4)
    >>> windows = torch.randn(8, TRUNK_CHANNELS, 8, 8)
    >>> network.fit_trunk(windows, ["a", "b"] * 4).embed(windows).shape
    (8, 96)
    """

    trunk_layer = TRUNK_LAYER

    def __init__(self, epochs: int = DEFAULT_EPOCHS, learning_rate: float = 1e-3, weight_decay: float = 1e-4,
                 batch_size: int = 32, label_smoothing: float = 0.1, cells: int = 20,
                 weights: str | None = "IMAGENET1K_V1", seed: int = 0, views: int = 1,
                 centre: str = "centroid", pool: str = "max", shift: int = 3, min_steps: int = 150):
        if pool not in POOLS:
            raise ValueError(f"unknown pooling {pool!r}: one of {', '.join(POOLS)}")
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.label_smoothing = label_smoothing
        self.cells = cells
        self.weights = weights
        self.seed = seed
        self.views = views
        self.centre = centre
        self.pool = pool
        self.shift = shift
        self.min_steps = min_steps
        # where it trains and runs, at which precision (``to``): not hyperparameters, not saved
        self.device, self.precision = "cpu", "fp32"
        self._tuned = None

    def get_params(self) -> dict:
        return {"epochs": self.epochs, "learning_rate": self.learning_rate, "weight_decay": self.weight_decay,
                "batch_size": self.batch_size, "label_smoothing": self.label_smoothing,
                "cells": self.cells, "weights": self.weights, "seed": self.seed,
                "views": self.views, "centre": self.centre, "pool": self.pool, "shift": self.shift,
                "min_steps": self.min_steps}

    def to(self, device, precision: str = "fp32") -> "TypeNetwork":
        """Train and run on ``device`` (the encoder's: a GPU where there is one); embed at the
        encoder's ``precision``, which its trunk was computed at."""
        self.device, self.precision = str(device), precision
        if self._tuned is not None:
            self._tuned.to(self.device)
        return self

    def windows(self, trunk, anomaly_maps, tiles: tuple[int, int]):
        """[N, TRUNK_CHANNELS, cells, cells] what this network reads of parts whose trunk maps
        [N, C, H, W] and anomaly maps [N, h, w] are given: the tile around each defect, centred as
        in its training, on the trunk's device."""
        import torch

        from latentline.models.defect_types.windows import defect_windows

        return defect_windows(torch.as_tensor(trunk), anomaly_maps, tiles, self.cells, self.centre)

    def fit_trunk(self, windows, labels, desc: str | None = None, steps: int | None = None) -> "TypeNetwork":
        """Train the tuned blocks and a linear head on ``windows`` (``windows``' output), for
        ``steps`` optimiser steps (``steps_for`` their number by default); ``desc``: show the
        progress under that name."""
        import torch

        labels = np.asarray(labels).astype(str)
        classes = np.unique(labels)
        if len(classes) < 2:
            raise ValueError(f"need at least two defect types, got {list(classes)}")
        torch.manual_seed(self.seed)
        tuned = self._fresh_blocks().train()
        head = torch.nn.Linear(EMBEDDING_DIMENSIONS, len(classes)).to(self.device)
        targets = torch.as_tensor(np.searchsorted(classes, labels), device=self.device)
        steps = self.steps_for(len(labels)) if steps is None else steps
        self._train(tuned, head, windows.to(self.device).float(), targets, steps, desc)
        self._tuned = tuned.eval()
        return self

    def steps_for(self, rows: int) -> int:
        """Optimiser steps in ``epochs`` passes over ``rows`` examples (``_batches``' batches), at
        least ``min_steps``."""
        return max(self.min_steps, self.epochs * (rows // self.batch_size + (rows % self.batch_size >= 2)))

    def _train(self, tuned, head, windows, targets, steps: int, desc: str | None) -> None:
        import torch
        import torch.nn.functional as F
        from tqdm.auto import tqdm

        generator = torch.Generator().manual_seed(self.seed)
        counts = torch.bincount(targets).float()
        balance = counts.sum() / (counts.clamp_min(1) * len(counts))  # every type heard alike
        optimiser = torch.optim.AdamW(
            [{"params": tuned.parameters(), "lr": self.learning_rate},
             {"params": head.parameters(), "lr": 10 * self.learning_rate}], weight_decay=self.weight_decay)
        for batch in tqdm(_batches(len(targets), self.batch_size, steps, self.seed), total=steps, desc=desc,
                          unit="step", disable=desc is None):
            batch = batch.to(self.device)
            moved = shifted(windows[batch], self.shift, generator)
            logits = head(self._pooled(tuned(moved.contiguous(memory_format=torch.channels_last))))
            loss = F.cross_entropy(logits, targets[batch], weight=balance,
                                   label_smoothing=self.label_smoothing)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()

    def embed(self, windows) -> np.ndarray:
        """[N, EMBEDDING_DIMENSIONS] unit vectors of ``windows`` [N, C, cells, cells]: the tuned
        blocks' pooled output, averaged over ``views`` flipped and turned copies, in passes of
        CHUNK windows with all their views (padded to CHUNK off the CPU: one input shape)."""
        import torch

        if len(windows) == 0:
            return np.zeros((0, EMBEDDING_DIMENSIONS), np.float32)
        with torch.inference_mode():
            windows = windows.to(self.device)
            parts = [self._embed_chunk(windows[start : start + CHUNK])
                     for start in range(0, len(windows), CHUNK)]
            return torch.cat(parts).cpu().numpy()

    def warm_up(self) -> None:
        """One blank window through the tuned blocks: the first pass allocates (on a GPU, the
        one input shape of every later pass)."""
        import torch

        self.embed(torch.zeros(1, TRUNK_CHANNELS, self.cells, self.cells, device=self.device))

    def _embed_chunk(self, chunk):
        import torch
        import torch.nn.functional as F

        from latentline.models.defect_types.views import trunk_views
        from latentline.models.encoding.device import autocast

        count = len(chunk)
        if self.device != "cpu":
            chunk = F.pad(chunk, (0, 0, 0, 0, 0, 0, 0, CHUNK - count))
        views = trunk_views(chunk, self.views).contiguous(memory_format=torch.channels_last)
        with autocast(torch.device(self.device), self.precision):
            pooled = self._pooled(self._tuned(views)).float()
        embedded = F.normalize(pooled, dim=1).reshape(self.views, len(chunk), -1)[:, :count].sum(dim=0)
        return F.normalize(embedded, dim=1)

    def _pooled(self, maps):
        return maps.amax(dim=(2, 3)) if self.pool == "max" else maps.mean(dim=(2, 3))

    def _fresh_blocks(self):
        """The blocks to tune, at the backbone's weights, on this network's device."""
        import torch

        from latentline.models.encoding.encoder import load_backbone

        blocks = load_backbone(BACKBONE, self.weights).features[slice(*TUNED_BLOCKS)]
        return blocks.to(self.device, memory_format=torch.channels_last)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {f"block.{k}": v.detach().cpu().numpy() for k, v in self._tuned.state_dict().items()}

    @classmethod
    def from_arrays(cls, params: dict, arrays: dict[str, np.ndarray]) -> "TypeNetwork":
        import torch

        if "cells" not in params:
            raise UserInputError("this bundle's type network reads re-encoded pixel windows, which this "
                                 "version no longer computes: refit it with latentline fit")
        network = cls(**params)
        tuned = cls(**(params | {"weights": None}))._fresh_blocks()
        tuned.load_state_dict({k.removeprefix("block."): torch.from_numpy(np.array(v))
                               for k, v in arrays.items() if k.startswith("block.")})
        network._tuned = tuned.eval()
        return network


def check_backbone(backbone: str) -> None:
    if backbone != BACKBONE:
        raise UserInputError(f"fine-tuning is built for {BACKBONE}'s blocks, not {backbone}'s")


def _batches(rows: int, size: int, steps: int, seed: int):
    """``steps`` batches of row indices, epoch after shuffled epoch; the last batch of an epoch
    is dropped when it holds one row (batch norm needs two). The order is drawn on the host, so
    it is the same on any device."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    done = 0
    while done < steps:
        order = torch.randperm(rows, generator=generator)
        for start in range(0, rows, size):
            batch = order[start : start + size]
            if len(batch) < 2:
                continue
            yield batch
            done += 1
            if done == steps:
                return


def shifted(features, cells: int, generator):
    """Each of ``features`` [N, C, H, W] moved by a random whole number of cells, up to ``cells``
    in each direction, its edges repeated into the space left behind."""
    import torch
    import torch.nn.functional as F

    if cells == 0:
        return features
    padded = F.pad(features, (cells, cells, cells, cells), mode="replicate")
    height, width = features.shape[2:]
    offsets = torch.randint(0, 2 * cells + 1, (len(features), 2), generator=generator).tolist()
    return torch.stack([padded[i, :, dy : dy + height, dx : dx + width]
                        for i, (dy, dx) in enumerate(offsets)])
