"""The FAISS indexes behind ``faiss-flat``, ``faiss-ivf`` and ``faiss-hnsw`` (models/scoring/search.py).

Imported only when a bundle asks for one: FAISS is an optional dependency (``pip install
faiss-cpu``; a CUDA build's GPU indexes are used for the flat and IVF kinds when a GPU is the
inference device). Builds are deterministic: FAISS's k-means has a fixed seed and HNSW inserts in
bank order, so two workers loading one bundle search the same index.
"""

from typing import Self

import faiss
import numpy as np
import torch


class FaissSearch:
    """``kind``: flat (exact), ivf (``nlist`` cells, ``nprobe`` searched) or hnsw (``hnsw_m``
    links per node, ``ef_search`` candidates per query).

    ``ef_search`` 32: on deeppcb-patches' bundle (9,408 bank rows, 50,176 real test patches,
    one run) it found 99.97 % of the exact neighbours at 1.8x the queries per second of 64
    (99.996 %); 16 fell to 99.79 % (docs/speed.md)."""

    def __init__(self, kind: str = "hnsw", nlist: int = 64, nprobe: int = 8, hnsw_m: int = 32,
                 ef_search: int = 32, ef_construction: int = 80):
        if kind not in ("flat", "ivf", "hnsw"):
            raise ValueError(f"unknown FAISS index kind {kind!r}")
        self.name = f"faiss-{kind}"
        self.kind, self.nlist, self.nprobe = kind, nlist, nprobe
        self.hnsw_m, self.ef_search, self.ef_construction = hnsw_m, ef_search, ef_construction

    def fit(self, bank: np.ndarray) -> Self:
        bank = np.ascontiguousarray(bank, np.float32)
        self._index = self._build(bank)
        self._index.add(bank)
        return self

    def _build(self, bank: np.ndarray):
        dim = bank.shape[1]
        if self.kind == "flat":
            return faiss.IndexFlatL2(dim)
        if self.kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, self.hnsw_m)
            index.hnsw.efConstruction, index.hnsw.efSearch = self.ef_construction, self.ef_search
            return index
        nlist = max(1, min(self.nlist, len(bank) // 39))  # FAISS wants ~39 points per centroid
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, nlist)
        index.train(bank)
        index.nprobe = min(self.nprobe, nlist)
        return index

    def to(self, device: torch.device | str) -> Self:
        device = torch.device(device)
        if device.type == "cuda" and self.kind != "hnsw" and hasattr(faiss, "index_cpu_to_gpu"):
            self._index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), device.index or 0, self._index)
        return self

    def search(self, queries: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(queries, torch.Tensor):
            queries = queries.detach().cpu().numpy()
        squared, rows = self._index.search(np.ascontiguousarray(queries, np.float32), 1)
        return np.sqrt(np.maximum(squared[:, 0], 0)), rows[:, 0].astype(np.int64)
