"""A one-class scorer: a convolutional autoencoder trained on good images only.

After "Reliably Decoding Autoencoders' Latent Spaces for One-Class Learning Image Inspection
Scenarios" (Soukup and Pinetz, 2018). Two scores come from one network. ``reconstruction``:
defects are what the decoder cannot redraw, so the smoothed per-pixel reconstruction error is
the anomaly map and the mean of its hottest ``top_fraction`` the image score. ``latent``: the
Mahalanobis distance of the bottleneck code from the good images' codes, which skips the decoder
(about twice as fast) but separated less reliably in the paper. ``models.scoring.autoencoder.vae``
is the variational variant. Measured on deeppcb-patches: image AUROC 0.73 after 10 epochs, 0.85
after 40, 0.87 after 60; 0.633 from only 200 images at 224 px (docs/scoring.md).

>>> import numpy as np
>>> from latentline.models.latents import Latents
>>> pixels = np.random.default_rng(0).integers(100, 130, (24, 16, 16, 3), dtype=np.uint8)
>>> def latents(pixels):
...     return Latents(np.zeros((len(pixels), 1)), np.zeros((len(pixels), 1)), pixels=pixels)
>>> scorer = AutoencoderScorer(image_size=16, latent_dim=4, epochs=2).fit(latents(pixels))
>>> stained = pixels[:2].copy()
>>> stained[:, 4:8, 4:8] = 255  # a bright square the decoder never learned to draw
>>> bool(scorer.score(latents(stained)).min() > scorer.score(latents(pixels[:2])).max())
True
>>> scorer.anomaly_maps(latents(stained)).shape, sorted(scorer.score_parts(latents(stained)))
((2, 16, 16), ['latent', 'reconstruction'])
"""

import dataclasses
from typing import ClassVar, Self

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.covariance import LedoitWolf

from latentline.models.encoding.device import select_device
from latentline.models.latents import Latents
from latentline.models.scoring.autoencoder.networks import (
    PREPARE_CHUNK,
    ConvAutoencoder,
    check_image_size,
    prepare_pixels,
    seeded,
    train,
)
from latentline.models.scoring.base import top_mean

SCORE_SOURCES = ("reconstruction", "latent")
# Held out from training only to report over-fitting in ``history_``.
VALIDATION_FRACTION = 0.1
NETWORK_PREFIX = "network."


