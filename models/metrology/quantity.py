"""A quality characteristic measured along a latent direction: an instrument.

After "Metrologically Interpretable Feature Extraction using GenAI for Industrial Machine
Vision" (Wolfschläger, 2025), which finds a quality characteristic along one direction of a
generative model's latent space and calibrates it against references; the uncertainty follows
the GUM ("Evaluation of measurement data: Guide to the expression of uncertainty in
measurement", JCGM 100, 2008).

A quantity (a defect's size, a filling degree) is encoded along one direction of the latent
space. ``QuantityScale`` finds that direction from reference images of known value, defines the
scale along it (zeta: the standardised latent projected on the unit direction), calibrates zeta
into the physical unit with a polynomial, and states the measurement uncertainty from
out-of-fold calibration residuals, as a measuring instrument must:

* ``linear``: the direction of a ridge regression of the value on the latent;
* ``logistic``: the normal of a logistic regression telling values above the median from those
  below (Wolfschläger's choice).

Direction and polynomial degree are chosen by cross-validated mean absolute error. The standard
uncertainty is the root mean square out-of-fold residual; the expanded uncertainty multiplies it
by a coverage factor from Student's t, so the interval value +- U covers the true value with
probability ``coverage`` where the residuals are near normal.

Measured on 200 generated spots on deeppcb-patches (docs/metrology.md):
u = 0.080 mm, U = 0.158 mm (k = 1.97), MAE 0.055 mm (4.1 % of the range), Spearman 0.980, and U
covering 93 % of the test errors (stated: 95 %).

>>> rng = np.random.default_rng(0)
>>> values = rng.uniform(0.2, 2.0, 100)  # mm, the references' true sizes
>>> latents = rng.normal(size=(100, 8))
>>> latents[:, 3] += 10 * values  # the size lies along one direction, 10 units per mm
>>> scale = QuantityScale("spot_diameter", "mm").fit(latents, values)
>>> scale.direction_kind_, scale.degree_, round(scale.coverage_factor_, 2)
('linear', 1, 1.98)
>>> round(scale.standard_uncertainty_, 1)  # noise of 1 on 10 units per mm: about 0.1 mm
0.1
>>> scale.in_range(np.array([1.0, 9.0])).tolist()  # 9 mm lies far outside the calibration
[True, False]
"""

import dataclasses
from typing import ClassVar, Self

import numpy as np
from pydantic import TypeAdapter
from scipy import stats
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold

from latentline.schemas.base import Identifier

DIRECTIONS = ("linear", "logistic")


