"""Which backbone, layers, input size and precision: the encoder's configuration, a record stored
in the model bundle (plain values, no torch: reading a bundle does not load the network)."""

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Literal

Precision = Literal["auto", "fp32", "bf16", "fp16"]

# Mid-level layers carry the local texture that surface defects disturb; the last layer alone
# is tuned to ImageNet classes. Pooling several scales keeps both.
DEFAULT_LAYERS = {
    "mobilenet_v2": ("features.6", "features.13", "features.18"),
    "resnet18": ("layer2", "layer3"),
    "resnet50": ("layer2", "layer3"),
    "wide_resnet50_2": ("layer2", "layer3"),
}
# Spatial feature maps for the scorers that localise (PaDiM, PatchCore): a stride-8 and a
# stride-16 layer, as PatchCore's paper takes layer2 + layer3 of a ResNet. On deeppcb-patches with
# 200 images at 224 px, PatchCore on features.6 + features.13 (28 x 28 patches) measured 0.995
# image AUROC against 0.964 on features.10 + features.13 (14 x 14): small defects need small patches.
DEFAULT_MAP_LAYERS = {
    "mobilenet_v2": ("features.6", "features.13"),
    "resnet18": ("layer2", "layer3"),
    "resnet50": ("layer2", "layer3"),
    "wide_resnet50_2": ("layer2", "layer3"),
}


TILING_FIELDS = ("tiling", "tile_size", "max_tiles")


@dataclass(frozen=True)
class EncoderConfig:
    """Everything needed to rebuild the same encoder: stored in the model bundle."""

    backbone: str = "mobilenet_v2"
    weights: str | None = "IMAGENET1K_V1"
    # 320 rather than 224: on deeppcb-patches it lifts image AUROC from ~0.93 to ~0.95 and the
    # defect classifier's accuracy from 0.86 to 0.89, for about twice the encoding time.
    image_size: int = 320
    layers: tuple[str, ...] | None = None
    # "auto" is resolved when the encoder is built (models/encoding/device.py: resolve_precision),
    # and a fitted bundle stores the concrete precision it was fitted at.
    precision: Precision = "auto"
    # The centre view pools only the middle of each feature map (this fraction of its height
    # and width): cameras and crops framed on a region of interest put the defect there, and
    # the defect classifier reads it without the surrounding board diluting it.
    centre_fraction: float = 0.5
    map_layers: tuple[str, ...] | None = None
    # Side of the square patch grid every map layer is brought to (finer layers area-pooled,
    # coarser ones upsampled): the stride-8 grid of a 224 px input. Fixed rather than following
    # image_size, so a larger input sees each patch at a finer resolution without the memory bank
    # and the nearest-neighbour search growing with its square. None: the coarsest layer's grid.
    map_grid: int | None = 28
    # Images of any shape (``tiles``). With tiling on, an image is resized
    # to a whole number of image_size tiles across and down, each side to round(side / tile),
    # where tile is tile_size source pixels or, by default, the image's short side: a square
    # image stays one tile, a 16:1 line-scan strip becomes 16 tiles side by side instead of being
    # squashed to a square. The network sees the whole resized image in one pass (no seams, no
    # overlap to tune), its feature maps and patch grid grow with it. Off: every image is
    # squashed to image_size x image_size, as bundles saved before tiling existed.
    tiling: bool = True
    tile_size: int | None = None
    max_tiles: int = 16

    def tiles(self, size: tuple[int, int]) -> tuple[int, int]:
        """(across, down) tiles for an image of ``size`` (width, height), at most ``max_tiles``.

        >>> [EncoderConfig().tiles(size) for size in ((4096, 256), (640, 480), (64, 66), (300, 900))]
        [(16, 1), (1, 1), (1, 1), (1, 3)]
        >>> EncoderConfig(tile_size=512).tiles((1024, 1024)), EncoderConfig(tiling=False).tiles((4096, 256))
        ((2, 2), (1, 1))
        """
        if not self.tiling:
            return 1, 1
        width, height = size
        tile = self.tile_size or min(width, height)
        across, down = max(1, round(width / tile)), max(1, round(height / tile))
        while across * down > self.max_tiles:
            across, down = (across - 1, down) if across >= down else (across, down - 1)
        return across, down

    def input_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """(width, height) the encoder resizes an image of ``size`` to."""
        across, down = self.tiles(size)
        return across * self.image_size, down * self.image_size

    def resolved_layers(self) -> tuple[str, ...]:
        return tuple(self.layers or DEFAULT_LAYERS[self.backbone])

    def resolved_map_layers(self) -> tuple[str, ...]:
        return tuple(self.map_layers or DEFAULT_MAP_LAYERS[self.backbone])

    def to_dict(self) -> dict:
        values = asdict(self) | {"layers": list(self.resolved_layers()),
                                 "map_layers": list(self.resolved_map_layers())}
        if not self.tiling:  # as saved before tiling existed: the same manifest, the same key
            for name in TILING_FIELDS:
                values.pop(name)
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "EncoderConfig":
        tuples = {k: tuple(values[k]) for k in ("layers", "map_layers") if values.get(k) is not None}
        untiled = {} if "tiling" in values else {"tiling": False}  # saved before tiling existed
        return cls(**(values | tuples | untiled))

    def key(self) -> str:
        """Short and stable: latents made by encoders with equal keys are interchangeable."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]
