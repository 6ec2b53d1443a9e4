"""Small convolutional (variational) autoencoders trained on good images only.

After "Reliably Decoding Autoencoders' Latent Spaces for One-Class Learning Image Inspection
Scenarios" (Soukup and Pinetz, 2018); the variational one after "Auto-Encoding Variational
Bayes" (Kingma and Welling, 2013).

The networks and their training; the scorers that turn them into anomaly scores live in
``models.scoring.autoencoder.ae`` and ``.vae``. The architecture follows Soukup and Pinetz: 3x3
convolutions with stride 2 halve the resolution and double the channels at every stage, a dense
bottleneck holds the latent code, transposed convolutions mirror the encoder.

>>> network = ConvAutoencoder(image_size=32, latent_dim=8)
>>> network.encode(torch.zeros(2, 3, 32, 32)).shape, network(torch.zeros(2, 3, 32, 32)).shape
(torch.Size([2, 8]), torch.Size([2, 3, 32, 32]))
>>> kl_divergence(torch.zeros(1, 4), torch.zeros(1, 4)).item()  # the prior itself
0.0
"""

import contextlib
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

STAGES = 4  # image_size must be a multiple of 2**STAGES
# Channels of the first stage, doubled at each further stage. 8 rather than 16: on
# deeppcb-patches the same image AUROC (0.73 both at 10 epochs) for a quarter of the CPU time.
WIDTH = 8
PREPARE_CHUNK = 256  # images resized at once: 320 px float copies of more would cost GBs


def prepare_pixels(pixels: np.ndarray, image_size: int, device: torch.device) -> torch.Tensor:
    """uint8 [N, H, W, 3] to float [N, 3, image_size, image_size] in [0, 1] on ``device``.
    Area interpolation averages every source pixel, so thin defects survive the shrink."""
    chunks = [_prepare_chunk(pixels[i : i + PREPARE_CHUNK], image_size, device)
              for i in range(0, len(pixels), PREPARE_CHUNK)]
    if not chunks:
        return torch.empty(0, 3, image_size, image_size, device=device)
    return torch.cat(chunks)


def _prepare_chunk(chunk: np.ndarray, image_size: int, device: torch.device) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(chunk)).permute(0, 3, 1, 2)
    if device.type == "cuda":
        x = x.pin_memory().to(device, non_blocking=True)
    x = x.float().div_(255.0)
    if x.shape[-2:] == (image_size, image_size):
        return x.contiguous()
    return F.interpolate(x, size=(image_size, image_size), mode="area")


def check_image_size(image_size: int) -> None:
    if image_size % 2**STAGES or image_size < 2**STAGES:
        raise ValueError(f"image_size must be a positive multiple of {2**STAGES}, got {image_size}")


def _stage_channels() -> list[int]:
    return [3] + [WIDTH * 2**i for i in range(STAGES)]


class ConvAutoencoder(nn.Module):
    """Deterministic autoencoder: ``encode`` gives the bottleneck code, ``forward`` the
    reconstruction in [0, 1]."""

    def __init__(self, image_size: int = 64, latent_dim: int = 64):
        super().__init__()
        check_image_size(image_size)
        self.image_size, self.latent_dim = image_size, latent_dim
        channels = _stage_channels()
        self._grid = (channels[-1], image_size // 2**STAGES, image_size // 2**STAGES)
        flat = math.prod(self._grid)
        self.features = nn.Sequential(*(
            layer for c_in, c_out in zip(channels, channels[1:])
            for layer in (nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.ReLU(inplace=True))
        ))
        self.to_code = nn.Linear(flat, self._code_width())
        self.from_code = nn.Sequential(nn.Linear(latent_dim, flat), nn.ReLU(inplace=True))
        self.decoder = _decoder(channels)

    def _code_width(self) -> int:
        return self.latent_dim

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's raw output: the code here, (mu, logvar) side by side for the VAE."""
        return self.to_code(self.features(x).flatten(1))

    def code(self, head: torch.Tensor) -> torch.Tensor:
        """The part of ``head`` the decoder reads at inference."""
        return head

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.code(self.head(x))

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.from_code(code).view(-1, *self._grid))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """The training objective for one batch (Soukup and Pinetz, Eq. 1, as a per-pixel mean)."""
        return F.mse_loss(self(x), x)


def _decoder(channels: list[int]) -> nn.Sequential:
    """Transposed convolutions mirroring the encoder; a sigmoid, not Soukup and Pinetz's tanh, because
    the inputs are scaled to [0, 1]."""
    layers: list[nn.Module] = []
    reverse = channels[::-1]
    for c_in, c_out in zip(reverse, reverse[1:-1]):
        layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.ConvTranspose2d(reverse[-2], 3, 4, stride=2, padding=1), nn.Sigmoid())


