"""fit with labelled defect types, then ``evaluate``: metrics.json, plots, round trips."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from latentline.models.bundle import CLASSIFIER_ARRAYS, ModelBundle
from latentline.models.encoding.config import EncoderConfig
from latentline.models.evaluation.report import evaluate
from latentline.models.inspector import Inspector
from latentline.models.training.fit import TypeOptions, fit_bundle
from latentline.schemas import TypeStatus

KNOWN = ("copper", "pin_hole", "short")  # tests/conftest.py's typed_dir


@pytest.fixture(scope="module", autouse=True)
def single_threaded_math():
    with threadpool_limits(limits=1):  # see test_bundle_and_fit
        yield


@pytest.fixture(scope="module")
def dataset(typed_dir) -> Path:
    return typed_dir


@pytest.fixture(scope="module")
def bundle(typed_bundle) -> ModelBundle:
    return typed_bundle


def test_fit_adds_a_classifier_with_its_report(bundle):
    assert bundle.classifier is not None and bundle.classifier.classes == list(KNOWN)
    report = bundle.training["defect_types"]
    assert report["types"] == list(KNOWN) and report["examples"] == 36
    assert report["calibration"]["n_examples"] == 36 and report["calibration"]["n_rows"] == 72
    assert all({"file", "label", "reasons"} <= set(s) for s in report["suspects"])


def test_bundle_round_trip_keeps_the_decisions(bundle, tmp_path):
    bundle.save(tmp_path)
    assert (tmp_path / CLASSIFIER_ARRAYS).is_file()
    loaded = ModelBundle.load(tmp_path)
    probe = np.random.default_rng(0).normal(size=(6, bundle.classifier.space.mean_.size))
    assert loaded.classifier.decide(probe) == bundle.classifier.decide(probe)
    assert loaded.classifier.get_params() == bundle.classifier.get_params()


def test_fit_without_type_folders_or_with_types_disabled_has_no_classifier(dataset, bundle):
    plain = fit_bundle(dataset, EncoderConfig(image_size=64, weights=None), device="cpu",
                       progress=False, types=TypeOptions(enabled=False))
    assert plain.classifier is None and "defect_types" not in plain.training


def test_drop_suspects_leaves_them_out(dataset):
    kept = fit_bundle(dataset, EncoderConfig(image_size=64, weights=None), device="cpu",
                      progress=False, types=TypeOptions(views=1, drop_suspects=True))
    report = kept.training["defect_types"]
    assert len(report["dropped"]) == len(report["suspects"])
    assert report["examples"] == 36 - len(report["dropped"])


def test_evaluate_writes_metrics_and_plots(bundle, dataset, tmp_path):
    inspector = Inspector(bundle, device="cpu")
    metrics = evaluate(inspector, dataset, tmp_path, progress=False)
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics  # strict JSON, no NaN
    json.loads((tmp_path / "metrics.json").read_text(), parse_constant=lambda name: pytest.fail(name))
    with (tmp_path / "scores.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == metrics["n_test"] and {r["decision"] for r in rows} <= {"ok", "review", "defect"}
    assert all(r["defect_type"] for r in rows if r["label"] != "good")  # every defect image named or not
    assert all(not r["defect_type"] for r in rows if r["label"] == "good")
    assert {r["type_status"] for r in rows if r["label"] != "good"} <= {"known", "review", "unknown"}
    for name in ("roc", "score_histograms", "confusion", "latent_map", "anomaly_maps"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000
    assert metrics["n_test"] == 30 + 4 * 15 and metrics["pixel_auroc"] is None  # no masks here
    assert metrics["method"] == "patchcore" and metrics["threshold"] == 0.5
    assert metrics["image_auroc"] > 0.6  # pretrained features find these defects, even at 96 px
    for key in ("image_ap", "f1", "precision", "recall", "threshold", "images_per_second",
                "classification_accuracy", "macro_f1", "review_rate", "auto_accuracy",
                "new_type_recall", "adjusted_rand_index", "silhouette"):
        assert metrics[key] is not None, key
    assert metrics["classification_accuracy"] > 0.5  # three types, chance is a third
    assert set(metrics["per_type"]) == {"good", *KNOWN, "spur"}
    assert metrics["n_known_type_images"] == 45 and metrics["n_new_type_images"] == 15
    assert set(metrics["new_type_recall_per_type"]) == {"spur"}
    learning = metrics["new_type_learning"]["spur"]
    assert learning["labels_given"] == 10 and 0 <= learning["recall_as_type"] <= 1


def test_inspector_names_types_only_for_anomalies(bundle, dataset):
    inspector = Inspector(bundle, device="cpu")
    paths = [p for label in ("good", "copper", "short") for p in sorted((dataset / "test" / label).iterdir())]
    assessment = inspector.assess(inspector.encode_files(paths, progress=False))
    assert {d.value for d in assessment.decisions} > {"ok"}
    parts = zip(assessment.decisions, assessment.types, assessment.maps, assessment.directions)
    for decision, defect_type, anomaly_map, direction in parts:
        ok = decision.value == "ok"
        assert (defect_type is None) == (anomaly_map is None) == (direction is None) == ok
        if direction is not None:  # novelty's direction: of the defect descriptor, unit length
            assert direction.shape == (bundle.reference.n_components,)
            assert abs(float(np.linalg.norm(direction)) - 1) < 1e-5
        if defect_type is not None:
            assert defect_type.status in set(TypeStatus)
            assert anomaly_map.ndim == 2 and 0 <= anomaly_map.min() and anomaly_map.max() <= 1
    assert np.all((assessment.scores > 0) & (assessment.scores < 1))
