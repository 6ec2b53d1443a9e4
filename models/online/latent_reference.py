"""What the latents of good images look like: the yardstick for drift and novelty online.

Fitted with the scorer on the same good latents and stored in the bundle. It gives
- a few summary statistics per image (mean standardised activation of each encoder layer and
  the mean absolute standardised activation), each scaled to mean 0 / std 1 on good images:
  lighting, focus and material changes move them, while pose and part variation mostly do not;
- a unit-length direction of deviation in a small whitened PCA space, on which anomalies of
  the same kind fall close together whatever their severity (novelty clustering).

The directions are taken of the defect descriptor (``descriptor``, e.g. ``peak``: the patch
features where the anomaly map peaks, models/defect_types/descriptor.py), with the space fitted
on good images' descriptors, so that a defect's direction says what the defect looks like
wherever it sits in the frame. Bundles saved before (``descriptor`` None) take them of the
pooled latent of the whole image, which good surface dominates when the defect is small or
off-centre. Measured with ``latentline evaluate-stream`` (docs/drift.md): the first new-type
candidate came after 29 spur events on deeppcb-patches (59 before) as one candidate instead of
eight, and held only defective cells on ELPV (purity 1.0 instead of 0.7).
"""

from typing import Self

import numpy as np

from latentline.models.deviation_space import DeviationSpace


class LatentReference:
    def __init__(self, n_components: int = 16, descriptor: str | None = None):
        self.n_components = n_components
        self.descriptor = descriptor  # what directions are taken of; None: the pooled latents

    def get_params(self) -> dict:
        return {"n_components": self.n_components, "descriptor": self.descriptor}

    def fit(self, latents: np.ndarray, blocks: dict[str, int],
            good_descriptors: np.ndarray | None = None) -> Self:
        """``latents``: pooled latents of good images; ``blocks``: encoder layer name -> its number
        of latent dimensions, in order; ``good_descriptors``: the ``descriptor`` of good images
        (required when it is set)."""
        latents = np.asarray(latents, dtype=np.float64)
        if sum(blocks.values()) != latents.shape[1]:
            raise ValueError(f"blocks cover {sum(blocks.values())} dims, latents have {latents.shape[1]}")
        self.block_names_ = list(blocks)
        self.block_ends_ = np.cumsum(list(blocks.values()))
        self.mean_ = latents.mean(axis=0)
        self.std_ = latents.std(axis=0) + 1e-6
        raw = self._raw_summaries(latents)
        self.summary_mean_, self.summary_std_ = raw.mean(axis=0), raw.std(axis=0) + 1e-9
        if self.descriptor is not None and good_descriptors is None:
            raise ValueError(f"directions of the {self.descriptor} descriptor need good images' descriptors")
        fitted_on = latents if self.descriptor is None else good_descriptors
        self.space_ = DeviationSpace(self.n_components).fit(fitted_on)
        return self

    @property
    def statistic_names(self) -> list[str]:
        return [f"latent_{name}" for name in self.block_names_] + ["latent_abs_z"]

    def summaries(self, latents: np.ndarray) -> np.ndarray:
        """[N, len(statistic_names)]: about N(0, 1) on good images like the fitted ones."""
        return (self._raw_summaries(np.asarray(latents, np.float64)) - self.summary_mean_) / self.summary_std_

    def directions(self, vectors: np.ndarray) -> np.ndarray:
        """[N, n_components] unit vectors: the direction in which each of ``vectors`` (the
        ``descriptor`` of parts, or their pooled latents when it is None) leaves the good mean."""
        return self.space_.transform(vectors)

    def _raw_summaries(self, latents: np.ndarray) -> np.ndarray:
        z = (latents - self.mean_) / self.std_
        starts = np.concatenate([[0], self.block_ends_[:-1]])
        columns = [z[:, a:b].mean(axis=1) for a, b in zip(starts, self.block_ends_)]
        return np.column_stack(columns + [np.abs(z).mean(axis=1)])

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "block_names": np.array(self.block_names_),
            "block_ends": self.block_ends_,
            "mean": self.mean_,
            "std": self.std_,
            "summary_mean": self.summary_mean_,
            "summary_std": self.summary_std_,
        } | {f"space_{k}": v for k, v in self.space_.to_arrays().items()}

    @classmethod
    def from_arrays(cls, params: dict, arrays: dict[str, np.ndarray]) -> Self:
        reference = cls(**({"descriptor": None} | params))  # bundles saved before: pooled latents
        reference.block_names_ = [str(name) for name in arrays["block_names"]]
        reference.block_ends_ = arrays["block_ends"]
        for name in ("mean", "std", "summary_mean", "summary_std"):
            setattr(reference, f"{name}_", arrays[name])
        space = {k.removeprefix("space_"): v for k, v in arrays.items() if k.startswith("space_")}
        reference.space_ = DeviationSpace.from_arrays({"n_components": reference.n_components}, space)
        return reference
