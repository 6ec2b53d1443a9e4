"""Calibrating a real bundle on a generated reference set: spaces, bundle round trip, evaluate."""

import json

import numpy as np
import pytest
from scipy.stats import spearmanr
from threadpoolctl import threadpool_limits

from latentline.models.bundle import QUANTITY_ARRAYS, ModelBundle
from latentline.models.dataset import read_values
from latentline.models.evaluation.reference_set import make_reference_set
from latentline.models.evaluation.report import evaluate
from latentline.models.inspector import Inspector
from latentline.models.latents import Latents
from latentline.models.metrology.measurement import default_space, features, measure
from latentline.models.scoring.mahalanobis import MahalanobisScorer
from latentline.models.training.calibrate import calibrate

QUANTITY = "spot_diameter"


@pytest.fixture(scope="module", autouse=True)
def single_threaded_math():
    with threadpool_limits(limits=1):  # see test_bundle_and_fit
        yield


@pytest.fixture(scope="module")
def reference_dir(pcb_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    make_reference_set(pcb_dir, root, n_reference=60, n_test=30, n_good=10, progress=False)
    return root


@pytest.fixture(scope="module")
def calibrated(typed_bundle, reference_dir):
    """The session's PatchCore bundle (96 px) with the spot diameter calibrated; a copy, so other
    modules' bundle stays as it was."""
    bundle = ModelBundle(**{**typed_bundle.__dict__, "quantities": {}})
    inspector = Inspector(bundle, device="cpu")
    bundle.quantities[QUANTITY] = calibrate(inspector, reference_dir / "reference", QUANTITY, "mm",
                                            progress=False)
    return inspector


def test_calibration_reads_the_defect_latent_and_orders_new_spots(calibrated, reference_dir):
    scale = calibrated.bundle.quantities[QUANTITY]
    assert scale.space == "defect" and scale.unit == "mm" and scale.n_reference_ == 60
    assert scale.range_ == pytest.approx((0.15, 1.5))
    truth = read_values(reference_dir / "test" / QUANTITY)
    latents = calibrated.encode_files([reference_dir / "test" / QUANTITY / f for f in truth], progress=False)
    measured = calibrated.assess(latents, maps=False).measurements[QUANTITY]
    assert spearmanr(measured, list(truth.values()))[0] > 0.8  # 96 px and 60 references: coarse


def test_the_bundle_keeps_its_quantities(calibrated, reference_dir, tmp_path):
    calibrated.bundle.save(tmp_path)
    assert (tmp_path / QUANTITY_ARRAYS).is_file()
    loaded = ModelBundle.load(tmp_path)
    scale = loaded.quantities[QUANTITY]
    assert scale.report() == calibrated.bundle.quantities[QUANTITY].report()
    paths = sorted((reference_dir / "test" / QUANTITY).glob("*.png"))[:4]
    latents = calibrated.encode_files(paths, progress=False)
    original = calibrated.bundle
    np.testing.assert_array_equal(measure(loaded.quantities, loaded.scorer, latents)[QUANTITY],
                                  measure(original.quantities, original.scorer, latents)[QUANTITY])


def test_evaluate_reports_the_measurement_and_draws_it(calibrated, reference_dir, tmp_path):
    metrics = evaluate(calibrated, reference_dir, tmp_path, progress=False)
    report = metrics["measurements"][QUANTITY]
    assert report["n"] == 30 and report["folders"] == [QUANTITY] and report["unit"] == "mm"
    for key in ("measurement_mae", "measurement_rmse", "spearman", "coverage", "expanded_uncertainty"):
        assert np.isfinite(report[key]), key
    assert report["spearman"] > 0.8 and 0 <= report["coverage"] <= 1
    assert json.loads((tmp_path / "metrics.json").read_text())["measurements"] == metrics["measurements"]
    for name in (f"measurement_{QUANTITY}", f"sorted_{QUANTITY}"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000


def test_spaces_follow_the_scorer():
    rng = np.random.default_rng(0)
    pooled = rng.normal(size=(20, 6))
    latents = Latents(pooled, pooled, rng.normal(size=(20, 4, 2, 2)))
    scorer = MahalanobisScorer().fit(latents)
    assert default_space(scorer) == "pooled"
    np.testing.assert_array_equal(features(scorer, latents, "pooled"), pooled)
    for space in ("defect", "code", "nonsense"):
        with pytest.raises(ValueError, match="cannot measure"):
            features(scorer, latents, space)
