"""The scenario library: what can happen to a camera's images, each at two strengths.

Each scenario is a function (image, rng, strength) -> image of the same size; ``SCENARIOS`` names
them with their weak and strong settings. Lighting and optics are Pillow's own enhancers and
filters; the shift is scipy.ndimage with the image continued by reflection (what lies beside the
view on a moving line is more of the same kind of surface, not black); the different material
is a good image of another dataset, resized to the camera's frame.

>>> image = Image.new("L", (8, 8), 100)
>>> dim(image, None, 0.8).getpixel((0, 0))
80
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter
from scipy import ndimage

Transform = Callable[[Image.Image, np.random.Generator | None, float], Image.Image]


def dim(image: Image.Image, rng, factor: float) -> Image.Image:
    return ImageEnhance.Brightness(image).enhance(factor)


brighten = dim  # a factor above 1


def contrast_loss(image: Image.Image, rng, factor: float) -> Image.Image:
    return ImageEnhance.Contrast(image).enhance(factor)


def defocus(image: Image.Image, rng, radius: float) -> Image.Image:
    """Gaussian blur of ``radius`` pixels at the camera's own resolution."""
    return image.filter(ImageFilter.GaussianBlur(radius))


def sensor_noise(image: Image.Image, rng: np.random.Generator, sigma: float) -> Image.Image:
    """Additive Gaussian noise of ``sigma`` grey levels (gain raised, a warm sensor)."""
    pixels = np.asarray(image, dtype=np.float64)
    return Image.fromarray(
        np.clip(pixels + rng.normal(0.0, sigma, pixels.shape), 0, 255).round().astype(np.uint8)
    )


def camera_shift(image: Image.Image, rng, amount: float) -> Image.Image:
    """A shift by ``amount`` of the frame's size (down and right) and a rotation by
    ``100 * amount`` degrees (2 %: 2 degrees): a camera knocked slightly, the same for every image."""
    pixels = np.asarray(image, dtype=np.float64)
    height, width = pixels.shape[:2]
    shift = [amount * height, amount * width] + [0] * (pixels.ndim - 2)
    moved = ndimage.shift(pixels, shift, order=1, mode="reflect")
    moved = ndimage.rotate(moved, 100 * amount, axes=(1, 0), reshape=False, order=1, mode="reflect")
    return Image.fromarray(np.clip(moved, 0, 255).round().astype(np.uint8))


@dataclass(frozen=True)
class Scenario:
    name: str
    transform: Transform | None  # None: the different material (other images, not a transform)
    weak: float
    strong: float
    unit: str

    def strengths(self) -> dict[str, float]:
        return {"weak": self.weak, "strong": self.strong}


SCENARIOS = (
    Scenario("dimming", dim, 0.9, 0.8, "brightness factor"),
    Scenario("brightening", brighten, 1.1, 1.2, "brightness factor"),
    Scenario("contrast_loss", contrast_loss, 0.9, 0.8, "contrast factor"),
    Scenario("defocus", defocus, 0.5, 1.0, "Gaussian blur radius, px"),
    Scenario("sensor_noise", sensor_noise, 3.0, 6.0, "noise sigma, grey levels"),
    Scenario("camera_shift", camera_shift, 0.01, 0.02, "shift share of frame (rotation 100x in degrees)"),
    Scenario("material", None, 0.5, 1.0, "share of events showing another dataset's good images"),
)


def other_material(image: Image.Image, other: Image.Image) -> Image.Image:
    """``other`` in ``image``'s frame: its size and mode."""
    return other.convert(image.mode).resize(image.size, Image.Resampling.BILINEAR)
