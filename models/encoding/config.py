"""Which backbone, layers, input size and precision: the encoder's configuration, a record stored
in the model bundle (plain values, no torch: reading a bundle does not load the network)."""

import hashlib
import json
import statistics
from dataclasses import asdict, dataclass, replace
from typing import Literal

Precision = Literal["auto", "fp32", "bf16", "fp16"]
MAX_TILES = 16  # a longer image is squeezed a little along its length rather than cost more

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
    # Images of any shape. An image is resized to ``tiles`` = (across, down) tiles of image_size
    # pixels: a 16:1 line-scan strip becomes 16 tiles side by side instead of being squashed to
    # a square. The network sees the whole resized image in one pass (no seams, no overlap to
    # tune), and its feature maps and patch grid grow with it. None: chosen at fit from the
    # training images' median shape (``with_tiles_for``), made finer where the labelled defects
    # stand out better (models/training/tiling.py), so that every image a bundle sees is encoded
    # alike, whatever the small differences of size between them; the bundle stores it.
    tiles: tuple[int, int] | None = None

    def input_size(self) -> tuple[int, int]:
        """(width, height) the encoder resizes every image to (unset tiles: one, as before tiling)."""
        across, down = self.tiles or (1, 1)
        return across * self.image_size, down * self.image_size

    def with_tiles_for(self, sizes: list[tuple[int, int]], max_tiles: int = MAX_TILES) -> "EncoderConfig":
        """This config with ``tiles`` chosen for images of these (width, height) sizes when unset:
        whole tiles along the long side of the median shape, at most ``max_tiles``.

        >>> [EncoderConfig().with_tiles_for([size]).tiles for size in ((4096, 256), (640, 480), (300, 900))]
        [(16, 1), (1, 1), (1, 3)]
        >>> EncoderConfig().with_tiles_for([(64, 64), (96, 64), (66, 64)]).tiles  # the median
        (1, 1)
        """
        if self.tiles is not None:
            return self
        aspect = statistics.median(width / height for width, height in sizes)
        count = min(max_tiles, max(1, round(max(aspect, 1 / aspect))))
        return replace(self, tiles=(count, 1) if aspect >= 1 else (1, count))

    def resolved_layers(self) -> tuple[str, ...]:
        return tuple(self.layers or DEFAULT_LAYERS[self.backbone])

    def resolved_map_layers(self) -> tuple[str, ...]:
        return tuple(self.map_layers or DEFAULT_MAP_LAYERS[self.backbone])

    def to_dict(self) -> dict:
        values = asdict(self) | {"layers": list(self.resolved_layers()),
                                 "map_layers": list(self.resolved_map_layers())}
        if self.tiles is None:  # unset, as in bundles saved before tiling existed: the same manifest and key
            values.pop("tiles")
        else:
            values["tiles"] = list(self.tiles)
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "EncoderConfig":
        tuples = {k: tuple(values[k]) for k in ("layers", "map_layers", "tiles") if values.get(k) is not None}
        return cls(**(values | tuples))

    def key(self) -> str:
        """Short and stable: latents made by encoders with equal keys are interchangeable."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]
