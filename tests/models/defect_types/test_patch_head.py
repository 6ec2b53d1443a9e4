"""The patch head as a fit option: fitted on the real typed subset, it names the known types,
keeps its calibration honest (a head per fold), survives the bundle's round trip and learns a
new type from operators' labels."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from latentline.models.bundle import ModelBundle
from latentline.models.dataset import list_images
from latentline.models.defect_types.patch_head import PatchHeadClassifier
from latentline.models.encoding.config import EncoderConfig
from latentline.models.encoding.images import decode_image
from latentline.models.errors import UserInputError
from latentline.models.inspector import Inspector
from latentline.models.training.fit import TypeOptions, fit_bundle
from latentline.schemas.verdict import TypeStatus


@pytest.fixture(scope="module")
def head_bundle(typed_dir):
    with threadpool_limits(limits=1):
        return fit_bundle(typed_dir, EncoderConfig(image_size=96), device="cpu", progress=False,
                          types=TypeOptions(classifier="patch-head", views=2))


@pytest.fixture(scope="module")
def test_latents(head_bundle, typed_dir):
    inspector = Inspector(head_bundle, "cpu")
    items = [i for i in list_images(typed_dir, "test") if not i.is_good]
    latents = inspector.encode_files([i.path for i in items], progress=False)
    return inspector, inspector.type_latents(latents), np.array([i.label for i in items])


def test_the_head_reads_the_cells_and_learns_its_own_space(head_bundle):
    classifier = head_bundle.classifier
    assert isinstance(classifier.classifier, PatchHeadClassifier)
    assert classifier.descriptor == "cells" and classifier.space.n_components == 0
    assert head_bundle.reference.descriptor == "cells"
    assert classifier.examples_.shape[1] == classifier.classifier.hidden  # distances in its embedding


def test_known_types_are_named_better_than_chance(test_latents):
    inspector, type_latents, truth = test_latents
    decisions = inspector.classifier.decide(type_latents)
    known = truth != "spur"
    named = np.array([d.label for d in decisions])
    assert (named[known] == truth[known]).mean() > 0.6  # three types: chance is 0.33


def test_round_trip_gives_the_same_decisions(head_bundle, test_latents, tmp_path):
    inspector, type_latents, _ = test_latents
    loaded = ModelBundle.load(head_bundle.save(tmp_path / "bundle"))
    before, after = inspector.classifier.decide(type_latents), loaded.classifier.decide(type_latents)
    assert [(d.status, d.label) for d in after] == [(d.status, d.label) for d in before]
    np.testing.assert_allclose([d.distance for d in after], [d.distance for d in before], atol=1e-5)


def test_labels_teach_a_new_type(test_latents):
    inspector, type_latents, truth = test_latents
    spur = np.flatnonzero(truth == "spur")
    taught = inspector.classifier.learn(type_latents[spur[:5]], ["spur"] * 5)
    decisions = taught.decide(type_latents[spur[5:]])
    assert "spur" in taught.classes
    assert np.mean([d.label == "spur" for d in decisions]) > 0.5


def test_novelty_directions_come_from_the_pooled_cells(head_bundle, test_latents, typed_dir):
    inspector, _, _ = test_latents
    paths = [i.path for i in list_images(typed_dir, "test") if not i.is_good][::10]
    batch = np.stack([inspector.prepare(decode_image(p.read_bytes())) for p in paths])
    assessment = inspector.infer(batch).assessment
    directions = [d for d in assessment.directions if d is not None]
    assert directions and all(d.shape == (head_bundle.reference.n_components,) for d in directions)
    assert [d is None for d in assessment.directions] == [t is None for t in assessment.type_latents]


def test_the_head_and_the_cells_go_together():
    from latentline.models.scoring.patchcore import PatchCoreScorer

    with pytest.raises(UserInputError, match="patch-head"):
        TypeOptions(classifier="logistic", descriptor="cells").resolved_descriptor(PatchCoreScorer())
    with pytest.raises(UserInputError, match="patch-head"):
        TypeOptions(classifier="patch-head", descriptor="peak").resolved_descriptor(PatchCoreScorer())
    assert TypeOptions(classifier="patch-head").resolved_descriptor(PatchCoreScorer()) == "cells"
    assert TypeOptions().resolved_descriptor(PatchCoreScorer()) == "tuned"  # fine-tuned by default
    assert TypeOptions(fine_tune=0).resolved_descriptor(PatchCoreScorer()) == "peak"
    assert TypeOptions().resolved_descriptor(PatchCoreScorer(), backbone="resnet18") == "peak"


def test_statuses_are_the_open_set_ones(test_latents):
    inspector, type_latents, _ = test_latents
    assert {d.status for d in inspector.classifier.decide(type_latents)} <= set(TypeStatus)
