"""The examples in the docstrings of models/ run, as river runs its detectors' examples: each
module's examples are one test here, so ``pytest tests`` (and ``make test``) runs them."""

import doctest
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODULES = sorted(".".join(path.relative_to(REPO).with_suffix("").parts)
                 for path in (REPO / "models").rglob("*.py") if path.name != "__init__.py")
WITH_EXAMPLES = [name for name in MODULES if ">>>" in (REPO / f"{name.replace('.', '/')}.py").read_text()]
# Each algorithm shows itself at work; a module leaving this list has lost its examples.
ALGORITHMS = {
    "models.scoring.mahalanobis", "models.scoring.padim", "models.scoring.patchcore",
    "models.scoring.coreset", "models.scoring.cascade", "models.scoring.threshold",
    "models.scoring.autoencoder.networks", "models.scoring.autoencoder.ae", "models.scoring.autoencoder.vae",
    "models.online.drift", "models.online.novelty", "models.online.state", "models.defect_types.open_set",
    "models.metrology.quantity",
}


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_examples(name):
    module = importlib.import_module(f"latentline.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed (output above)"


def test_every_algorithm_has_examples():
    assert ALGORITHMS <= set(WITH_EXAMPLES)