class ConvVAE(ConvAutoencoder):
    """Variational variant: the encoder gives a Gaussian posterior (mu, logvar); training samples
    from it and adds ``kl_weight`` times its KL divergence from N(0, I). Soukup and Pinetz needed a
    small weight: a large one collapses the codes to the prior and the reconstructions to a blur."""

    def __init__(self, image_size: int = 64, latent_dim: int = 64, kl_weight: float = 1e-4):
        super().__init__(image_size, latent_dim)
        self.kl_weight = kl_weight

    def _code_width(self) -> int:
        return 2 * self.latent_dim

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return split_posterior(self.head(x))

    def code(self, head: torch.Tensor) -> torch.Tensor:
        return split_posterior(head)[0]

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        mu, logvar = self.posterior(x)
        sample = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        reconstruction = F.mse_loss(self.decode(sample), x)
        return reconstruction + self.kl_weight * kl_divergence(mu, logvar).mean()


def split_posterior(head: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar) from a VAE's ``head``; logvar clamped so that exp() stays finite on odd inputs."""
    mu, logvar = head.chunk(2, dim=1)
    return mu, logvar.clamp(-30.0, 20.0)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample, summed over the latent dimensions."""
    return 0.5 * (mu.square() + logvar.exp() - logvar - 1.0).sum(dim=1)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device = torch.device("cpu")):
    """Seed torch inside the block only: fitting must not reset the caller's random state."""
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield


def train(network: ConvAutoencoder, images: np.ndarray, epochs: int = 40, batch_size: int = 32,
          lr: float = 1e-3, validation_fraction: float = 0.1, seed: int = 0,
          device: torch.device | None = None, progress: bool = False,
          augment: bool = True) -> dict[str, list[float]]:
    """Fit ``network`` in place with Adam on uint8 [N, H, W, 3] ``images``; a seeded random
    ``validation_fraction`` is held out to show over-fitting. Returns the per-epoch mean losses
    (``val_loss`` is NaN when too few images leave none to hold out)."""
    device = device or next(network.parameters()).device
    network.to(device)
    data = prepare_pixels(images, network.image_size, device)
    with seeded(seed, device):
        fit_part, val_part = _split(data, validation_fraction)
        optimiser = torch.optim.Adam(network.parameters(), lr=lr)
        history: dict[str, list[float]] = {"train_loss": [], "val_loss": []}
        name = type(network).__name__
        bar = tqdm(range(epochs), desc=f"fitting {name}", unit="epoch", disable=not progress)
        for _ in bar:
            history["train_loss"].append(_train_epoch(network, optimiser, fit_part, batch_size, augment))
            history["val_loss"].append(_evaluate(network, val_part, batch_size))
            bar.set_postfix(train=f"{history['train_loss'][-1]:.5f}", val=f"{history['val_loss'][-1]:.5f}")
    network.eval()
    return history


def dihedral(batch: torch.Tensor) -> torch.Tensor:
    """Each image randomly flipped and transposed (the 8 symmetries of the square): a line's
    parts come in any orientation, and a few thousand images alone let the network memorise."""
    flips = torch.rand(3, len(batch), 1, 1, 1, device=batch.device) < 0.5
    batch = torch.where(flips[0], batch.flip(-1), batch)
    batch = torch.where(flips[1], batch.flip(-2), batch)
    return torch.where(flips[2], batch.transpose(-1, -2), batch)


def _split(data: torch.Tensor, validation_fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    held_out = min(int(len(data) * validation_fraction), len(data) - 1)
    order = torch.randperm(len(data)).to(data.device)
    return data[order[held_out:]], data[order[:held_out]]


def _train_epoch(network: ConvAutoencoder, optimiser: torch.optim.Optimizer, data: torch.Tensor,
                 batch_size: int, augment: bool) -> float:
    network.train()
    order = torch.randperm(len(data)).to(data.device)
    total = torch.zeros((), device=data.device)  # summed on the device: no GPU sync per batch
    for start in range(0, len(data), batch_size):
        batch = data[order[start : start + batch_size]]
        loss = network.loss(dihedral(batch) if augment else batch)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        total += loss.detach() * len(batch)
    return total.item() / len(data)


@torch.no_grad()
def _evaluate(network: ConvAutoencoder, data: torch.Tensor, batch_size: int) -> float:
    """Mean training objective on held-out images, in eval mode (no dropout or noise but the
    VAE's sampling, which belongs to its objective)."""
    if len(data) == 0:
        return float("nan")
    network.eval()
    total = sum(network.loss(data[i : i + batch_size]).item() * len(data[i : i + batch_size])
                for i in range(0, len(data), batch_size))
    return total / len(data)