@dataclasses.dataclass(eq=False)
class AutoencoderScorer:
    """Hyperparameters are the dataclass fields (``get_params``); fitted state ends in ``_``."""

    name: ClassVar[str] = "autoencoder"
    needs_maps: ClassVar[bool] = False
    needs_pixels: ClassVar[bool] = True

    image_size: int = 64
    latent_dim: int = 64
    # 40 epochs: on deeppcb-patches image AUROC 0.73 after 10, 0.85 after 40, 0.87 after 60 (lr 2e-3)
    # for 50 % more fitting time.
    epochs: int = 40
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 0
    top_fraction: float = 0.02
    score_from: str = "reconstruction"

    def __post_init__(self):
        if self.score_from not in SCORE_SOURCES:
            raise ValueError(f"score_from must be one of {SCORE_SOURCES}, got {self.score_from!r}")
        check_image_size(self.image_size)  # fail at construction, not after loading the images

    def get_params(self) -> dict:
        return dataclasses.asdict(self)

    # --- the network and the latent score: what the VAE overrides -----------------------------

    def _build_network(self) -> ConvAutoencoder:
        return ConvAutoencoder(self.image_size, self.latent_dim)

    def _fit_latent(self, heads: np.ndarray) -> dict[str, np.ndarray]:
        """State of the latent score, from the good images' codes. Ledoit-Wolf shrinkage: a
        few hundred images for a covariance of latent_dim squared entries."""
        estimator = LedoitWolf().fit(heads.astype(np.float64))
        return {"code_mean": estimator.location_, "code_precision": estimator.get_precision()}

    def _latent_scores(self, heads: np.ndarray) -> np.ndarray:
        centred = heads.astype(np.float64) - self.latent_state_["code_mean"]
        squared = np.einsum("ij,jk,ik->i", centred, self.latent_state_["code_precision"], centred)
        return np.sqrt(np.maximum(squared, 0.0))

    # --- the Scorer interface ------------------------------------------------------------------

    def fit(self, latents: Latents, progress: bool = False) -> Self:
        pixels = _pixels(latents)
        self.device_ = select_device("auto")
        with seeded(self.seed, self.device_):
            network = self._build_network()
        self.history_ = train(network, pixels, self.epochs, self.batch_size, self.learning_rate,
                              VALIDATION_FRACTION, self.seed, self.device_, progress)
        self.network_ = network.eval()
        self.latent_state_ = self._fit_latent(self._forward(pixels, decode=False)[0])
        return self

    def score(self, latents: Latents) -> np.ndarray:
        """[N] >= 0 from ``score_from``; the latent score never runs the decoder."""
        return self._score_parts(latents, decode=self.score_from == "reconstruction")[self.score_from]

    def score_parts(self, latents: Latents) -> dict[str, np.ndarray]:
        """Both scores (Soukup and Pinetz's Table I), for plotting them side by side."""
        return self._score_parts(latents, decode=True)

    def anomaly_maps(self, latents: Latents) -> np.ndarray:
        """[N, image_size, image_size] smoothed squared reconstruction error, channel mean."""
        return self._forward(_pixels(latents), decode=True)[1]

    @torch.inference_mode()
    def codes(self, latents: Latents) -> np.ndarray:
        """[N, latent_dim]: what the decoder reads (the VAE's posterior mean), the latent that
        quantities are measured in for autoencoder bundles (models/metrology/measurement.py)."""
        heads = torch.from_numpy(self._forward(_pixels(latents), decode=False)[0]).to(self.device_)
        return self.network_.code(heads).float().cpu().numpy()

    @torch.inference_mode()
    def decode_codes(self, codes: np.ndarray) -> np.ndarray:
        """Images uint8 [N, image_size, image_size, 3] the decoder draws from ``codes``."""
        code = torch.from_numpy(np.asarray(codes, np.float32)).to(self.device_)
        images = self.network_.decode(code).clamp(0, 1).mul(255).round().byte()
        return images.permute(0, 2, 3, 1).cpu().numpy()

    def to_arrays(self) -> dict[str, np.ndarray]:
        network = {NETWORK_PREFIX + key: value.detach().cpu().numpy()
                   for key, value in self.network_.state_dict().items()}
        history = {f"history_{key}": np.asarray(values, np.float64) for key, values in self.history_.items()}
        return network | history | {f"latent_{key}": value for key, value in self.latent_state_.items()}

    @classmethod
    def from_arrays(cls, params: dict, arrays: dict[str, np.ndarray]) -> Self:
        scorer = cls(**params)
        scorer.device_ = select_device("auto")
        state = {key.removeprefix(NETWORK_PREFIX): torch.from_numpy(np.array(value))
                 for key, value in arrays.items() if key.startswith(NETWORK_PREFIX)}
        scorer.network_ = scorer._build_network()
        scorer.network_.load_state_dict(state)
        scorer.network_.to(scorer.device_).eval()
        scorer.history_ = {key.removeprefix("history_"): np.asarray(value).tolist()
                           for key, value in arrays.items() if key.startswith("history_")}
        scorer.latent_state_ = {key.removeprefix("latent_"): np.asarray(value)
                                for key, value in arrays.items() if key.startswith("latent_")}
        return scorer

    # --- inference -------------------------------------------------------------------------------

    def _score_parts(self, latents: Latents, decode: bool) -> dict[str, np.ndarray]:
        heads, maps = self._forward(_pixels(latents), decode)
        parts = {"latent": self._latent_scores(heads)}
        if maps is not None:
            parts["reconstruction"] = top_mean(maps, self.top_fraction) if len(maps) else np.zeros(0)
        return parts

    @torch.inference_mode()
    def _forward(self, pixels: np.ndarray, decode: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """The encoder heads [N, width] and, when ``decode``, the anomaly maps, chunk by chunk:
        320 px inputs of a whole data set would not fit in memory at once."""
        heads, maps = [], []
        for start in range(0, len(pixels), PREPARE_CHUNK):
            x = prepare_pixels(pixels[start : start + PREPARE_CHUNK], self.image_size, self.device_)
            head = self.network_.head(x)
            heads.append(head.float().cpu().numpy())
            if decode:
                maps.append(error_map(x, self.network_.decode(self.network_.code(head))).cpu().numpy())
        width, size = self.network_.to_code.out_features, self.image_size
        return (np.concatenate(heads) if heads else np.zeros((0, width), np.float32),
                (np.concatenate(maps) if maps else np.zeros((0, size, size), np.float32)) if decode else None)


def _pixels(latents: Latents) -> np.ndarray:
    if latents.pixels is None:
        raise ValueError("this scorer reads the input pixels: encode with pixels=True (needs_pixels)")
    return latents.pixels


def _gaussian_kernel(sigma: float = 1.0, radius: int = 2) -> torch.Tensor:
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    return kernel / kernel.sum()


def error_map(x: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """Squared error averaged over channels, then a separable Gaussian (sigma 1 px): a single
    pixel's error is mostly noise, a defect covers a few neighbouring ones."""
    error = (x - reconstruction).square().mean(dim=1, keepdim=True)
    kernel = _gaussian_kernel().to(error.device)
    radius = len(kernel) // 2
    error = F.conv2d(F.pad(error, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    error = F.conv2d(F.pad(error, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))
    return error.squeeze(1).clamp_min(0.0)
