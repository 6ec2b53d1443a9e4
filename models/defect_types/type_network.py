"""Seed 002's supervised step: the encoder's later blocks fine-tuned on the labelled defects.

After "Investigating the Potential of Latent Space for the Classification of Paint Defects"
(Almhaithawi et al., 2025), who fine-tune the backbone on their labelled defects before naming
them. Here MobileNetV2's blocks 7-13 (stride 8 to 16, 96 channels out) are trained with a linear
head on windows around each labelled example's anomaly peak (models/defect_types/windows.py);
blocks 0-6 stay frozen, so their output is computed once and every epoch runs only the tuned
half, and each window's frozen features are moved by a few cells at random in every step (the
windows the product cuts are off the defect by a few pixels). The head is thrown away: the
pooled (the maximum over the map, ``POOLS``), unit-length output of the tuned blocks is the type
embedding that the open-set classifier reads (models/defect_types/tuned.py).

Measured before it was built (deeppcb-patches, 200 examples x 8 views at 224 px, 2-core CPU, one
run): accuracy on the 750 test defects 0.72, 0.88, 0.91, 0.95, 0.92, 0.93 after epochs 1-6,
against 0.79 for a linear probe on the same frozen blocks and 0.87 for the frozen ``peak``
descriptor; about 30 s per epoch. docs/defect-types.md has the product's figures.

A window's embedding is the mean over its flipped and turned copies (``views``, as many as each
labelled example was trained in), and the calibration judges held-out examples the same way
(``OpenSetClassifier(view_mean=True)``): review of known types 0.196 -> 0.161 on deeppcb-patches
and 0.433 -> 0.393 on the 3x3 mosaics; top-1 accuracy 0.923 -> 0.931 and 0.883 -> 0.857 (one
run each; docs/defect-types.md).

torch is imported where the network runs, so reading a bundle does not load it.
"""

from typing import Self

import numpy as np

from models.defect_types.windows import defect_windows
from models.deviation_space import unit_rows
from models.encoding.images import dihedral_views
from models.errors import UserInputError

TUNED_BLOCKS = (7, 14)  # features[7:14] of MobileNetV2: what is trained
EMBEDDING_DIMENSIONS = 96  # channels out of features[13]: the width of the type embedding
BACKBONE = "mobilenet_v2"
DEFAULT_EPOCHS = 6  # epochs 4-6 score alike above (0.95, 0.92, 0.93); the product's figures are at 6
# Windows embedded per pass (all their views together). On a GPU every pass is padded to it, so
# that the number of anomalous parts in a batch is never a new input shape, whose first pass a
# GPU pays for: a bench over 256 deeppcb images on an H200 ran 58-77 images/s on its first pass
# over them and 334-383 on the next ones (one run, before the padding; not re-measured since).
CHUNK = 16
# How the tuned blocks' map is pooled into the embedding, and how far training moves each window
# (``shift``, in cells of the frozen blocks' map: 3 is 24 of 224 input pixels). Measured with one
# network each (6 epochs, 8 views, logistic classifier) on windows cut from the 3x3 mosaics with
# the offsets the centroid leaves (models/defect_types/windows.py): test accuracy / AUROC of the
# tuned distance, unseen type (spur) against the known ones / of the top-class probability:
#   mean, no shift   0.900 / 0.822 / 0.781   0.910 / 0.849 / -      (two seeds)
#   mean, shift 3    0.930 / 0.857 / 0.811   0.923 / 0.858 / -
#   max, shift 3     0.933 / 0.870 / -       0.923 / 0.874 / 0.893
#   max, shift 6     0.947 / 0.848 / 0.899
# and on deeppcb-patches (whole patches, centred): mean, no shift 0.939 / 0.902 / 0.852; max,
# shift 3 0.972 / 0.934 / 0.950. With the tuned path's whole calibration on the mosaic windows
# (five fold networks, review band at the 0.8 quantile, no witness): accuracy 0.900 -> 0.940,
# automatic labels right 0.987 -> 0.996, known parts to review 0.470 -> 0.143, spur kept out
# 0.900 -> 0.717. A defect is a few strong responses in a map of good surface: the maximum keeps
# them wherever the window placed them, the mean dilutes them with whatever else the window holds
# (a neighbouring tile, a seam); and the probabilities become a second test of novelty.
POOLS = ("max", "mean")


