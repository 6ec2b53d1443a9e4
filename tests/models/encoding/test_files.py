"""encode_files over images of several shapes (models/encoding/files.py)."""

import numpy as np
import pytest
import torch
from PIL import Image

from models.encoding.config import EncoderConfig
from models.encoding.encoder import PooledEncoder
from models.encoding.files import encode_files
from models.errors import UserInputError

SIZE = 32


@pytest.fixture(scope="module")
def encoder() -> PooledEncoder:
    torch.manual_seed(0)
    return PooledEncoder(EncoderConfig(weights=None, image_size=SIZE, precision="fp32"), device="cpu")


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i, (width, height) in enumerate([(40, 40), (160, 40), (40, 40), (160, 40)]):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8)).save(paths[-1])
    return paths


def test_squares_and_strips_encode_in_their_order(encoder, files):
    together = encode_files(encoder, files, batch_size=4, progress=False)
    one_by_one = [encode_files(encoder, [path], progress=False).full[0] for path in files]
    np.testing.assert_allclose(together.full, np.stack(one_by_one), rtol=1e-4, atol=1e-5)


def test_feature_maps_of_a_set_must_share_one_tiling(encoder, files):
    assert encode_files(encoder, files[1::2], maps=True, progress=False).maps.shape[2:] == (28, 4 * 28)
    with pytest.raises(UserInputError, match="one tiling"):
        encode_files(encoder, files, maps=True, progress=False)
