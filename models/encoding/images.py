"""Bytes to pixels under limits: the one decode path for fitting and for the stream."""

import io
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from latentline.schemas import ErrorKind


class ImageError(ValueError):
    """An image that cannot be inspected; ``kind`` names the reason for the dead letter."""

    def __init__(self, kind: ErrorKind, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class DecodeLimits:
    max_bytes: int = 16 * 2**20
    max_pixels: int = 25_000_000
    formats: frozenset[str] = field(default_factory=lambda: frozenset({"PNG", "JPEG"}))


def decode_image(data: bytes, limits: DecodeLimits = DecodeLimits()) -> Image.Image:
    """Decode to RGB, refusing oversized, unsupported and corrupt input before it costs memory."""
    if len(data) > limits.max_bytes:
        raise ImageError(
            ErrorKind.IMAGE_TOO_LARGE, f"{len(data)} bytes exceeds the limit of {limits.max_bytes}"
        )
    image = _open(data)
    if image.format not in limits.formats:
        allowed = ", ".join(sorted(limits.formats))
        raise ImageError(ErrorKind.UNSUPPORTED_FORMAT, f"format {image.format} is not one of {allowed}")
    width, height = image.size
    if width * height > limits.max_pixels:
        raise ImageError(
            ErrorKind.IMAGE_TOO_LARGE,
            f"{width}x{height} pixels exceeds the limit of {limits.max_pixels}",
        )
    try:
        image.load()
        return _to_8_bit(image).convert("RGB")
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(ErrorKind.CORRUPT_IMAGE, f"cannot decode {image.format}: {exc}") from exc


def _to_8_bit(image: Image.Image) -> Image.Image:
    """16-bit grayscale (industrial cameras) scaled to 8 bits; Pillow's convert would clip it."""
    if image.mode not in ("I;16", "I;16B", "I;16L", "I"):
        return image
    values = np.asarray(image, dtype=np.uint32) >> 8
    return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), mode="L")


def _open(data: bytes) -> Image.Image:
    # Only the header is read here; our own pixel limit runs before any decoding.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(ErrorKind.IMAGE_TOO_LARGE, str(exc)) from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageError(ErrorKind.UNSUPPORTED_FORMAT, "not a recognised image format") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(ErrorKind.CORRUPT_IMAGE, f"cannot read image header: {exc}") from exc


# The dihedral group of the square, identity first (the image as taken). A defect seen flipped or
# turned is still the same type: few labelled examples go eight times further. The first four keep
# an image's width and height, the only ones that suit a long image (models/encoding/config.py).
DIHEDRAL = (
    None,
    Image.Transpose.FLIP_LEFT_RIGHT,
    Image.Transpose.FLIP_TOP_BOTTOM,
    Image.Transpose.ROTATE_180,
    Image.Transpose.ROTATE_90,
    Image.Transpose.ROTATE_270,
    Image.Transpose.TRANSPOSE,
    Image.Transpose.TRANSVERSE,
)


SHAPE_KEEPING_VIEWS = 4


def dihedral_view(image: Image.Image, k: int) -> Image.Image:
    return image if DIHEDRAL[k] is None else image.transpose(DIHEDRAL[k])


def dihedral_views(images: np.ndarray, k: int) -> np.ndarray:
    """``dihedral_view`` of each of ``images`` [N, H, W, ...] at once, a numpy view (no copy)."""
    return _DIHEDRAL_ARRAYS[k](images)


_DIHEDRAL_ARRAYS = (  # DIHEDRAL's transforms on the rows and columns axes, in its order
    lambda a: a,
    lambda a: a[:, :, ::-1],
    lambda a: a[:, ::-1],
    lambda a: a[:, ::-1, ::-1],
    lambda a: np.rot90(a, 1, axes=(1, 2)),  # PIL turns counter-clockwise, as rot90 does
    lambda a: np.rot90(a, 3, axes=(1, 2)),
    lambda a: a.swapaxes(1, 2),
    lambda a: a.swapaxes(1, 2)[:, ::-1, ::-1],
)
