"""A pretrained torchvision backbone that turns a batch of images into latent vectors."""

import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from latentline.models.encoding import compat  # noqa: F401  # before torchvision: defines its missing op schemas
from latentline.models.encoding.config import EncoderConfig
from latentline.models.encoding.device import autocast, is_emulated, resolve_precision, select_device
from latentline.models.latents import Latents

# isort: split
import torchvision
from torchvision.models.feature_extraction import create_feature_extractor

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_backbone(name: str, weights: str | None) -> torch.nn.Module:
    """A torchvision model with ImageNet weights by enum name (``IMAGENET1K_V1``: loads where the
    torch hub cache has them), from a local ``.pth`` state dict, or random (None)."""
    if weights and Path(weights).suffix in (".pth", ".pt"):
        model = torchvision.models.get_model(name, weights=None)
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        return model
    return torchvision.models.get_model(name, weights=weights)


class PooledEncoder:
    """Multi-scale global-average-pooled features; one float32 vector per image.

    ``prepare`` (resize to a uint8 array) is thread-safe and meant for I/O threads; ``encode``
    runs the network on one batch and should be called from a single thread.
    """

    def __init__(self, config: EncoderConfig = EncoderConfig(), device: str = "auto",
                 forward_batch: int | None = None, trunk_layer: str | None = None):
        self.device = select_device(device)
        # images per forward pass (None: the whole batch); ``fastest_forward_batch`` measures it
        self.forward_batch = forward_batch
        self.config = replace(config, precision=resolve_precision(self.device, config.precision))
        if is_emulated(self.device, self.config.precision):
            log.warning("this CPU has no native bf16: the encoder runs several times slower than "
                        "at fp32; fit with --precision auto or fp32 on such machines")
        model = load_backbone(config.backbone, config.weights)
        self._layers = config.resolved_layers()
        self._map_layers = config.resolved_map_layers()
        # a layer whose whole map a later stage reads as it is (the type network's frozen trunk)
        self.trunk_layer = trunk_layer
        nodes = list(dict.fromkeys(self._layers + self._map_layers + ((trunk_layer,) if trunk_layer else ())))
        self._net = create_feature_extractor(model.eval(), return_nodes=nodes)
        self._net = self._net.to(self.device, memory_format=torch.channels_last)
        self._mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1) * 255
        self._std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1) * 255

    def prepare(self, image: Image.Image) -> np.ndarray:
        """uint8 [H, W, 3]: every image at the config's size, ``tiles`` of image_size pixels."""
        rgb = image.convert("RGB").resize(self.config.input_size(), Image.Resampling.BILINEAR)
        return np.asarray(rgb, dtype=np.uint8)

    @torch.inference_mode()
    def layer_dims(self) -> dict[str, int]:
        """Latent dimensions each layer contributes, in ``encode``'s order (one tiny forward pass)."""
        maps = self._net(torch.zeros(1, 3, 64, 64, device=self.device))
        return {name: int(maps[name].shape[1]) for name in self._layers}

    def encode(self, batch: np.ndarray) -> np.ndarray:
        """``batch``: uint8 [N, H, W, 3] from ``prepare``. Returns float32 [N, dim]."""
        return self.encode_views(batch).full

    @torch.inference_mode()
    def encode_views(self, batch: np.ndarray, maps: bool = False, pixels: bool = False,
                     maps_on_device: bool = False, trunk: bool = False) -> Latents:
        """The pooled views of ``batch``, in forward passes of at most ``forward_batch`` images;
        the feature maps and the input pixels too when asked (a scorer's ``needs_maps`` /
        ``needs_pixels``), and the ``trunk_layer``'s map (``trunk``). ``maps_on_device``: the
        maps and the trunk stay tensors on the device, for the stages that compute there."""
        if trunk and self.trunk_layer is None:
            raise ValueError("this encoder was built without a trunk layer")
        step = self.forward_batch or max(1, len(batch))
        passes = [self._forward(batch[i : i + step], maps, trunk) for i in range(0, len(batch), step)]
        full, centre, patches, trunks = (None if part[0] is None else torch.cat(part)
                                         for part in zip(*passes or [self._forward(batch, maps, trunk)]))
        if not maps_on_device:
            patches, trunks = (None if t is None else t.cpu().numpy() for t in (patches, trunks))
        return Latents(full.cpu().numpy(), centre.cpu().numpy(), patches,
                       np.ascontiguousarray(batch) if pixels else None, trunks)

    def _forward(self, batch: np.ndarray, maps: bool, trunk: bool = False) -> tuple:
        """One forward pass: the pooled full and centre views, the patch maps and the trunk map
        when asked."""
        x = self._to_device(batch)
        with autocast(self.device, self.config.precision):
            features = self._net(x)
            full = torch.cat([features[name].float().mean(dim=(2, 3)) for name in self._layers], dim=1)
            centre = torch.cat([self._centre(features[name].float()).mean(dim=(2, 3))
                                for name in self._layers], dim=1)
            patches = self._patches(features, x.shape[2:]) if maps else None
            trunks = features[self.trunk_layer].float() if trunk else None
        return full, centre, patches, trunks

    def blank(self) -> np.ndarray:
        """A grey image at the input size, as ``prepare`` makes it: what warm-ups run."""
        return self.prepare(Image.new("RGB", self.config.input_size(), (128, 128, 128)))

    def fastest_forward_batch(self, image: np.ndarray, up_to: int, rounds: int = 2, **options) -> int:
        """Set and return the forward-pass size (a power of two up to ``up_to``) that encodes
        ``up_to`` copies of ``image`` fastest: each size's best time over ``rounds`` interleaved
        rounds (a shared machine's speed moves within seconds), after a pass that allocates.
        On a CPU whose caches the activations of 16 images at 320 px overflow, passes of 1 to 4
        images measured 1.5x faster than one of 16 on some days and slower on others
        (docs/speed.md): only a measurement on the machine itself can choose."""
        batch = np.repeat(image[None], up_to, axis=0)
        sizes = [2**k for k in range(up_to.bit_length())]
        timings = dict.fromkeys(sizes, float("inf"))
        for size in sizes:
            self.forward_batch = size
            self.encode_views(batch[:size], **options)
        for _ in range(rounds):
            for size in sizes:
                self.forward_batch = size
                started = time.perf_counter()
                self.encode_views(batch, **options)
                timings[size] = min(timings[size], time.perf_counter() - started)
        self.forward_batch = min(timings, key=timings.get)
        return self.forward_batch

    def _patches(self, features: dict[str, torch.Tensor], input_shape) -> torch.Tensor:
        """Each map layer averaged over 3x3 neighbourhoods (PatchCore's local context) and
        brought to the common grid, stacked along channels."""
        layers = [F.avg_pool2d(features[name].float(), 3, 1, 1) for name in self._map_layers]
        grid = self._grid(layers, input_shape)
        return torch.cat([_resample(f, grid) for f in layers], dim=1)

    def _grid(self, layers: list[torch.Tensor], input_shape) -> tuple[int, int]:
        """``map_grid`` cells per side of each tile of the input (or the coarsest layer's grid)."""
        if self.config.map_grid is None:
            return min((f.shape[2], f.shape[3]) for f in layers)
        height, width = input_shape
        size, grid = self.config.image_size, self.config.map_grid
        return max(1, round(grid * height / size)), max(1, round(grid * width / size))

    def _centre(self, feature_map: torch.Tensor) -> torch.Tensor:
        height, width = feature_map.shape[2:]
        keep_h = max(1, round(height * self.config.centre_fraction))
        keep_w = max(1, round(width * self.config.centre_fraction))
        top, left = (height - keep_h) // 2, (width - keep_w) // 2
        return feature_map[:, :, top : top + keep_h, left : left + keep_w]

    def _to_device(self, batch: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2)
        if self.device.type == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
        x = (x.float() - self._mean) / self._std
        return x.contiguous(memory_format=torch.channels_last)


def _resample(feature_map: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Area-average a finer map down to ``grid`` (every activation counts), interpolate a
    coarser one up to it (as PatchCore aligns layer3 to layer2)."""
    if feature_map.shape[2] >= grid[0] and feature_map.shape[3] >= grid[1]:
        return F.adaptive_avg_pool2d(feature_map, grid)
    return F.interpolate(feature_map, size=grid, mode="bilinear", align_corners=False)
