"""A bundle saved before models/ was split into rooms still loads and answers as it did.

The manifest names scorers and classifiers by their registry names ("mahalanobis", "logistic"),
never by a module or class path, so moving modules needs no alias table; this test holds that to
be so. tests/models/data/bundle-format-5/ was written by the code of commit 3ba4e02 (format 5, the
flat models/): a Mahalanobis scorer, a logistic open-set classifier and a quantity measured in the
pooled latent, fitted on random latents, with probe latents and what that code answered for them
(the script: tests/models/data/bundle-format-5/README.md).
"""

import json
from pathlib import Path

import numpy as np
import pytest

from latentline.models.bundle import ModelBundle
from latentline.models.defect_types.registry import classifiers
from latentline.models.latents import Latents
from latentline.models.metrology.measurement import measure
from latentline.models.scoring.registry import names

OLD = Path(__file__).parent / "data" / "bundle-format-5"


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads((OLD / "expected.json").read_text())


@pytest.fixture(scope="module")
def probe() -> Latents:
    with np.load(OLD / "probe.npz") as arrays:
        return Latents(arrays["full"], arrays["centre"], arrays["maps"])


def test_every_name_an_old_manifest_may_hold_still_resolves(expected):
    assert set(expected["scorer_names"]) <= set(names())  # names may be added, never taken away
    assert set(expected["classifier_names"]) <= set(classifiers())


def test_an_old_bundle_loads_and_answers_the_same(expected, probe):
    bundle = ModelBundle.load(OLD / "bundle")
    scores = bundle.scorer.score(probe)
    np.testing.assert_allclose(scores, expected["scores"], rtol=1e-9)
    assert [d.value for d in bundle.thresholds.decide(scores)] == expected["decisions"]
    np.testing.assert_allclose(bundle.reference.summaries(probe.full), expected["summaries"], rtol=1e-9)
    assert bundle.reference.descriptor is None  # its novelty directions come from the pooled latents
    assert bundle.reference.directions(probe.full).shape == (len(probe), 4)
    types = [[d.status.value, d.label, d.confidence] for d in bundle.classifier.decide(probe.centre)]
    assert [t[:2] for t in types] == [t[:2] for t in expected["types"]]
    np.testing.assert_allclose([t[2] for t in types], [t[2] for t in expected["types"]], rtol=1e-9)
    measured = measure(bundle.quantities, bundle.scorer, probe)
    np.testing.assert_allclose(measured["spot_diameter"], expected["measurements"]["spot_diameter"],
                               rtol=1e-9)


# parameters added since format 5, with the value that keeps an old bundle answering as it did
ADDED_SINCE = {("classifier", "params", "descriptor"): "centre", ("reference", "params", "descriptor"): None,
               ("classifier", "params", "view_mean"): False,
               ("classifier", "params", "review_quantile"): None}


def test_an_old_bundle_saved_again_keeps_its_manifest(tmp_path):
    ModelBundle.load(OLD / "bundle").save(tmp_path)
    saved = _manifest(tmp_path)
    for (*parents, key), value in ADDED_SINCE.items():
        holder = saved
        for name in parents:
            holder = holder[name]
        assert holder.pop(key) == value
    assert saved == _manifest(OLD / "bundle")


def _manifest(directory: Path) -> dict:
    return json.loads((directory / "manifest.json").read_text())
