"""A small learned head on the defect's hottest patches: the supervised step, as a ``fit`` option.

After the supervised fine-tuning step of "Investigating the Potential of Latent Space for the
Classification of Paint Defects" (Almhaithawi, Bellini, Chasparis and Cerquitelli, 2025), which
refines a pretrained latent space on the labelled defects (92.3 % accuracy, 11 % to review), done
here as a head on the frozen encoder rather than a retrained backbone, and with the pooling of
attention-based multiple-instance learning ("Attention-based Deep Multiple Instance Learning",
Ilse, Tomczak and Welling, 2018): each of the part's ``cells`` most anomalous patches (the
``cells`` type latent, models/defect_types/descriptor.py) goes through a two-layer network, and
the results are averaged with weights that add the cell's anomaly excess (to ``power``, as the
``peak`` descriptor weighs) to a learned attention score. The anomaly map says where the defect
probably is; the attention learns which of those cells tell its type, and can find a small
defect whose cells are not the map's hottest. The network is fitted on the labelled examples
(every view) with a class-balanced cross-entropy; ``embed`` gives the pooled vector, where the
open-set step measures its distances.

It costs a training per calibration fold and one on everything, and another whenever operators'
labels change the examples; what it measured against the default: docs/studies.md (the patch
head).

torch is imported where the network runs, so reading a bundle does not load it.
"""

from typing import Self

import numpy as np

from latentline.models.defect_types.descriptor import HOT_CELLS, split_cells


class PatchHeadClassifier:
    """``cells``: hot cells per type latent (the descriptor's); ``hidden``: width of the per-cell
    network and of the pooled vector; ``power``: of the anomaly excess in the pooling weights;
    ``attention``: learn a score per cell on top of them; ``epochs``, ``weight_decay``,
    ``learning_rate``, ``seed``: the training."""

    name = "patch-head"

    def __init__(self, cells: int = HOT_CELLS, hidden: int = 128, power: float = 3.0, attention: bool = True,
                 epochs: int = 150, weight_decay: float = 1e-2, learning_rate: float = 3e-3, seed: int = 0):
        self.cells = cells
        self.hidden = hidden
        self.power = power
        self.attention = attention
        self.epochs = epochs
        self.weight_decay = weight_decay
        self.learning_rate = learning_rate
        self.seed = seed

    def get_params(self) -> dict:
        return {"cells": self.cells, "hidden": self.hidden, "power": self.power, "attention": self.attention,
                "epochs": self.epochs, "weight_decay": self.weight_decay,
                "learning_rate": self.learning_rate, "seed": self.seed}

    def fit(self, vectors: np.ndarray, labels: np.ndarray) -> Self:
        import torch

        labels = np.asarray(labels).astype(str)
        self.classes_ = np.unique(labels)
        if len(self.classes_) < 2:
            raise ValueError(f"need at least two defect types, got {list(self.classes_)}")
        features, weights = split_cells(vectors, self.cells)
        flat = features.reshape(-1, features.shape[-1])
        self.mean_, self.scale_ = flat.mean(axis=0), flat.std(axis=0) + 1e-6
        torch.manual_seed(self.seed)
        self._net = _network(features.shape[-1], self.hidden, len(self.classes_), self.attention)
        self._train(*self._tensors(features, weights), np.searchsorted(self.classes_, labels))
        return self

    def _train(self, features, log_weights, targets: np.ndarray) -> None:
        import torch

        targets = torch.as_tensor(targets)
        counts = torch.bincount(targets, minlength=len(self.classes_)).float()
        balance = counts.sum() / (counts.clamp_min(1) * len(counts))  # every type heard alike
        optimiser = torch.optim.AdamW(self._net.parameters(), lr=self.learning_rate,
                                      weight_decay=self.weight_decay)
        generator = torch.Generator().manual_seed(self.seed)
        self._net.train()
        for _ in range(self.epochs):
            order = torch.randperm(len(targets), generator=generator)
            for start in range(0, len(targets), 256):
                batch = order[start : start + 256]
                optimiser.zero_grad()
                logits = self._net(features[batch], log_weights[batch])
                loss = torch.nn.functional.cross_entropy(logits, targets[batch], weight=balance,
                                                         label_smoothing=0.1)
                loss.backward()
                optimiser.step()
        self._net.eval()

    def _tensors(self, features: np.ndarray, weights: np.ndarray):
        import torch

        standard = (features - self.mean_) / self.scale_
        log_weights = self.power * np.log(np.maximum(weights, 1e-8))
        return (torch.as_tensor(standard, dtype=torch.float32),
                torch.as_tensor(log_weights, dtype=torch.float32))

    def _inputs(self, vectors: np.ndarray):
        """Type latents (``cells``) as the network's standardised features and log weights."""
        return self._tensors(*split_cells(vectors, self.cells))

    def predict_proba(self, vectors: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            logits = self._net(*self._inputs(vectors))
            return torch.softmax(logits.double(), dim=1).numpy()

    def embed(self, vectors: np.ndarray) -> np.ndarray:
        """[N, hidden] unit vectors: the pooled cells, what distances are measured in."""
        import torch

        with torch.inference_mode():
            pooled = self._net.pool(*self._inputs(vectors))
            return torch.nn.functional.normalize(pooled, dim=1).numpy()

    def to_arrays(self) -> dict[str, np.ndarray]:
        state = {f"net_{k}": v.detach().numpy() for k, v in self._net.state_dict().items()}
        return {"classes": self.classes_, "mean": self.mean_, "scale": self.scale_} | state

    @classmethod
    def from_arrays(cls, params: dict, arrays: dict[str, np.ndarray]) -> Self:
        import torch

        head = cls(**params)
        head.classes_ = arrays["classes"].astype(str)
        head.mean_, head.scale_ = arrays["mean"], arrays["scale"]
        head._net = _network(len(head.mean_), head.hidden, len(head.classes_), head.attention)
        head._net.load_state_dict({k.removeprefix("net_"): torch.as_tensor(v) for k, v in arrays.items()
                                   if k.startswith("net_")})
        head._net.eval()
        return head


def _network(channels: int, hidden: int, n_classes: int, attention: bool):
    import torch

    class CellHead(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = torch.nn.Sequential(torch.nn.Linear(channels, hidden), torch.nn.ReLU(),
                                            torch.nn.Linear(hidden, hidden))
            self.attend = torch.nn.Linear(hidden, 1) if attention else None
            self.out = torch.nn.Linear(hidden, n_classes)

        def pool(self, features, log_weights):
            cells = self.cell(features)
            if self.attend is not None:
                log_weights = log_weights + self.attend(torch.tanh(cells)).squeeze(-1)
            return (torch.softmax(log_weights, dim=1)[..., None] * cells).sum(dim=1)

        def forward(self, features, log_weights):
            return self.out(self.pool(features, log_weights))

    return CellHead()
