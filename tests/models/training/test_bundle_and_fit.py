"""fit_bundle on a tiny MVTec-layout folder; bundle save/load; dataset helpers."""

import json
import shutil
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from latentline.models.bundle import MANIFEST, SCORER_ARRAYS, ModelBundle
from latentline.models.dataset import evenly_spaced, fingerprint, list_images
from latentline.models.encoding.config import EncoderConfig
from latentline.models.encoding.device import resolve_precision
from latentline.models.encoding.encoder import PooledEncoder
from latentline.models.encoding.files import encode_files
from latentline.models.errors import UserInputError
from latentline.models.latents import Latents
from latentline.models.online.latent_reference import LatentReference
from latentline.models.scoring.mahalanobis import MahalanobisScorer
from latentline.models.scoring.patchcore import PatchCoreScorer
from latentline.models.scoring.registry import make_scorer
from latentline.models.scoring.threshold import Thresholds
from latentline.models.training.fit import fit_bundle

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
    return fit_bundle(dataset, ENCODER, device="cpu", progress=False)  # the default method


@pytest.fixture(scope="module")
def probe(dataset) -> Latents:
    paths = [item.path for item in list_images(dataset, "train", "good")][:8]
    return encode_files(PooledEncoder(ENCODER, device="cpu"), paths, progress=False, maps=True)


def test_fit_bundle_contents(bundle, dataset):
    paths = [item.path for item in list_images(dataset, "train", "good")]
    assert bundle.training["n_images"] == N_IMAGES
    assert bundle.training["fingerprint"] == fingerprint(paths)
    assert bundle.training["dataset"] == dataset.name
    assert bundle.version.endswith(bundle.training["fingerprint"][:8])
    assert bundle.created_at.tzinfo is not None
    # "auto" precision is resolved at fit: the bundle names the one its bank was built at
    resolved = {"precision": resolve_precision(torch.device("cpu"), "auto"), "tiles": (1, 1)}  # square images
    assert bundle.encoder == replace(ENCODER, **resolved)
    assert bundle.encoder.precision in ("fp32", "bf16")
    assert isinstance(bundle.scorer, PatchCoreScorer)
    assert bundle.scorer.bank_.shape[1] == 32 + 96  # features.6 and features.13 channels
    # novelty's directions follow the defect: the peak descriptor, in a space of good images' ones
    # (no labelled defects here: nothing to fine-tune, so the frozen descriptor)
    assert bundle.reference.descriptor == bundle.descriptor == "peak"
    assert bundle.reference.space_.components_.shape[1] == 32 + 96
    assert bundle.training["n_held_back"] == N_IMAGES // 5
    assert bundle.thresholds.good_median <= bundle.thresholds.review_threshold <= bundle.thresholds.threshold
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
    np.testing.assert_array_equal(loaded.scorer.anomaly_maps(probe), bundle.scorer.anomaly_maps(probe))


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
    maps = rng.normal(size=(40, 8, 3, 3))
    scorer = MahalanobisScorer(shrinkage=0.25).fit(Latents(good, good, maps))
    probe = Latents(*(rng.normal(size=(8, 256)),) * 2, rng.normal(size=(8, 8, 3, 3)))
    original = ModelBundle(
        version="v1",
        created_at=datetime.fromisoformat("2024-05-17T08:00:00+00:00"),
        encoder=EncoderConfig(backbone="resnet18", weights=None, layers=("layer3",), map_layers=("layer3",),
                              precision="fp32"),
        scorer=scorer,
        thresholds=Thresholds(threshold=3.0, review_threshold=2.0, good_median=1.0),
        reference=LatentReference(n_components=4).fit(good, {"layer3": 256}),
    )
    loaded = ModelBundle.load(original.save(tmp_path))
    assert loaded.encoder == original.encoder
    assert loaded.scorer.get_params() == {"shrinkage": 0.25, "seed": 0}
    assert loaded.manifest() == original.manifest()
    np.testing.assert_array_equal(loaded.scorer.score(probe), scorer.score(probe))
    for view in ("summaries", "directions"):
        np.testing.assert_array_equal(getattr(loaded.reference, view)(probe.full),
                                      getattr(original.reference, view)(probe.full))


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
    # a user's mistake, reported by the command line as one line (models/errors.py)
    with pytest.raises(UserInputError, match="test"):
        list_images(tmp_path, "test")
    with pytest.raises(UserInputError, match="MVTec AD layout"):
        list_images(tmp_path / "nowhere", "train")


def test_fit_bundle_needs_enough_images(tmp_path, pcb_dir):
    root = make_dataset(tmp_path, pcb_dir, n=5)
    with pytest.raises(ValueError, match="at least 10"):
        fit_bundle(root, ENCODER, device="cpu", progress=False)


def test_make_scorer_names_the_choices():
    assert make_scorer("padim", top_fraction=0.1).get_params()["top_fraction"] == 0.1
    with pytest.raises(ValueError, match="patchcore"):
        make_scorer("nonsense")


def test_fit_bundle_max_images(dataset):
    config = EncoderConfig(weights=None, image_size=64, layers=("features.6",))  # 32 dims: quick
    small = fit_bundle(dataset, config, MahalanobisScorer(), max_images=12, device="cpu", progress=False)
    assert small.training["n_images"] == 12
    assert small.scorer.image_.mean_.shape == (32,)
    assert small.manifest()["encoder"]["layers"] == ["features.6"]
    paths = evenly_spaced([item.path for item in list_images(dataset, "train", "good")], 12)
    assert small.training["fingerprint"] == fingerprint(paths)
    assert len(set(paths)) == 12 and paths[0].name < paths[-1].name
