"""fit_bundle on a tiny MVTec-layout folder; bundle save/load; dataset helpers."""

import json
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from models.bundle import MANIFEST, SCORER_ARRAYS, ModelBundle
from models.dataset import fingerprint, list_images
from models.encoder import EncoderConfig
from models.fit import fit_bundle, out_of_fold_scores
from models.latent_reference import LatentReference
from models.mahalanobis import MahalanobisScorer
from models.threshold import Thresholds

N_IMAGES = 30
ENCODER = EncoderConfig(weights=None, image_size=64)


def make_dataset(root: Path, pcb_dir: Path, n: int = N_IMAGES) -> Path:
    """A tiny copy of the MVTec layout: the first ``n`` good training patches."""
    source = pcb_dir / "train" / "good"
    sources = sorted(source.glob("*.png"))[:n]
    assert len(sources) == n, f"need {n} images in {source}"
    good = root / "train" / "good"
    good.mkdir(parents=True)
    for path in sources:
        shutil.copy(path, good / path.name)
    return root


@pytest.fixture(scope="module", autouse=True)
def single_threaded_math():
    """One thread per pool. numpy and scipy each bundle an OpenBLAS and torch has its own
    OpenMP: on a small CPU their spinning workers starve each other and a 1408-dim covariance
    fit that takes 2 s single-threaded can take a minute."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, pcb_dir) -> Path:
    return make_dataset(tmp_path_factory.mktemp("pcb"), pcb_dir)


@pytest.fixture(scope="module")
def bundle(dataset) -> ModelBundle:
    torch.manual_seed(0)
    return fit_bundle(dataset, ENCODER, folds=3, device="cpu", progress=False)


@pytest.fixture(scope="module")
def probe() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(8, 1408))


def test_fit_bundle_contents(bundle, dataset):
    paths = [item.path for item in list_images(dataset, "train", "good")]
    assert bundle.training["n_images"] == N_IMAGES
    assert bundle.training["fingerprint"] == fingerprint(paths)
    assert bundle.training["dataset"] == dataset.name
    assert bundle.version.endswith(bundle.training["fingerprint"][:8])
    assert bundle.created_at.tzinfo is not None
    assert bundle.encoder == ENCODER
    assert isinstance(bundle.scorer, MahalanobisScorer)
    assert bundle.scorer.mean_.shape == (1408,)
    assert bundle.thresholds.review_threshold <= bundle.thresholds.threshold
    quantiles = bundle.training["held_back_good_score_quantiles"]
    assert quantiles["0.5"] <= quantiles["0.9"] <= quantiles["0.99"]
    json.dumps(bundle.manifest())  # the manifest is plain JSON


def test_save_load_round_trip(bundle, probe, tmp_path):
    directory = tmp_path / "bundle"
    assert not ModelBundle.is_bundle(directory)
    assert bundle.save(directory) == directory
    assert ModelBundle.is_bundle(directory)
    assert (directory / SCORER_ARRAYS).is_file()

    loaded = ModelBundle.load(directory)

    assert loaded.manifest() == bundle.manifest()
    assert loaded.version == bundle.version
    assert loaded.created_at == bundle.created_at
    assert loaded.thresholds == bundle.thresholds
    assert loaded.training == bundle.training
    assert loaded.encoder.to_dict() == bundle.encoder.to_dict()
    assert loaded.encoder.resolved_layers() == bundle.encoder.resolved_layers()
    np.testing.assert_array_equal(loaded.scorer.score(probe), bundle.scorer.score(probe))


def test_is_bundle_needs_manifest(bundle, tmp_path):
    assert not ModelBundle.is_bundle(tmp_path / "missing")
    assert not ModelBundle.is_bundle(tmp_path)
    (tmp_path / SCORER_ARRAYS).write_bytes(b"")
    assert not ModelBundle.is_bundle(tmp_path)  # arrays without a manifest: incomplete
    (tmp_path / MANIFEST).mkdir()
    assert not ModelBundle.is_bundle(tmp_path)  # must be a file


def test_load_rejects_unknown_format(bundle, tmp_path):
    bundle.save(tmp_path)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    manifest["format"] = 99
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="format"):
        ModelBundle.load(tmp_path)


def test_bundle_with_explicit_layers_round_trips(tmp_path):
    rng = np.random.default_rng(1)
    good = rng.normal(size=(40, 256))
    scorer = MahalanobisScorer(shrinkage=0.25).fit(good)
    probe = rng.normal(size=(8, 256))
    original = ModelBundle(
        version="v1",
        created_at=datetime.fromisoformat("2024-05-17T08:00:00+00:00"),
        encoder=EncoderConfig(backbone="resnet18", weights=None, layers=("layer3",), precision="fp32"),
        scorer=scorer,
        thresholds=Thresholds(threshold=3.0, review_threshold=2.0),
        reference=LatentReference(n_components=4).fit(good, {"layer3": 256}),
    )
    loaded = ModelBundle.load(original.save(tmp_path))
    assert loaded.encoder == original.encoder
    assert loaded.scorer.get_params() == {"shrinkage": 0.25}
    assert loaded.manifest() == original.manifest()
    np.testing.assert_array_equal(loaded.scorer.score(probe), scorer.score(probe))
    np.testing.assert_array_equal(loaded.reference.summaries(probe), original.reference.summaries(probe))
    np.testing.assert_array_equal(loaded.reference.directions(probe), original.reference.directions(probe))


def test_fingerprint_changes_when_an_image_is_removed(tmp_path, pcb_dir):
    root = make_dataset(tmp_path, pcb_dir, n=5)
    paths = [item.path for item in list_images(root, "train", "good")]
    before = fingerprint(paths)
    assert fingerprint(list(reversed(paths))) == before  # order does not matter
    paths[-1].unlink()
    after = fingerprint([item.path for item in list_images(root, "train", "good")])
    assert after != before


def test_fingerprint_changes_when_content_changes(tmp_path, pcb_dir):
    root = make_dataset(tmp_path, pcb_dir, n=3)
    paths = [item.path for item in list_images(root, "train", "good")]
    before = fingerprint(paths)
    paths[0].write_bytes(paths[0].read_bytes() + b"\x00")
    assert fingerprint(paths) != before


def test_list_images_layout(tmp_path):
    (tmp_path / "train" / "good").mkdir(parents=True)
    (tmp_path / "train" / "scratch").mkdir()
    for name in ("b.png", "a.PNG", "c.jpeg", "notes.txt"):
        (tmp_path / "train" / "good" / name).write_bytes(b"")
    (tmp_path / "train" / "scratch" / "d.jpg").write_bytes(b"")
    (tmp_path / "train" / "README").write_text("not a folder")

    everything = list_images(tmp_path, "train")
    assert [(i.path.name, i.label, i.split) for i in everything] == [
        ("a.PNG", "good", "train"),
        ("b.png", "good", "train"),
        ("c.jpeg", "good", "train"),
        ("d.jpg", "scratch", "train"),
    ]
    assert [i.is_good for i in everything] == [True, True, True, False]
    assert [i.path.name for i in list_images(tmp_path, "train", "scratch")] == ["d.jpg"]
    assert list_images(tmp_path, "train", "missing_label") == []


def test_list_images_missing_split(tmp_path):
    (tmp_path / "train" / "good").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="test"):
        list_images(tmp_path, "test")
    with pytest.raises(FileNotFoundError):
        list_images(tmp_path / "nowhere", "train")


def test_fit_bundle_needs_enough_images(tmp_path, pcb_dir):
    root = make_dataset(tmp_path, pcb_dir, n=5)
    with pytest.raises(ValueError, match="at least 6"):
        fit_bundle(root, ENCODER, folds=3, device="cpu", progress=False)


def test_fit_bundle_max_images(dataset):
    config = EncoderConfig(weights=None, image_size=64, layers=("features.6",))  # 32 dims: quick
    small = fit_bundle(dataset, config, folds=3, max_images=12, device="cpu", progress=False)
    assert small.training["n_images"] == 12
    assert small.scorer.mean_.shape == (32,)
    assert small.manifest()["encoder"]["layers"] == ["features.6"]
    paths = [item.path for item in list_images(dataset, "train", "good")][:12]
    assert small.training["fingerprint"] == fingerprint(paths)


def test_out_of_fold_scores_one_per_sample():
    rng = np.random.default_rng(0)
    latents = rng.normal(size=(60, 10))
    scorer = MahalanobisScorer()
    scores = out_of_fold_scores(scorer, latents, folds=4)
    assert scores.shape == (60,)
    assert np.isfinite(scores).all() and (scores > 0).all()
    assert not hasattr(scorer, "mean_")  # the template scorer is left unfitted
    np.testing.assert_array_equal(out_of_fold_scores(scorer, latents, folds=4), scores)
    # held-back samples look further away than samples the model was fitted on
    in_sample = MahalanobisScorer().fit(latents).score(latents)
    assert scores.mean() > in_sample.mean()


def test_out_of_fold_scores_keep_params():
    rng = np.random.default_rng(1)
    latents = rng.normal(size=(30, 5))
    fixed = out_of_fold_scores(MahalanobisScorer(shrinkage=1.0), latents, folds=3)
    auto = out_of_fold_scores(MahalanobisScorer(), latents, folds=3)
    assert fixed.shape == auto.shape == (30,)
    assert not np.allclose(fixed, auto)
