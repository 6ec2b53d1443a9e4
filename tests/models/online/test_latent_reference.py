"""LatentReference: standardised summaries on good latents, unit directions, per-layer blocks."""

import numpy as np
import pytest

from latentline.models.online.latent_reference import LatentReference


@pytest.fixture
def good():
    return np.random.default_rng(0).normal(size=(300, 24)) * np.linspace(0.5, 2, 24) + 3


def test_summaries_are_standard_on_good_and_move_with_a_global_shift(good):
    reference = LatentReference(n_components=8).fit(good, {"low": 8, "high": 16})
    assert reference.statistic_names == ["latent_low", "latent_high", "latent_abs_z"]
    summaries = reference.summaries(good)
    np.testing.assert_allclose(summaries.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(summaries.std(axis=0), 1, atol=1e-6)
    brighter = good.copy()
    brighter[:, :8] += 0.5  # only the first layer's activations change
    shifted = reference.summaries(brighter).mean(axis=0)
    assert shifted[0] > 1.5 and abs(shifted[1]) < 1e-6


def test_directions_are_unit_vectors_that_ignore_severity(good):
    reference = LatentReference(n_components=8).fit(good, {"all": 24})
    offset = np.zeros(24)
    offset[5] = 1.0
    directions = reference.directions(np.stack([reference.mean_ + offset, reference.mean_ + 4 * offset]))
    assert directions.shape == (2, 8)
    np.testing.assert_allclose(np.linalg.norm(directions, axis=1), 1)
    np.testing.assert_allclose(directions[0], directions[1], atol=1e-9)


def test_blocks_must_cover_the_latents(good):
    with pytest.raises(ValueError, match="blocks"):
        LatentReference().fit(good, {"a": 10})


def test_directions_of_a_descriptor_are_measured_against_good_images_descriptors(good):
    descriptors = np.random.default_rng(1).normal(size=(300, 6)) * [1, 1, 1, 1, 1, 0.01]
    reference = LatentReference(n_components=6, descriptor="peak").fit(good, {"all": 24}, descriptors)
    assert reference.get_params() == {"n_components": 6, "descriptor": "peak"}
    # the last coordinate barely varies on good images: a defect moving it points there
    direction = reference.directions(np.array([[0, 0, 0, 0, 0, 0.5]]))
    assert direction.shape == (1, 6) and np.max(np.abs(direction)) > 0.99


def test_directions_of_a_descriptor_need_good_images_descriptors(good):
    with pytest.raises(ValueError, match="peak"):
        LatentReference(descriptor="peak").fit(good, {"all": 24})
