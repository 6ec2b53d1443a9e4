"""PooledEncoder with random weights (no downloads), and device/precision selection."""

import numpy as np
import pytest
import torch
from PIL import Image

from latentline.models.encoding.config import DEFAULT_LAYERS, EncoderConfig
from latentline.models.encoding.device import autocast, resolve_precision, select_device
from latentline.models.encoding.encoder import PooledEncoder

SIZE = 64
MOBILENET_DIM = 32 + 96 + 1280  # features.6, features.13, features.18
RESNET18_DIM = 128 + 256  # layer2, layer3


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny inputs: threads buy nothing and, on a busy small CPU, spinning workers cost seconds."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(a))


@pytest.fixture(scope="module")
def encoder() -> PooledEncoder:
    torch.manual_seed(0)
    return PooledEncoder(EncoderConfig(weights=None, image_size=SIZE, precision="fp32"), device="cpu")


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(4, SIZE, SIZE, 3), dtype=np.uint8)


def test_prepare_resizes_to_uint8_rgb(encoder):
    for image in (Image.new("L", (112, 64), 128), Image.new("RGBA", (30, 500)), Image.new("RGB", (64, 64))):
        array = encoder.prepare(image)
        assert array.dtype == np.uint8
        assert array.shape == (SIZE, SIZE, 3)  # one tile: every image squashed to it
    gray = encoder.prepare(Image.new("L", (112, 64), 128))
    assert (gray == 128).all()


def test_a_strip_is_tiles_side_by_side_with_a_patch_grid_each():
    torch.manual_seed(0)
    config = EncoderConfig(weights=None, image_size=SIZE, precision="fp32").with_tiles_for([(512, 64)])
    strips = PooledEncoder(config, device="cpu")
    assert config.tiles == (8, 1) and strips.prepare(Image.new("L", (500, 60))).shape == (SIZE, 8 * SIZE, 3)
    latents = strips.encode_views(np.stack([strips.prepare(Image.new("L", (512, 64)))] * 2), maps=True)
    assert latents.maps.shape == (2, 32 + 96, 28, 8 * 28)
    assert latents.full.shape == (2, MOBILENET_DIM)  # pooled views stay one vector per image


def test_a_bundle_saved_before_tiling_reads_as_one_tile():
    old = EncoderConfig().to_dict()
    assert "tiles" not in old  # the same manifest, hence the same key, as before tiling existed
    assert EncoderConfig.from_dict(old).input_size() == (320, 320)
    for tiles in ((4, 1), (1, 1)):
        assert EncoderConfig.from_dict(EncoderConfig(tiles=tiles).to_dict()).tiles == tiles


def test_default_layers_resolved():
    config = EncoderConfig(weights=None)
    assert config.resolved_layers() == DEFAULT_LAYERS["mobilenet_v2"]
    assert config.to_dict()["layers"] == list(DEFAULT_LAYERS["mobilenet_v2"])
    custom = EncoderConfig(weights=None, layers=("features.18",))
    assert custom.resolved_layers() == ("features.18",)


def test_encode_shape_dtype_and_determinism(encoder, batch):
    first = encoder.encode(batch)
    assert first.dtype == np.float32
    assert first.shape == (len(batch), MOBILENET_DIM)
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(encoder.encode(batch), first)
    # distinct images give distinct latents
    assert not np.allclose(first[0], first[1])


def test_encode_is_per_image(encoder, batch):
    """Eval mode: an image's latent does not depend on the rest of the batch."""
    together = encoder.encode(batch)
    alone = encoder.encode(batch[2:3])
    np.testing.assert_allclose(alone[0], together[2], rtol=1e-4, atol=1e-5)


def test_encode_accepts_prepared_images(encoder):
    images = [Image.new("RGB", (80, 50), (10 * i, 100, 200)) for i in range(3)]
    latents = encoder.encode(np.stack([encoder.prepare(im) for im in images]))
    assert latents.shape == (3, MOBILENET_DIM)


def test_bf16_close_to_fp32(batch):
    torch.manual_seed(0)
    fp32 = PooledEncoder(EncoderConfig(weights=None, image_size=SIZE, precision="fp32"), device="cpu")
    torch.manual_seed(0)
    bf16 = PooledEncoder(EncoderConfig(weights=None, image_size=SIZE, precision="bf16"), device="cpu")
    a = fp32.encode(batch)
    b = bf16.encode(batch)
    assert b.dtype == np.float32  # pooled output is float32 whatever the compute precision
    assert b.shape == a.shape
    assert relative_difference(a, b) < 0.2
    assert not np.array_equal(a, b)  # bf16 really ran


def test_resnet18_layers():
    torch.manual_seed(0)
    config = EncoderConfig(backbone="resnet18", weights=None, image_size=SIZE, precision="fp32")
    encoder = PooledEncoder(config, device="cpu")
    batch = np.random.default_rng(1).integers(0, 256, size=(2, SIZE, SIZE, 3), dtype=np.uint8)
    latents = encoder.encode(batch)
    assert latents.shape == (2, RESNET18_DIM)
    assert latents.dtype == np.float32
    assert np.isfinite(latents).all()


