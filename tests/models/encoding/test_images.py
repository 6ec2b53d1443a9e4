"""decode_image: the one decode path, and the dead-letter kind of every refusal."""

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentline.models.encoding.images import (
    DIHEDRAL,
    DecodeLimits,
    ImageError,
    decode_image,
    dihedral_view,
    dihedral_views,
)
from latentline.schemas import ErrorKind


@pytest.fixture(scope="module")
def png_path(pcb_dir) -> Path:
    """A real grayscale PCB patch from the test split."""
    paths = sorted((pcb_dir / "test" / "good").glob("*.png"))
    assert paths, f"no sample images in {pcb_dir / 'test' / 'good'}"
    return paths[0]


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def noise_image(width: int, height: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "L": 1}[mode]
    pixels = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
    return Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode)


def test_decodes_real_grayscale_png_to_rgb(png_path):
    data = png_path.read_bytes()
    original = Image.open(png_path)
    assert original.mode == "L"  # the data set is grayscale

    image = decode_image(data)

    assert image.mode == "RGB"
    assert image.size == original.size
    rgb = np.asarray(image)
    gray = np.asarray(original)
    for channel in range(3):  # gray replicated into every channel, pixel for pixel
        np.testing.assert_array_equal(rgb[..., channel], gray)


def test_decodes_jpeg():
    source = noise_image(40, 30)
    image = decode_image(encode(source, "JPEG", quality=95))
    assert image.mode == "RGB"
    assert image.size == (40, 30)
    assert np.asarray(image).shape == (30, 40, 3)


def test_too_many_bytes(png_path):
    data = png_path.read_bytes()
    assert decode_image(data, DecodeLimits(max_bytes=len(data))).mode == "RGB"  # at the limit: fine
    with pytest.raises(ImageError) as info:
        decode_image(data, DecodeLimits(max_bytes=len(data) - 1))
    assert info.value.kind is ErrorKind.IMAGE_TOO_LARGE


def test_too_many_bytes_checked_before_parsing():
    with pytest.raises(ImageError) as info:
        decode_image(b"\x00" * 101, DecodeLimits(max_bytes=100))
    assert info.value.kind is ErrorKind.IMAGE_TOO_LARGE


def test_too_many_pixels():
    data = encode(Image.new("RGB", (200, 200), "white"), "PNG")
    assert len(data) < DecodeLimits().max_bytes
    with pytest.raises(ImageError) as info:
        decode_image(data, DecodeLimits(max_pixels=1000))
    assert info.value.kind is ErrorKind.IMAGE_TOO_LARGE
    assert decode_image(data, DecodeLimits(max_pixels=200 * 200)).size == (200, 200)


def test_image_error_is_a_value_error():
    with pytest.raises(ValueError):
        decode_image(b"not an image")


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_unsupported_format(fmt):
    data = encode(noise_image(16, 16), fmt)
    with pytest.raises(ImageError) as info:
        decode_image(data)
    assert info.value.kind is ErrorKind.UNSUPPORTED_FORMAT
    assert fmt in str(info.value)


def test_formats_limit_is_honoured():
    data = encode(noise_image(16, 16), "JPEG")
    with pytest.raises(ImageError) as info:
        decode_image(data, DecodeLimits(formats=frozenset({"PNG"})))
    assert info.value.kind is ErrorKind.UNSUPPORTED_FORMAT


@pytest.mark.parametrize("data", [np.random.default_rng(1).bytes(4096), b"", b"{}"])
def test_unrecognised_bytes(data):
    with pytest.raises(ImageError) as info:
        decode_image(data)
    assert info.value.kind is ErrorKind.UNSUPPORTED_FORMAT


def test_truncated_png(png_path):
    data = png_path.read_bytes()
    with pytest.raises(ImageError) as info:
        decode_image(data[: len(data) // 2])
    assert info.value.kind is ErrorKind.CORRUPT_IMAGE


def test_truncated_jpeg():
    data = encode(noise_image(64, 64), "JPEG")
    with pytest.raises(ImageError) as info:
        decode_image(data[: len(data) // 2])
    assert info.value.kind is ErrorKind.CORRUPT_IMAGE


def png_claiming_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header (IHDR, with a valid CRC) claims ``width`` x ``height``."""
    data = bytearray(encode(Image.new("L", (8, 8)), "PNG"))
    ihdr = bytearray(data[12:29])  # chunk type + 13 bytes of IHDR data
    assert bytes(ihdr[:4]) == b"IHDR"
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


@pytest.mark.parametrize("side", [6_000, 20_000, 100_000])
def test_pixel_limit_checked_from_header_before_decoding(side):
    """Small files that claim huge images (decompression bombs) never reach the decoder."""
    data = png_claiming_size(side, side)
    assert len(data) < 1000
    with pytest.raises(ImageError) as info:
        decode_image(data)
    assert info.value.kind is ErrorKind.IMAGE_TOO_LARGE


def test_16_bit_grayscale_png_keeps_its_contrast():
    values = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    data = encode(Image.fromarray(values), "PNG")
    try:
        image = decode_image(data)
    except ImageError as exc:  # refusing 16-bit input outright would be acceptable too
        assert exc.kind is ErrorKind.UNSUPPORTED_FORMAT
        return
    decoded = np.asarray(image)[..., 0].astype(int)
    np.testing.assert_allclose(decoded, values >> 8, atol=1)


@pytest.mark.parametrize("k", range(len(DIHEDRAL)))
def test_the_array_views_of_a_batch_are_the_image_views(k):
    batch = np.random.default_rng(k).integers(0, 255, (2, 5, 7, 3), dtype=np.uint8)  # not square
    each = np.stack([np.asarray(dihedral_view(Image.fromarray(image), k)) for image in batch])
    np.testing.assert_array_equal(dihedral_views(batch, k), each)
