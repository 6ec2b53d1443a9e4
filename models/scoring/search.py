"""Nearest good patch: the search PatchCore runs once per batch over its memory bank.

PatchCore (Roth et al., 2022) scores a patch by the distance to its nearest neighbour in the bank;
its reference implementation searches with FAISS (Johnson, Douze and Jégou, "Billion-scale
similarity search with GPUs", 2019). Every search here shares one small interface:
``fit(bank)`` once, ``to(device)`` once, then ``search(queries)`` -> (distances, indices) per
batch, float32 Euclidean distances and int64 bank rows.

* ``auto`` (the default): resolved per device by ``resolve_search``.
* ``exact``: brute force as one matrix product per block, |q - b|^2 = |q|^2 - 2 q.b + |b|^2, in
  torch on the inference device (the bank is moved there once). On a GPU the product runs in
  fp16 and the chosen neighbour's distance is recomputed in fp32, so scores keep fp32 accuracy.
* ``faiss-flat``: FAISS's exact flat index (its own BLAS path; on a GPU its GPU index where the
  GPU build is installed).
* ``faiss-ivf``: inverted lists over ``nlist`` k-means cells, ``nprobe`` of them searched:
  approximate, for large banks.
* ``faiss-hnsw``: a hierarchical navigable small-world graph (Malkov and Yashunin, 2018):
  approximate, the fastest on a CPU at high recall.

The index is rebuilt from the bank when a bundle loads (the bank is the record; an index is a
cache of it), deterministically. Measured figures and the default's choice: docs/speed.md.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> bank = rng.normal(size=(500, 16)).astype(np.float32)
>>> queries = bank[[3, 141]] + 0.01
>>> distances, rows = make_search("exact").fit(bank).search(queries)
>>> rows.tolist(), bool(distances.max() < 0.05)
([3, 141], True)
"""

import importlib.util
from typing import Protocol, Self

import numpy as np
import torch

SEARCHES = ("exact", "faiss-flat", "faiss-ivf", "faiss-hnsw")


class Search(Protocol):
    name: str

    def fit(self, bank: np.ndarray) -> Self: ...

    def to(self, device: torch.device | str) -> Self: ...

    def search(self, queries: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """[M] float32 distances to the nearest bank row and [M] int64 its index."""
        ...


def faiss_available() -> bool:
    return importlib.util.find_spec("faiss") is not None


def resolve_search(name: str, device: torch.device | str) -> str:
    """``auto``: the fastest search that keeps the exact one's accuracy on this device.

    Measured (docs/speed.md; 2-core CPU, 128-dim patches, one run): FAISS HNSW kept 0.997-1.0
    recall of the exact nearest patch and searched 1.9x (3,100-row bank), 4.1x (9,400) and 13.6x
    (31,000) faster than the exact torch search, whose time grows with the bank. On a GPU the
    exact search is one fp16 matrix product on the device, and HNSW has no GPU form.
    """
    if name != "auto":
        return name
    if torch.device(device).type == "cpu" and faiss_available():
        return "faiss-hnsw"
    return "exact"


def make_search(name: str, **params) -> Search:
    if name == "exact":
        return ExactSearch(**params)
    if name in ("faiss-flat", "faiss-ivf", "faiss-hnsw"):
        if not faiss_available():
            raise ValueError(f"search {name!r} needs FAISS: pip install faiss-cpu (or a GPU build)")
        from latentline.models.scoring.faiss_search import FaissSearch

        return FaissSearch(name.removeprefix("faiss-"), **params)
    raise ValueError(f"unknown search {name!r}: choose one of auto, {', '.join(SEARCHES)}")


class ExactSearch:
    """Brute force on the inference device; ``block_elements`` bounds the distance block held at
    once (2**24 floats: 64 MB)."""

    name = "exact"

    def __init__(self, block_elements: int = 2**24):
        self.block_elements = block_elements
        self.device = torch.device("cpu")

    def fit(self, bank: np.ndarray) -> Self:
        self._bank = torch.from_numpy(np.ascontiguousarray(bank, np.float32))  # shares the memory
        self._place()
        return self

    def to(self, device: torch.device | str) -> Self:
        self.device = torch.device(device)
        self._place()
        return self

    def _place(self) -> None:
        self._on_device = self._bank.to(self.device)
        # Tensor cores take fp16; a CPU without native half precision would emulate it (slower).
        self._product = self._on_device.half() if self.device.type == "cuda" else self._on_device
        self._norms = (self._on_device * self._on_device).sum(dim=1).to(self._product.dtype)

    @property
    def bank(self) -> torch.Tensor:
        """The bank on the device, fp32."""
        return self._on_device

    def search(self, queries: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        distances, rows = self.search_on_device(queries)
        return distances.cpu().numpy(), rows.cpu().numpy()

    @torch.inference_mode()
    def search_on_device(self, queries: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``search`` with the results left on the device, for callers that go on computing there."""
        q = torch.as_tensor(queries, dtype=torch.float32).to(self.device, non_blocking=True)
        rows = nearest(q.to(self._product.dtype), self._product, self._norms, self.block_elements)[1]
        # the chosen neighbour's distance in fp32, whatever precision chose it
        distances = (q - self._on_device[rows]).norm(dim=1)
        return distances, rows


def nearest(points: torch.Tensor, centres: torch.Tensor, centre_norms: torch.Tensor | None = None,
            block_elements: int = 2**24, point_norms: torch.Tensor | None = None,
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance of every point to its nearest centre and that centre's index, in blocks of at
    most ``block_elements`` distances to bound memory.

    |p - c|^2 = |p|^2 - 2 p.c + |c|^2 as one matrix product: several times faster than
    torch.cdist on a CPU. ``*_norms``: squared norms, when already known."""
    if point_norms is None:
        point_norms = (points * points).sum(dim=1)
    if centre_norms is None:
        centre_norms = (centres * centres).sum(dim=1)
    distances = torch.empty(len(points), device=points.device, dtype=points.dtype)
    indices = torch.empty(len(points), device=points.device, dtype=torch.long)
    chunk = max(1, block_elements // max(1, len(centres)))
    for start in range(0, len(points), chunk):
        squared = torch.addmm(centre_norms[None], points[start : start + chunk], centres.T, alpha=-2)
        squared += point_norms[start : start + chunk, None]
        low, at = squared.min(dim=1)
        distances[start : start + chunk], indices[start : start + chunk] = low.clamp_min(0).sqrt(), at
    return distances, indices