def test_select_device():
    assert select_device("cpu") == torch.device("cpu")
    assert select_device("cuda:1") == torch.device("cuda", 1)


def test_select_device_auto_without_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device("auto") == torch.device("cpu")
    assert select_device() == torch.device("cpu")


def test_select_device_auto_with_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device("auto") == torch.device("cuda")


def test_autocast_fp16_on_cpu_raises():
    with pytest.raises(ValueError, match="fp16"):
        autocast(torch.device("cpu"), "fp16")


def test_autocast_precisions_on_cpu():
    cpu = torch.device("cpu")
    x = torch.ones(2, 2)
    with autocast(cpu, "fp32"):
        assert (x @ x).dtype == torch.float32
    with autocast(cpu, "bf16"):
        assert (x @ x).dtype == torch.bfloat16


def test_fp16_encoder_on_cpu_fails_loudly(batch):
    encoder = PooledEncoder(EncoderConfig(weights=None, image_size=SIZE, precision="fp16"), device="cpu")
    with pytest.raises(ValueError, match="fp16"):
        encoder.encode(batch)


def test_feature_maps_on_the_fixed_grid(encoder, batch):
    """At 64 px features.6 is 8 x 8 and features.13 4 x 4: both come out on the 28 x 28 grid
    (the coarser upsampled), one patch vector of both layers' channels per grid cell."""
    latents = encoder.encode_views(batch, maps=True)
    assert latents.maps.shape == (len(batch), 32 + 96, 28, 28)
    assert latents.maps.dtype == np.float32 and np.isfinite(latents.maps).all()
    assert latents.pixels is None
    np.testing.assert_array_equal(latents.full, encoder.encode(batch))  # maps change nothing pooled


@pytest.mark.parametrize("grid, side", [(4, 4), (None, 4), (6, 6)])
def test_feature_map_grid_is_configurable(batch, grid, side):
    """A finer layer is area-pooled down, a coarser one interpolated up; None keeps the coarsest."""
    torch.manual_seed(0)
    config = EncoderConfig(weights=None, image_size=SIZE, precision="fp32", map_grid=grid)
    maps = PooledEncoder(config, device="cpu").encode_views(batch, maps=True, pixels=True)
    assert maps.maps.shape == (len(batch), 32 + 96, side, side)
    np.testing.assert_array_equal(maps.pixels, batch)


def test_auto_precision_is_resolved_to_what_the_device_computes_natively():
    encoder = PooledEncoder(EncoderConfig(weights=None, image_size=SIZE), device="cpu")
    native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert encoder.config.precision == ("bf16" if native else "fp32")
    assert resolve_precision(torch.device("cpu"), "fp32") == "fp32"  # an explicit choice stands


def test_maps_can_stay_on_the_device(encoder, batch):
    """``maps_on_device``: the same maps, as a tensor where the encoder ran (for the GPU search)."""
    import torch

    host = encoder.encode_views(batch, maps=True)
    kept = encoder.encode_views(batch, maps=True, maps_on_device=True)
    assert torch.is_tensor(kept.maps) and kept.maps.device == encoder.device
    np.testing.assert_array_equal(kept.maps.numpy(), host.maps)
    np.testing.assert_array_equal(kept.full, host.full)


def test_forward_passes_of_a_few_images_give_the_whole_batch_latents(batch):
    """``forward_batch``: the batch runs in passes of that many images, to the same latents (a
    CPU whose caches 16 images overflow can be faster that way: docs/speed.md)."""
    torch.manual_seed(0)
    encoder = PooledEncoder(EncoderConfig(weights=None, image_size=SIZE, precision="fp32"), device="cpu")
    whole = encoder.encode_views(batch, maps=True)
    for size in (1, 3):
        encoder.forward_batch = size
        passes = encoder.encode_views(batch, maps=True)
        for part in ("full", "centre", "maps"):
            np.testing.assert_allclose(getattr(passes, part), getattr(whole, part), rtol=1e-4, atol=1e-5)
        kept = encoder.encode_views(batch, maps=True, maps_on_device=True)
        assert torch.is_tensor(kept.maps) and kept.maps.shape == whole.maps.shape


def test_the_fastest_forward_pass_is_measured_among_powers_of_two(batch):
    torch.manual_seed(0)
    encoder = PooledEncoder(EncoderConfig(weights=None, image_size=SIZE, precision="fp32"), device="cpu")
    chosen = encoder.fastest_forward_batch(batch[0], 6, maps=True)
    assert chosen in (1, 2, 4) and encoder.forward_batch == chosen
    assert len(encoder.encode_views(batch, maps=True)) == len(batch)
