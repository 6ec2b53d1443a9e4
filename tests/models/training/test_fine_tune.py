"""``fit --fine-tune``: a type network trained on the labelled defects, saved in the bundle, read
by the Inspector (models/defect_types/tuned.py)."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from latentline.models.bundle import ModelBundle
from latentline.models.dataset import list_images
from latentline.models.defect_types.tuned import TunedOpenSet, split
from latentline.models.defect_types.type_network import (
    CHUNK,
    EMBEDDING_DIMENSIONS,
    TRUNK_CHANNELS,
    TypeNetwork,
)
from latentline.models.encoding.config import EncoderConfig
from latentline.models.errors import UserInputError
from latentline.models.inspector import Inspector
from latentline.models.training.fit import TypeOptions, fit_bundle
from latentline.schemas.verdict import TypeStatus
from tests.conftest import KNOWN_TYPES


@pytest.fixture(scope="module")
def tuned_bundle(typed_dir, tmp_path_factory):
    """One epoch, two views, 96 px: the whole path, not its accuracy."""
    with threadpool_limits(limits=1):
        bundle = fit_bundle(typed_dir, EncoderConfig(image_size=96), device="cpu", progress=False,
                            types=TypeOptions(views=2, fine_tune=1), tiling=None)
    directory = tmp_path_factory.mktemp("tuned") / "bundle"
    bundle.save(directory)
    return ModelBundle.load(directory)


def test_the_bundle_keeps_its_tuned_network_and_both_calibrations(tuned_bundle):
    classifier = tuned_bundle.classifier
    assert isinstance(classifier, TunedOpenSet) and tuned_bundle.descriptor == "tuned"
    assert sorted(classifier.classes) == sorted(KNOWN_TYPES)
    report = tuned_bundle.training["defect_types"]["calibration"]
    assert report["n_examples"] == 3 * 12 and report["witness"]["n_examples"] == 3 * 12
    assert 0 < report["distance_threshold"] and 0 < report["witness"]["distance_threshold"]
    assert classifier.labels_.size == 3 * 12 * classifier.views  # what the worker's example sync counts


def test_the_inspector_names_anomalous_parts_in_the_tuned_space(tuned_bundle, typed_dir):
    inspector = Inspector(tuned_bundle, device="cpu")
    assert inspector.encoder_inputs["trunk"] and not inspector.encoder_inputs["pixels"]  # one pass
    paths = [i.path for i in list_images(typed_dir, "test") if i.label in ("short", "spur")][:6]
    latents = inspector.encode_files(paths, progress=False)
    type_latents = inspector.type_latents(latents)
    peak, embedding = split(type_latents)
    assert embedding.shape == (6, EMBEDDING_DIMENSIONS)
    np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1.0, rtol=1e-4)
    decisions = inspector.classifier.decide(type_latents)
    assert all(d.label in KNOWN_TYPES and d.status in TypeStatus for d in decisions)
    learned = inspector.classifier.learn(type_latents[:2], ["spur", "spur"])
    assert "spur" in learned.classes and learned.network is inspector.classifier.network


def windows_of(network: TypeNetwork, count: int, seed: int = 0):
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.randn(count, TRUNK_CHANNELS, network.cells, network.cells, generator=generator)


def test_a_saved_network_embeds_as_it_did(tuned_bundle, tmp_path):
    network = tuned_bundle.classifier.network
    windows = windows_of(network, 3)
    again = TypeNetwork.from_arrays(network.get_params(), network.to_arrays())
    np.testing.assert_allclose(again.embed(windows), network.embed(windows), atol=1e-5)


def test_a_bundle_whose_network_read_pixel_windows_is_refused_with_what_to_do(tuned_bundle):
    network = tuned_bundle.classifier.network
    before = {k: v for k, v in network.get_params().items() if k != "cells"} | {"input_size": 224}
    with pytest.raises(UserInputError, match="refit"):
        TypeNetwork.from_arrays(before, network.to_arrays())


def test_the_worker_reads_the_same_embedding_as_the_straightforward_path(tuned_bundle, typed_dir):
    """The batch path (one encoder pass, windows cut from its trunk on the device, the whole
    batch's anomalous parts through the tuned blocks at once) against a reference written
    plainly: each part encoded alone, its window cut by slicing, embedded alone."""
    import torch

    from latentline.models.encoding.images import decode_image

    inspector = Inspector(tuned_bundle, device="cpu")
    network = tuned_bundle.classifier.network
    paths = [i.path for i in list_images(typed_dir, "test") if i.label in ("short", "spur")][:5]
    batch = np.stack([inspector.prepare(decode_image(p.read_bytes())) for p in paths])
    latents = inspector.encoder.encode_views(batch, **inspector.encoder_inputs)
    maps = tuned_bundle.scorer.anomaly_maps(latents)
    batched = split(inspector.type_latents(latents, maps))[1]
    for index, image in enumerate(batch):
        alone = inspector.encoder.encode_views(image[None], trunk=True).trunk  # [1, C, H, W]
        window = torch.nn.functional.adaptive_avg_pool2d(torch.as_tensor(alone), network.cells)  # one tile
        np.testing.assert_allclose(network.embed(window)[0], batched[index], atol=1e-4)


def test_fine_tuning_is_refused_where_it_cannot_read_its_descriptor():
    from latentline.models.scoring.registry import make_scorer

    with pytest.raises(UserInputError, match="fine-tun"):
        TypeOptions(fine_tune=2, classifier="patch-head").resolved_descriptor(make_scorer())
    with pytest.raises(UserInputError, match="fine-tun"):
        TypeOptions(descriptor="tuned", fine_tune=0).resolved_descriptor(make_scorer())
    assert TypeOptions(descriptor="peak").resolved_descriptor(make_scorer()) == "peak"  # asked: frozen


def test_the_worker_path_names_the_anomalous_parts_of_a_batch(tuned_bundle, typed_dir):
    from latentline.models.encoding.images import decode_image

    inspector = Inspector(tuned_bundle, device="cpu")
    inspector.warm_up()
    paths = [i.path for i in list_images(typed_dir, "test") if i.label in ("good", "copper")][::4]
    batch = np.stack([inspector.prepare(decode_image(p.read_bytes())) for p in paths])
    assessment = inspector.infer(batch).assessment
    named = [(latent, kind) for latent, kind in zip(assessment.type_latents, assessment.types) if kind]
    assert named, "some copper defects are anomalous"
    assert all(split(latent[None])[1].shape == (1, EMBEDDING_DIMENSIONS) for latent, _ in named)


def test_the_network_keeps_where_its_windows_are_centred_and_how_it_pools(tuned_bundle):
    """A fit centres the windows on the defect's mass and pools the maximum; the bundle keeps
    both, so the worker cuts and pools as the fit did."""
    network = tuned_bundle.classifier.network
    assert (network.centre, network.pool) == ("centroid", "max")
    assert {"centre": "centroid", "pool": "max"}.items() <= network.get_params().items()
    with pytest.raises(ValueError, match="pooling"):
        TypeNetwork(pool="sum")


def test_a_shifted_window_is_its_features_moved_by_at_most_the_cells_asked():
    import torch

    from latentline.models.defect_types.type_network import shifted

    features = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).reshape(2, 3, 6, 6)
    generator = torch.Generator().manual_seed(0)
    assert shifted(features, 0, generator) is features
    moved = shifted(features, 2, generator)
    assert moved.shape == features.shape
    padded = torch.nn.functional.pad(features, (2, 2, 2, 2), mode="replicate")
    for original, out in zip(padded, moved):  # one of the 25 moves, edges repeated
        moves = [original[:, dy : dy + 6, dx : dx + 6] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out, move) for move in moves)


def test_padding_a_pass_to_one_shape_changes_no_embedding(tuned_bundle):
    """On an accelerator every pass is padded to CHUNK windows (one input shape); a part's
    embedding may not depend on the blank windows beside it. "cpu:0" takes that path here."""
    network = tuned_bundle.classifier.network
    windows = windows_of(network, CHUNK + 3, seed=2)
    alone = network.embed(windows)
    padded = TypeNetwork.from_arrays(network.get_params(), network.to_arrays()).to("cpu:0")
    np.testing.assert_allclose(padded.embed(windows), alone, atol=1e-5)


def test_views_average_the_flipped_windows_so_a_mirrored_one_embeds_alike(tuned_bundle):
    network = tuned_bundle.classifier.network
    two = TypeNetwork.from_arrays(network.get_params() | {"views": 2}, network.to_arrays())
    windows = windows_of(network, 2, seed=1)
    np.testing.assert_allclose(two.embed(windows.flip(3)), two.embed(windows), atol=1e-5)
    assert not tuned_bundle.classifier.named.view_mean  # one view at inference: calibrated alike


def test_a_type_taught_after_the_fit_is_judged_unknown_in_the_frozen_space_alone(tuned_bundle, typed_dir):
    """The tuned space never learned to gather a taught type's examples: a part named it is not
    unknown for its distance there, only for its distance in the frozen space."""
    inspector = Inspector(tuned_bundle, device="cpu")
    paths = [i.path for i in list_images(typed_dir, "test") if i.label == "spur"][:4]
    type_latents = inspector.type_latents(inspector.encode_files(paths, progress=False))
    fitted = tuned_bundle.classifier
    classifier = TunedOpenSet.from_arrays(fitted.get_params(), fitted.to_arrays())
    classifier.named.distance_threshold_ = 0.0  # every part beyond: unknown in the tuned space
    learned = classifier.learn(type_latents, ["spur"] * len(type_latents))
    assert learned.network_types == classifier.network_types == sorted(KNOWN_TYPES)
    peak, embedding = split(type_latents)
    decisions, frozen = learned.decide(type_latents), learned.witness.decide(peak)
    # its own examples, mostly: four of them beside 72 of the fitted types (one epoch, 96 px)
    taught = [d.label == "spur" for d in decisions]
    assert sum(taught) >= len(paths) // 2
    unknown = TypeStatus.UNKNOWN
    assert [d.status is unknown for d, t in zip(decisions, taught) if t] == \
        [w.status is unknown for w, t in zip(frozen, taught) if t]
    assert all(d.status is unknown for d, t in zip(decisions, taught) if not t)  # a fitted type's name
    assert all(d.status is unknown for d in learned.named.decide(embedding))  # the tuned test alone
    again = TunedOpenSet.from_arrays(learned.get_params(), learned.to_arrays())
    assert again.network_types == learned.network_types


def test_training_takes_the_steps_asked_epoch_after_epoch():
    """A calibration fold's network trains as many steps as the final one (fit_tuned.py)."""
    from latentline.models.defect_types.type_network import _batches

    assert TypeNetwork(epochs=2, batch_size=32, min_steps=0).steps_for(33) == 2  # a batch of one is dropped
    assert TypeNetwork(epochs=2, batch_size=32, min_steps=0).steps_for(34) == 4
    assert TypeNetwork(epochs=2, batch_size=32, min_steps=5).steps_for(34) == 5  # few examples: as long
    batches = list(_batches(rows=34, size=32, steps=5, seed=0))
    assert [len(b) for b in batches] == [32, 2, 32, 2, 32]
    assert sorted(np.concatenate([b.numpy() for b in batches[:2]])) == list(range(34))  # one epoch


def test_the_trunk_kept_on_the_device_gives_the_host_paths_types(tuned_bundle, typed_dir):
    """What a GPU worker runs (maps and trunk left as device tensors), on the CPU: the same type
    latents and names as the host path."""
    from latentline.models.encoding.images import decode_image
    from tests.models.test_inspector_device import DeviceMapsInspector

    host, device = Inspector(tuned_bundle, device="cpu"), DeviceMapsInspector(tuned_bundle, "cpu")
    paths = [i.path for i in list_images(typed_dir, "test") if i.label in ("good", "short", "spur")][::3]
    batch = np.stack([host.prepare(decode_image(p.read_bytes())) for p in paths])
    with threadpool_limits(limits=1):
        expected, got = host.infer(batch).assessment, device.infer(batch).assessment
    assert got.decisions == expected.decisions and any(t is not None for t in got.type_latents)
    for a, b in zip(got.type_latents, expected.type_latents):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    def named(types):
        return [t and (t.label, t.status) for t in types]

    assert named(got.types) == named(expected.types)
