"""How often the bundle's nearest-neighbour search finds the exact nearest good patch.

PatchCore's default search on a CPU is approximate (FAISS HNSW, models/scoring/search.py). On
the test images' own patches, the share whose neighbour is the exact one (``search_recall``) and,
over the misses, the mean of found over exact distance (``search_miss_distance_ratio``: near 1.0
when a miss is nearly as close) say what the speed costs; image AUROC beside them says whether
it matters. Measured on
deeppcb-patches' bundle (docs/speed.md): recall 0.99998.
"""

import numpy as np

from latentline.models.latents import Latents
from latentline.models.scoring.base import patch_rows
from latentline.models.scoring.search import make_search


def search_recall(scorer, latents: Latents, max_queries: int = 20_000, seed: int = 0) -> dict:
    """{} for scorers without a searched bank, or latents without patch maps."""
    if not hasattr(scorer, "bank_") or latents.maps is None:
        return {}
    patches = patch_rows(latents.maps)
    if len(patches) > max_queries:
        patches = patches[np.random.default_rng(seed).choice(len(patches), max_queries, replace=False)]
    found_distances, found = scorer.index_.search(patches)
    exact_distances, exact = make_search("exact").fit(scorer.bank_).search(patches)
    missed = (found != exact) & (exact_distances > 0)
    ratio = found_distances[missed] / exact_distances[missed]
    return {"search": scorer.resolved_search,
            "search_recall": float((found == exact).mean()),
            "search_miss_distance_ratio": float(ratio.mean()) if missed.any() else None,
            "search_queries": int(len(patches))}
