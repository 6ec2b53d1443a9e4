"""The autoencoders after Soukup and Pinetz (models/scoring/autoencoder/) and their scorers, on small
synthetic images."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.metrics import roc_auc_score

from latentline.models.latents import Latents
from latentline.models.scoring.autoencoder.ae import AutoencoderScorer
from latentline.models.scoring.autoencoder.networks import (
    ConvAutoencoder,
    ConvVAE,
    kl_divergence,
    prepare_pixels,
    train,
)
from latentline.models.scoring.autoencoder.vae import VAEScorer

SIZE = 32
SPOT = 3
FAST = {"image_size": SIZE, "epochs": 8, "batch_size": 16}
CPU = torch.device("cpu")


def textures(n: int, seed: int, brightness: int = 160) -> np.ndarray:
    """Smooth random colour textures, uint8 [n, SIZE, SIZE, 3]: coarse noise, upsampled. Brighter
    than mid-grey by default, so an untrained network (sigmoid output 0.5) starts far from them."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.normal(size=(n, 3, 4, 4)).astype(np.float32))
    smooth = F.interpolate(coarse, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    return (brightness + 30 * smooth).clamp(0, 255).byte().permute(0, 2, 3, 1).numpy().copy()


def with_spots(images: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A bright SPOT x SPOT square at a random place in each image; returns the images and centres."""
    rng = np.random.default_rng(seed)
    spotted, centres = images.copy(), rng.integers(6, SIZE - 6, size=(len(images), 2))
    for image, (row, col) in zip(spotted, centres):
        image[row - 1 : row - 1 + SPOT, col - 1 : col - 1 + SPOT] = 255
    return spotted, centres


def latents(pixels: np.ndarray) -> Latents:
    empty = np.zeros((len(pixels), 1), np.float32)
    return Latents(empty, empty, None, pixels)


@pytest.fixture(scope="module")
def data():
    # darker than the loss test's textures: the bright spots stand out more
    bad, centres = with_spots(textures(32, seed=2, brightness=100), seed=3)
    return {"train": latents(textures(64, seed=0, brightness=100)),
            "good": latents(textures(32, seed=1, brightness=100)),
            "bad": latents(bad), "centres": centres}


@pytest.fixture(scope="module", params=[AutoencoderScorer, VAEScorer], ids=lambda cls: cls.name)
def fitted(request, data):
    return request.param(**FAST).fit(data["train"])


# --- networks and training ---------------------------------------------------------------------

@pytest.mark.parametrize("cls", [ConvAutoencoder, ConvVAE])
def test_network_shapes_and_range(cls):
    network = cls(image_size=SIZE, latent_dim=8).eval()
    x = torch.rand(5, 3, SIZE, SIZE)
    assert network.encode(x).shape == (5, 8)
    reconstruction = network(x)
    assert reconstruction.shape == x.shape
    assert reconstruction.min() >= 0 and reconstruction.max() <= 1


def test_image_size_must_fit_the_strides():
    with pytest.raises(ValueError, match="multiple"):
        ConvAutoencoder(image_size=40)
    with pytest.raises(ValueError, match="multiple"):
        AutoencoderScorer(image_size=8)


def test_prepare_pixels_area_resizes_to_unit_range():
    pixels = np.zeros((2, 8, 8, 3), np.uint8)
    pixels[:, :4, :4] = 255  # one 2x2 output cell is white
    x = prepare_pixels(pixels, 4, CPU)
    assert x.shape == (2, 3, 4, 4) and x.dtype == torch.float32
    assert torch.equal(x[:, :, :2, :2], torch.ones(2, 3, 2, 2)) and x[:, :, 2:, 2:].sum() == 0
    assert prepare_pixels(pixels[:0], 4, CPU).shape == (0, 3, 4, 4)


@pytest.mark.parametrize("cls", [ConvAutoencoder, ConvVAE])
def test_training_lowers_the_loss_and_reports_every_epoch(cls):
    # the initial weights come from the global generator: seed it, or the ratio below wanders
    # (0.32 to 0.53 of the first epoch's loss over initialisations)
    torch.manual_seed(1)
    network = cls(image_size=SIZE, latent_dim=16)
    history = train(network, textures(64, seed=0), epochs=6, batch_size=8, lr=3e-3, seed=0, device=CPU)
    assert len(history["train_loss"]) == len(history["val_loss"]) == 6
    assert history["train_loss"][-1] < 0.7 * history["train_loss"][0]
    assert np.isfinite(history["val_loss"]).all()
    assert not network.training


def test_training_is_seeded_and_leaves_the_global_rng_alone():
    images = textures(32, seed=0)
    states = []
    for _ in range(2):
        torch.manual_seed(123)
        network = ConvVAE(image_size=SIZE, latent_dim=8)
        train(network, images, epochs=2, batch_size=8, seed=7, device=CPU)
        assert torch.equal(torch.random.get_rng_state(), _rng_state_after_init(123))
        states.append(network.state_dict())
    for key, value in states[0].items():
        torch.testing.assert_close(value, states[1][key])


def _rng_state_after_init(seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    ConvVAE(image_size=SIZE, latent_dim=8)
    return torch.random.get_rng_state()


def test_kl_divergence_is_zero_at_the_prior_and_positive_elsewhere():
    zeros = torch.zeros(3, 4)
    torch.testing.assert_close(kl_divergence(zeros, zeros), torch.zeros(3))
    assert (kl_divergence(zeros + 1.0, zeros) > 0).all()
    assert (kl_divergence(zeros, zeros - 2.0) > 0).all()


def test_too_few_images_to_hold_out_give_nan_validation():
    history = train(ConvAutoencoder(image_size=16, latent_dim=4), textures(1, 0)[:, :16, :16], epochs=2,
                    device=CPU)
    assert len(history["train_loss"]) == 2 and np.isnan(history["val_loss"]).all()


# --- scorers -------------------------------------------------------------------------------------

def test_defaults_score_the_reconstruction():
    # as in Soukup and Pinetz: the reconstruction error is the reliable one; the KL score stays in score_parts
    assert AutoencoderScorer().score_from == VAEScorer().score_from == "reconstruction"
    for cls in (AutoencoderScorer, VAEScorer):
        assert cls.needs_pixels and not cls.needs_maps
        assert cls(**json.loads(json.dumps(cls().get_params()))).get_params() == cls().get_params()
    with pytest.raises(ValueError, match="score_from"):
        AutoencoderScorer(score_from="decoder")


def test_spots_score_higher(fitted, data):
    good, bad = fitted.score_parts(data["good"]), fitted.score_parts(data["bad"])
    labels = np.r_[np.zeros(len(data["good"])), np.ones(len(data["bad"]))]
    assert roc_auc_score(labels, np.r_[good["reconstruction"], bad["reconstruction"]]) > 0.9


def test_score_parts_and_score_agree(fitted, data):
    parts = fitted.score_parts(data["good"])
    assert set(parts) == {"reconstruction", "latent"}
    for values in parts.values():
        assert values.shape == (len(data["good"]),) and np.isfinite(values).all() and (values >= 0).all()
    np.testing.assert_allclose(fitted.score(data["good"]), parts[fitted.score_from], rtol=1e-6)
    assert fitted.score(latents(data["good"].pixels[:0])).shape == (0,)


def test_map_peaks_at_the_spot(fitted, data):
    maps = fitted.anomaly_maps(data["bad"])
    assert maps.shape == (len(data["bad"]), SIZE, SIZE) and (maps >= 0).all()
    peaks = np.array(np.unravel_index(maps.reshape(len(maps), -1).argmax(axis=1), (SIZE, SIZE))).T
    distance = np.abs(peaks - data["centres"]).max(axis=1)
    assert np.mean(distance <= 2) >= 0.9


def test_any_square_input_size(fitted, data):
    """The encoder may prepare any square size; the scorer resizes to its own."""
    larger = np.repeat(np.repeat(data["good"].pixels[:4], 3, axis=1), 3, axis=2)  # 96 px
    assert fitted.score(latents(larger)).shape == (4,)
    assert fitted.anomaly_maps(latents(larger)).shape == (4, SIZE, SIZE)


def test_history_and_npz_round_trip(fitted, data, tmp_path):
    assert len(fitted.history_["train_loss"]) == FAST["epochs"]
    np.savez(tmp_path / "scorer.npz", **fitted.to_arrays())
    with np.load(tmp_path / "scorer.npz", allow_pickle=False) as stored:
        restored = type(fitted).from_arrays(json.loads(json.dumps(fitted.get_params())), dict(stored))
    for part, values in fitted.score_parts(data["bad"]).items():
        np.testing.assert_array_equal(restored.score_parts(data["bad"])[part], values)
    np.testing.assert_array_equal(restored.anomaly_maps(data["bad"]), fitted.anomaly_maps(data["bad"]))
    assert restored.history_ == fitted.history_


def test_refit_with_the_same_seed_reproduces_scores(fitted, data):
    again = type(fitted)(**fitted.get_params()).fit(data["bad"]).fit(data["train"])
    for part, values in fitted.score_parts(data["good"]).items():
        np.testing.assert_allclose(again.score_parts(data["good"])[part], values, rtol=1e-4, atol=1e-6)


def test_pixels_are_required():
    empty = np.zeros((2, 1), np.float32)
    with pytest.raises(ValueError, match="pixels"):
        AutoencoderScorer(**FAST).fit(Latents(empty, empty))


def test_codes_measure_and_decode_along_a_direction(tmp_path):
    """Autoencoder bundles measure in the code space; walking along a calibrated direction and
    decoding shows the quantity (models/evaluation/plots/measurement.py draws that strip). The quantity
    here is brightness, which a small autoencoder trained on varied brightness must encode."""
    from latentline.models.evaluation.plots import measurement as measurement_plots
    from latentline.models.metrology.measurement import default_space, features
    from latentline.models.metrology.quantity import QuantityScale

    brightness = np.linspace(60, 200, 80)
    images = np.stack([textures(1, seed=int(i), brightness=int(b))[0] for i, b in enumerate(brightness)])
    scorer = AutoencoderScorer(image_size=SIZE, latent_dim=8, epochs=30, batch_size=16).fit(latents(images))
    assert default_space(scorer) == "code"
    codes = features(scorer, latents(images), "code")
    assert codes.shape == (80, 8) and codes.dtype == np.float32
    scale = QuantityScale("brightness", "grey", space="code", degrees=(1,), ridge_alpha=1.0)
    scale.fit(codes, brightness)
    walked, values = scale.walk(4)
    decoded = scorer.decode_codes(walked)
    assert decoded.shape == (4, SIZE, SIZE, 3) and decoded.dtype == np.uint8
    assert np.all(np.diff([d.mean() for d in decoded]) > 0)  # the walk goes from dark to bright
    paths = []
    for k, image in enumerate(images):
        paths.append(tmp_path / f"{k}.png")
        Image.fromarray(image).save(paths[-1])
    measured = scale.measure(codes)
    measurement_plots.write_all(tmp_path, scale, measured, brightness, scale.position(codes), paths, scorer)
    for name in ("measurement_brightness", "sorted_brightness", "decoded_brightness"):
        assert (tmp_path / f"{name}.png").stat().st_size > 5_000