class TypeNetwork:
    """``epochs``, ``learning_rate`` (tuned blocks; the head takes 10x), ``weight_decay``,
    ``batch_size``, ``label_smoothing``, ``seed``: the training; ``input_size``: the side the
    windows are resized to; ``views``: flipped and turned copies of a window whose embeddings are
    averaged (models/encoding/images.DIHEDRAL, 1: the window alone); ``centre``: where a window
    is centred on the anomaly map (models/defect_types/windows.py); ``pool``: how the tuned
    blocks' map becomes the embedding (``POOLS``); ``shift``: in training, each window's frozen
    features moved by up to this many cells (8 input pixels each) in each direction, so that a
    window placed off the defect embeds as a centred one does; ``weights``: the backbone's (the
    bundle encoder's), for the frozen blocks and the tuned blocks' start."""

    def __init__(self, epochs: int = DEFAULT_EPOCHS, learning_rate: float = 3e-4, weight_decay: float = 1e-4,
                 batch_size: int = 32, label_smoothing: float = 0.1, input_size: int = 224,
                 weights: str | None = "IMAGENET1K_V1", seed: int = 0, views: int = 8,
                 centre: str = "centroid", pool: str = "max", shift: int = 3):
        if pool not in POOLS:
            raise ValueError(f"unknown pooling {pool!r}: one of {', '.join(POOLS)}")
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.label_smoothing = label_smoothing
        self.input_size = input_size
        self.weights = weights
        self.seed = seed
        self.views = views
        self.centre = centre
        self.pool = pool
        self.shift = shift
        self.device = "cpu"  # where it trains and runs (``to``): not a hyperparameter, not saved

    def get_params(self) -> dict:
        return {"epochs": self.epochs, "learning_rate": self.learning_rate, "weight_decay": self.weight_decay,
                "batch_size": self.batch_size, "label_smoothing": self.label_smoothing,
                "input_size": self.input_size, "weights": self.weights, "seed": self.seed,
                "views": self.views, "centre": self.centre, "pool": self.pool, "shift": self.shift}

    def to(self, device) -> Self:
        """Train and run on ``device`` (the encoder's: a GPU where there is one)."""
        self.device = str(device)
        for blocks in (getattr(self, "_frozen", None), getattr(self, "_tuned", None)):
            if blocks is not None:
                blocks.to(self.device)
        return self

    def windows(self, pixels: np.ndarray, anomaly_maps: np.ndarray, tile: int) -> np.ndarray:
        """What this network reads of parts [N, H, W, 3] with anomaly maps [N, h, w]: a
        ``tile``-pixel window around each defect, centred as in its training, at its input size."""
        return defect_windows(pixels, anomaly_maps, tile, self.input_size, self.centre)

    def trunk(self, windows: np.ndarray):
        """The frozen blocks' output for uint8 [N, input_size, input_size, 3] windows: what
        ``fit_trunk`` and ``embed_trunk`` read, computed once for many fits."""
        import torch

        frozen = self._frozen_blocks()
        with torch.inference_mode():
            parts = [frozen(_normalised(windows[i : i + 64], self.device))
                     for i in range(0, len(windows), 64)]
        return torch.cat(parts) if parts else torch.zeros(0, 32, 1, 1, device=self.device)

    def fit(self, windows: np.ndarray, labels: np.ndarray) -> Self:
        return self.fit_trunk(self.trunk(windows), labels)

    def embed(self, windows: np.ndarray) -> np.ndarray:
        """[N, EMBEDDING_DIMENSIONS] unit vectors: the tuned blocks' pooled output, averaged over
        ``views`` flipped and turned copies of each window."""
        if len(windows) == 0:
            return np.zeros((0, EMBEDDING_DIMENSIONS), np.float32)
        parts = []
        for start in range(0, len(windows), CHUNK):  # every view of CHUNK windows in one pass
            chunk = windows[start : start + CHUNK]
            count = len(chunk)
            if self.device != "cpu":  # one input shape: a new one costs a GPU far more than the padding
                chunk = np.concatenate([chunk, np.zeros((CHUNK - count, *chunk.shape[1:]), chunk.dtype)])
            views = np.concatenate([dihedral_views(chunk, k) for k in range(self.views)])
            embedded = self.embed_trunk(self.trunk(views)).reshape(self.views, len(chunk), -1)
            parts.append(embedded[:, :count].sum(axis=0))
        return unit_rows(np.concatenate(parts)).astype(np.float32)

    def fit_trunk(self, features, labels: np.ndarray, desc: str | None = None,
                  steps: int | None = None) -> Self:
        """Train the tuned blocks and a linear head on the frozen blocks' ``features``, for
        ``steps`` optimiser steps (``steps_for`` their number by default); ``desc``: show the
        progress under that name."""
        import torch

        labels = np.asarray(labels).astype(str)
        classes = np.unique(labels)
        if len(classes) < 2:
            raise ValueError(f"need at least two defect types, got {list(classes)}")
        torch.manual_seed(self.seed)
        _, tuned = self._blocks()
        tuned = tuned.train()
        head = torch.nn.Linear(EMBEDDING_DIMENSIONS, len(classes)).to(self.device)
        targets = torch.as_tensor(np.searchsorted(classes, labels), device=self.device)
        steps = self.steps_for(len(labels)) if steps is None else steps
        self._train(tuned, head, features, targets, steps, desc)
        self._tuned = tuned.eval()
        return self

    def steps_for(self, rows: int) -> int:
        """Optimiser steps in ``epochs`` passes over ``rows`` examples (``_batches``' batches)."""
        return self.epochs * (rows // self.batch_size + (rows % self.batch_size >= 2))

    def _train(self, tuned, head, features, targets, steps: int, desc: str | None) -> None:
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
            logits = head(self._pooled(tuned(shifted(features[batch], self.shift, generator))))
            loss = F.cross_entropy(logits, targets[batch], weight=balance,
                                   label_smoothing=self.label_smoothing)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()

    def embed_trunk(self, features) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        with torch.inference_mode():
            parts = [self._pooled(self._tuned(features[i : i + 128])) for i in range(0, len(features), 128)]
            pooled = torch.cat(parts) if parts else torch.zeros(0, EMBEDDING_DIMENSIONS, device=self.device)
            return F.normalize(pooled, dim=1).cpu().numpy().astype(np.float32)

    def _pooled(self, maps):
        return maps.amax(dim=(2, 3)) if self.pool == "max" else maps.mean(dim=(2, 3))

    def _frozen_blocks(self):
        """The frozen blocks, built once from the backbone's weights (with the tuned blocks'
        starting weights): running a fitted network builds nothing more."""
        from models.encoding.encoder import load_backbone

        if getattr(self, "_frozen", None) is None:
            features = load_backbone(BACKBONE, self.weights).features
            self._frozen = features[: TUNED_BLOCKS[0]].eval().to(self.device)
            self._start = {k: v.clone() for k, v in features[slice(*TUNED_BLOCKS)].state_dict().items()}
        return self._frozen

    def _blocks(self):
        """(frozen blocks, a fresh copy of the blocks to tune at the backbone's weights)."""
        from models.encoding.encoder import load_backbone

        frozen = self._frozen_blocks()
        tuned = load_backbone(BACKBONE, None).features[slice(*TUNED_BLOCKS)]
        tuned.load_state_dict(self._start)
        return frozen, tuned.to(self.device)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {f"block.{k}": v.detach().cpu().numpy() for k, v in self._tuned.state_dict().items()}

    @classmethod
    def from_arrays(cls, params: dict, arrays: dict[str, np.ndarray]) -> Self:
        import torch

        # bundles saved before ``centroid`` and ``max`` were measured: the peak, the mean
        network = cls(**({"centre": "peak", "pool": "mean", "shift": 0} | params))
        _, tuned = network._blocks()
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


def _normalised(windows: np.ndarray, device: str = "cpu"):
    """The windows as the backbone's input on ``device``: moved there as bytes (a quarter of the
    float copy), converted there."""
    import torch

    from models.encoding.encoder import IMAGENET_MEAN, IMAGENET_STD

    x = torch.from_numpy(np.ascontiguousarray(windows)).to(device).permute(0, 3, 1, 2).float() / 255
    mean, std = (torch.tensor(v, device=device).view(1, 3, 1, 1) for v in (IMAGENET_MEAN, IMAGENET_STD))
    return (x - mean) / std
