"""Every scorer by name: what a bundle manifest may name, what ``latentline fit --method`` offers,
what the conformance test runs.

The table says where each class lives and imports it on first use. So the scorers import only
``models.scoring.base``, never this table's other entries; the cascade builds its stages through
the table without an import circle; and reading a bundle loads only the scorer it holds.

>>> names()
('mahalanobis', 'padim', 'patchcore', 'cascade', 'autoencoder', 'vae')
>>> make_scorer("padim", top_fraction=0.05).get_params()
{'regularisation': 0.01, 'top_fraction': 0.05, 'map_sigma': 1.0}
"""

import importlib

from latentline.models.errors import UserInputError
from latentline.models.scoring.base import Scorer

DEFAULT_METHOD = "patchcore"

_WHERE = {  # name -> "module:class"; a bundle's manifest stores the name
    "mahalanobis": "latentline.models.scoring.mahalanobis:MahalanobisScorer",
    "padim": "latentline.models.scoring.padim:PadimScorer",
    "patchcore": "latentline.models.scoring.patchcore:PatchCoreScorer",
    "cascade": "latentline.models.scoring.cascade:CascadeScorer",
    "autoencoder": "latentline.models.scoring.autoencoder.ae:AutoencoderScorer",
    "vae": "latentline.models.scoring.autoencoder.vae:VAEScorer",
}


def names() -> tuple[str, ...]:
    return tuple(_WHERE)


def scorer_class(name: str) -> type[Scorer]:
    if name not in _WHERE:
        raise UserInputError(f"unknown method {name!r}: choose one of {', '.join(sorted(_WHERE))}")
    module, attribute = _WHERE[name].split(":")
    return getattr(importlib.import_module(module), attribute)


def scorers() -> dict[str, type[Scorer]]:
    """Every scorer class by name (imports all of them, torch included)."""
    return {name: scorer_class(name) for name in _WHERE}


def make_scorer(method: str = DEFAULT_METHOD, **params) -> Scorer:
    """A new, unfitted scorer; ``params`` are its constructor's arguments."""
    return scorer_class(method)(**params)
