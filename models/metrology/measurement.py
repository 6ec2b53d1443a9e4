"""Which latent a quantity is measured in, and the measurements of a batch (the runtime side;
models/training/calibrate.py fits a quantity).

Three spaces, the first the bundle's scorer offers is the default:

* ``defect``: PatchCore's defect latent, each patch minus its nearest good patch, averaged. The
  board around the defect cancels. On the generated spot set (models/evaluation/reference_set.py) it
  measured a spot's diameter to 3.9 % of the range where the pooled latent managed 5.8 %;
* ``code``: an autoencoder's bottleneck code (Wolfschläger's setting, 2025), so that decoding along the
  direction shows what changes with the quantity;
* ``pooled``: the pooled backbone latent every bundle has.
"""

import numpy as np

from latentline.models.latents import Latents
from latentline.models.metrology.quantity import QuantityScale
from latentline.models.scoring.base import Scorer

SPACES = ("defect", "code", "pooled")


def default_space(scorer: Scorer) -> str:
    if hasattr(scorer, "defect_latents"):
        return "defect"
    return "code" if hasattr(scorer, "codes") else "pooled"


def features(scorer: Scorer, latents: Latents, space: str) -> np.ndarray:
    """[N, dim] the latents of ``space``; the scorer must offer it."""
    if space == "pooled":
        return latents.full
    method = {"defect": "defect_latents", "code": "codes"}.get(space)
    if method is None or not hasattr(scorer, method):
        raise ValueError(f"a {scorer.name} bundle cannot measure in the {space!r} space")
    return getattr(scorer, method)(latents)


def measure(scales: dict[str, QuantityScale], scorer: Scorer, latents: Latents,
            known: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """{quantity: [N] values} for every calibrated quantity; each space is computed once, or
    taken from ``known`` (the spaces the scorer's pass over the batch already gave)."""
    by_space: dict[str, np.ndarray] = dict(known or {})
    measured = {}
    for name, scale in scales.items():
        if scale.space not in by_space:
            by_space[scale.space] = features(scorer, latents, scale.space)
        measured[name] = scale.measure(by_space[scale.space])
    return measured
