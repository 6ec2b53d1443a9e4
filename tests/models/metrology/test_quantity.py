"""QuantityScale (models/metrology/quantity.py) on synthetic latents with a planted direction."""

import numpy as np
import pytest
from pydantic import ValidationError
from scipy.stats import spearmanr

from latentline.models.metrology.quantity import QuantityScale

DIM = 40
NOISE = 0.05  # spread of the value along the planted direction, in the value's unit


def latents(values: np.ndarray, seed: int, squared: bool = False) -> np.ndarray:
    """Background variation in every dimension; the value (or its square, a nonlinear encoding)
    along one fixed direction plus noise."""
    rng = np.random.default_rng(seed)
    direction = np.random.default_rng(99).normal(size=DIM)
    direction /= np.linalg.norm(direction)
    signal = values**2 if squared else values
    along = signal + rng.normal(scale=NOISE, size=len(values))
    return rng.normal(size=(len(values), DIM)) * 0.3 + np.outer(along, direction) * 3


@pytest.fixture(scope="module")
def reference():
    values = np.linspace(0.2, 2.0, 200)
    return latents(values, seed=0), values


@pytest.fixture(scope="module")
def fitted(reference):
    return QuantityScale("diameter", "mm").fit(*reference)


def test_measures_new_latents_with_the_stated_uncertainty(fitted):
    truth = np.random.default_rng(5).uniform(0.2, 2.0, 400)
    measured = fitted.measure(latents(truth, seed=1))
    errors = np.abs(measured - truth)
    assert errors.mean() < 0.05 * (2.0 - 0.2)
    assert spearmanr(measured, truth)[0] > 0.95
    assert 0.9 <= np.mean(errors <= fitted.expanded_uncertainty_) <= 0.99
    assert fitted.coverage_factor_ == pytest.approx(1.97, abs=0.01)  # Student's t, 199 dof, 95 %
    u = fitted.standard_uncertainty_
    assert fitted.expanded_uncertainty_ == pytest.approx(fitted.coverage_factor_ * u)


def test_every_variant_is_cross_validated_and_the_best_kept(fitted):
    assert set(fitted.cv_mae_) == {f"{d}/{k}" for d in ("linear", "logistic") for k in (1, 2, 3)}
    best = min(fitted.cv_mae_, key=fitted.cv_mae_.get)
    assert best == f"{fitted.direction_kind_}/{fitted.degree_}"


def test_a_nonlinear_encoding_gets_a_curved_calibration():
    values = np.linspace(0.2, 2.0, 200)
    scale = QuantityScale("d", "mm", directions=("linear",)).fit(latents(values, 0, squared=True), values)
    assert scale.degree_ >= 2
    straight = QuantityScale("d", "mm", directions=("linear",), degrees=(1,)).fit(
        latents(values, 0, squared=True), values)
    assert scale.standard_uncertainty_ < straight.standard_uncertainty_


def test_the_scale_increases_with_the_value(fitted, reference):
    features, values = reference
    position = fitted.position(features)
    assert spearmanr(position, values)[0] > 0.95
    walked, walked_values = fitted.walk(5)
    assert walked.shape == (5, DIM) and np.all(np.diff(walked_values) > 0)
    np.testing.assert_allclose(fitted.measure(walked), walked_values)


def test_range_check_widens_by_the_expanded_uncertainty(fitted):
    u = fitted.expanded_uncertainty_
    inside = fitted.in_range(np.array([0.2 - 0.9 * u, 1.0, 2.0 + 0.9 * u]))
    outside = fitted.in_range(np.array([0.2 - 1.1 * u, 2.0 + 1.1 * u]))
    assert inside.all() and not outside.any()


def test_round_trip_through_plain_json_and_arrays(fitted, reference):
    import json

    described = json.loads(json.dumps(fitted.to_dict()))
    loaded = QuantityScale.from_parts(described, fitted.to_arrays())
    assert loaded.get_params() == fitted.get_params()
    assert loaded.report() == fitted.report()
    np.testing.assert_array_equal(loaded.measure(reference[0]), fitted.measure(reference[0]))
    np.testing.assert_array_equal(loaded.walk(3)[0], fitted.walk(3)[0])


def test_bad_arguments_fail_early(reference):
    with pytest.raises(ValidationError):
        QuantityScale("spot diameter", "mm")  # a verdict key: no spaces
    with pytest.raises(ValueError, match="directions"):
        QuantityScale("d", "mm", directions=("quadratic",))
    with pytest.raises(ValueError, match="coverage"):
        QuantityScale("d", "mm", coverage=1.0)
    with pytest.raises(ValueError, match="at least"):
        QuantityScale("d", "mm").fit(reference[0][:6], reference[1][:6])