@dataclasses.dataclass(eq=False)
class QuantityScale:
    """Hyperparameters are the dataclass fields (``get_params``); fitted state ends in ``_``."""

    array_names: ClassVar[tuple[str, ...]] = ("mean_", "scale_", "direction_", "coefficients_")

    name: str
    unit: str
    space: str = "pooled"  # which latent it reads (models/metrology/measurement.py)
    directions: tuple[str, ...] = DIRECTIONS
    degrees: tuple[int, ...] = (1, 2, 3)
    # Ridge penalty on standardised latents: a few hundred references for a thousand dimensions.
    ridge_alpha: float = 100.0
    logistic_c: float = 0.01
    folds: int = 5
    coverage: float = 0.95
    seed: int = 0

    def __post_init__(self):
        TypeAdapter(Identifier).validate_python(self.name)  # a Verdict key and an array name part
        unknown = set(self.directions) - set(DIRECTIONS)
        if unknown or not self.directions:
            raise ValueError(f"directions must be among {DIRECTIONS}, got {self.directions!r}")
        if not 0 < self.coverage < 1:
            raise ValueError("coverage must lie strictly between 0 and 1")

    def get_params(self) -> dict:
        return dataclasses.asdict(self) | {"directions": list(self.directions), "degrees": list(self.degrees)}

    def fit(self, features: np.ndarray, values: np.ndarray) -> Self:
        """``features`` [N, dim] latents of the reference images, ``values`` [N] their true values."""
        values = np.asarray(values, np.float64)
        if len(values) < 2 * self.folds:
            raise ValueError(f"need at least {2 * self.folds} reference images, got {len(values)}")
        predicted = {f"{d}/{k}": self._out_of_fold(features, values, d, k)
                     for d in self.directions for k in self.degrees}
        self.cv_mae_ = {variant: _mae(p, values) for variant, p in predicted.items()}
        best = min(self.cv_mae_, key=self.cv_mae_.get)
        self.direction_kind_, degree = best.split("/")
        self.degree_ = int(degree)
        residuals = predicted[best] - values
        self._fit_all(features, values, self.direction_kind_, self.degree_)
        self.standard_uncertainty_ = float(np.sqrt(np.mean(residuals**2)))
        self.coverage_factor_ = float(stats.t.ppf((1 + self.coverage) / 2, df=len(values) - 1))
        self.range_ = (float(values.min()), float(values.max()))
        self.n_reference_ = len(values)
        return self

    @property
    def expanded_uncertainty_(self) -> float:
        return self.coverage_factor_ * self.standard_uncertainty_

    def position(self, features: np.ndarray) -> np.ndarray:
        """zeta [N]: where each latent lies along the direction (the quantity-value scale)."""
        return ((np.asarray(features, np.float64) - self.mean_) / self.scale_) @ self.direction_

    def measure(self, features: np.ndarray) -> np.ndarray:
        """[N] values in ``unit``."""
        return np.polyval(self.coefficients_, self.position(features))

    def in_range(self, measured: np.ndarray) -> np.ndarray:
        """[N] bool: inside the calibrated range widened by the expanded uncertainty; outside it
        the polynomial extrapolates and the stated uncertainty does not hold."""
        low, high = self.range_
        margin = self.expanded_uncertainty_
        return (measured >= low - margin) & (measured <= high + margin)

    def walk(self, steps: int = 8) -> tuple[np.ndarray, np.ndarray]:
        """Latents [steps, dim] along the direction through the references' mean, spanning the
        calibrated range, and the values [steps] they measure: what the quantity looks like."""
        zetas = np.linspace(*self._zeta_range_, steps)
        latents = self.mean_ + np.outer(zetas, self.direction_ * self.scale_)
        return latents, np.polyval(self.coefficients_, zetas)

    def report(self) -> dict:
        return {"name": self.name, "unit": self.unit, "direction": self.direction_kind_,
                "degree": self.degree_, "standard_uncertainty": self.standard_uncertainty_,
                "expanded_uncertainty": self.expanded_uncertainty_, "coverage": self.coverage,
                "coverage_factor": self.coverage_factor_, "range": list(self.range_),
                "n_reference": self.n_reference_, "cv_mae": self.cv_mae_}

    # --- fitting ---------------------------------------------------------------------------------

    def _out_of_fold(self, features: np.ndarray, values: np.ndarray, direction: str,
                     degree: int) -> np.ndarray:
        predicted = np.empty_like(values)
        folds = KFold(self.folds, shuffle=True, random_state=self.seed)
        for train, held in folds.split(features):
            part = dataclasses.replace(self)._fit_all(features[train], values[train], direction, degree)
            predicted[held] = part.measure(features[held])
        return predicted

    def _fit_all(self, features: np.ndarray, values: np.ndarray, direction: str, degree: int) -> Self:
        features = np.asarray(features, np.float64)
        self.mean_ = features.mean(axis=0)
        self.scale_ = features.std(axis=0) + 1e-8
        standard = (features - self.mean_) / self.scale_
        weights = self._direction(standard, values, direction)
        self.direction_ = weights / (np.linalg.norm(weights) + 1e-12)
        zeta = standard @ self.direction_
        if np.corrcoef(zeta, values)[0, 1] < 0:  # larger zeta, larger value: the scale's sense
            self.direction_, zeta = -self.direction_, -zeta
        self.coefficients_ = np.polyfit(zeta, values, degree)
        self._zeta_range_ = (float(zeta.min()), float(zeta.max()))
        return self

    def _direction(self, standard: np.ndarray, values: np.ndarray, direction: str) -> np.ndarray:
        if direction == "linear":
            return Ridge(alpha=self.ridge_alpha).fit(standard, values).coef_
        above = values > np.median(values)
        return LogisticRegression(C=self.logistic_c, max_iter=2000).fit(standard, above).coef_[0]

    # --- persistence -----------------------------------------------------------------------------

    def to_dict(self) -> dict:
        fitted = self.report() | {"zeta_range": list(self._zeta_range_)}
        return {"params": self.get_params(), "fitted": fitted}

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(getattr(self, name)) for name in self.array_names}

    @classmethod
    def from_parts(cls, described: dict, arrays: dict[str, np.ndarray]) -> Self:
        params = described["params"] | {"directions": tuple(described["params"]["directions"]),
                                        "degrees": tuple(described["params"]["degrees"])}
        scale, fitted = cls(**params), described["fitted"]
        for name in cls.array_names:
            setattr(scale, name, np.asarray(arrays[name], np.float64))
        scale.direction_kind_, scale.degree_ = fitted["direction"], fitted["degree"]
        scale.standard_uncertainty_ = fitted["standard_uncertainty"]
        scale.coverage_factor_ = fitted["coverage_factor"]
        scale.range_, scale._zeta_range_ = tuple(fitted["range"]), tuple(fitted["zeta_range"])
        scale.n_reference_, scale.cv_mae_ = fitted["n_reference"], fitted["cv_mae"]
        return scale


def _mae(predicted: np.ndarray, values: np.ndarray) -> float:
    return float(np.mean(np.abs(predicted - values)))
