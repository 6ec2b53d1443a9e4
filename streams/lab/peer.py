"""Peer comparison: anomalib's PaDiM and PatchCore on the same images as latentline.

An optional extra for putting latentline next to the published state of the art in one table;
never a runtime dependency and never run in CI. Install with
``pip install -c constraints.txt 'latentline[compare]'``, then
``python -m latentline.streams.lab.peer --data DIR --out var/peer.json``.

The numbers come from anomalib's own algorithm code (``PadimModel``'s Gaussian fit and
Mahalanobis map, ``PatchcoreModel``'s k-center-greedy coreset and nearest-neighbour score),
driven by a plain torch loop instead of anomalib's Lightning engine: on a CPU the engine adds
minutes of overhead and nothing to the result. Two things differ from anomalib's defaults so
that the comparison is like for like and works offline:

- backbone: torchvision's MobileNetV2 with ImageNet weights (the one checkpoint available
  offline, seeded by ``python -m latentline.streams.lab.weights``), handed to anomalib as an ``nn.Module``
  (anomalib's timm weights cannot be downloaded here). Layers ``features.6`` and
  ``features.13`` (strides 8 and 16, 32 + 96 channels): latentline's mid-level map layers.
- images: decoded and resized exactly as latentline does (``decode_image``, RGB, bilinear to a
  square), then ImageNet-normalised as both anomalib and latentline do.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from latentline.models.dataset import GOOD, evenly_spaced, list_images
from latentline.models.encoding import compat  # noqa: F401  # makes torchvision importable before anomalib loads it
from latentline.models.encoding.images import decode_image

BACKBONE = "mobilenet_v2"
LAYERS = ["features.6", "features.13"]
BATCH_SIZE = 16  # the throughput batch, and the batch for fitting
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INSTALL_HINT = "pip install -c constraints.txt 'latentline[compare]'"


def _anomalib():
    """Import anomalib lazily: it is an optional extra, not a dependency of latentline."""
    try:
        import anomalib
    except ImportError as exc:
        raise ImportError(f"anomalib is not installed; {INSTALL_HINT}") from exc
    return anomalib


def load_images(paths: list[Path], image_size: int) -> np.ndarray:
    """uint8 [N, S, S, 3]: the same decode and resize as latentline's encoder (``prepare``)."""
    from PIL import Image

    size = (image_size, image_size)
    resized = [decode_image(p.read_bytes()).resize(size, Image.Resampling.BILINEAR) for p in paths]
    return np.stack([np.asarray(image, np.uint8) for image in resized])


def _to_input(batch: np.ndarray):
    """uint8 NHWC -> normalised float NCHW; inside the timed loop, as latentline's encoder does."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).float() / 255
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def build_model(method: str, device: str):
    """anomalib's torch model for ``method`` around an offline torchvision MobileNetV2."""
    import torchvision
    from anomalib.models.image.padim.torch_model import PadimModel
    from anomalib.models.image.patchcore.torch_model import PatchcoreModel

    # anomalib's TimmFeatureExtractor takes an nn.Module in place of a timm name and wraps it in
    # torchvision's create_feature_extractor; pre_trained is then moot (the module has weights).
    backbone = torchvision.models.mobilenet_v2(weights="IMAGENET1K_V1").eval()
    if method == "padim":
        # PaDiM keeps a random subset of channels (100 of 448 for resnet18); MobileNetV2's
        # two layers have only 128 in all, so keep them all.
        model = PadimModel(backbone=backbone, layers=list(LAYERS), n_features=32 + 96)
    elif method == "patchcore":
        model = PatchcoreModel(layers=list(LAYERS), backbone=backbone, num_neighbors=9)
    else:
        raise ValueError(f"method must be 'padim' or 'patchcore', not {method!r}")
    return model.to(device)


def fit(model, method: str, train: np.ndarray, coreset_ratio: float, device: str) -> dict:
    """One pass over the good images (anomalib stores the embeddings in training mode), then
    anomalib's own fit: a Gaussian per position (PaDiM) or the coreset (PatchCore)."""
    import torch

    started = time.perf_counter()
    model.train()  # anomalib's models collect embeddings when training, score when not
    with torch.no_grad():
        for index in range(0, len(train), BATCH_SIZE):
            model(_to_input(train[index : index + BATCH_SIZE]).to(device))
    extracted = time.perf_counter()
    if method == "padim":
        model.fit()
    else:
        model.subsample_embedding(coreset_ratio)
    done = time.perf_counter()
    model.eval()
    step = "gaussian" if method == "padim" else "coreset"
    return {"features": extracted - started, step: done - extracted}


def score(model, images: np.ndarray, device: str) -> tuple[np.ndarray, float]:
    """Image scores (anomalib's ``pred_score``) and images per second for the model alone."""
    import torch

    with torch.no_grad():
        # Warm-up on both batch shapes the loop will see: a first call per shape sets up kernels.
        model(_to_input(images[:BATCH_SIZE]).to(device))
        if len(images) % BATCH_SIZE:
            model(_to_input(images[-(len(images) % BATCH_SIZE) :]).to(device))
        scores = []
        started = time.perf_counter()
        for index in range(0, len(images), BATCH_SIZE):
            output = model(_to_input(images[index : index + BATCH_SIZE]).to(device))
            scores.append(output.pred_score.float().cpu())
        seconds = time.perf_counter() - started
    return torch.cat(scores).numpy(), len(images) / seconds


def backbone_rate(model, images: np.ndarray, device: str) -> float:
    """Images per second through the backbone's two layers alone, in the same run: machines are
    noisy, so the table can compare anomalib's rate over this rather than raw rates."""
    import torch

    with torch.no_grad():
        model.feature_extractor(_to_input(images[:BATCH_SIZE]).to(device))  # warm-up
        started = time.perf_counter()
        for index in range(0, len(images), BATCH_SIZE):
            model.feature_extractor(_to_input(images[index : index + BATCH_SIZE]).to(device))
    return len(images) / (time.perf_counter() - started)


def auroc_by_type(labels: np.ndarray, scores: np.ndarray) -> tuple[float, dict[str, float]]:
    """Image AUROC over all defects, and of each defect type against the good images, as
    models/evaluation/report.py reports latentline's."""
    from sklearn.metrics import roc_auc_score

    good = labels == GOOD
    per_type = {}
    for label in sorted(set(labels) - {GOOD}):
        keep = good | (labels == label)
        per_type[label] = float(roc_auc_score(labels[keep] == label, scores[keep]))
    return float(roc_auc_score(~good, scores)), per_type


def run_anomalib(
    data_dir: Path,
    method: str,
    image_size: int = 224,
    max_train: int | None = None,
    coreset_ratio: float = 0.01,
    device: str = "cpu",
) -> dict:
    """Fit anomalib's ``method`` on train/good, score test/, and return one row of the table."""
    anomalib = _anomalib()
    import torch

    torch.manual_seed(0)  # PaDiM's channel order and PatchCore's first coreset point are random
    train_paths = evenly_spaced([item.path for item in list_images(data_dir, "train", GOOD)], max_train)
    test_items = list_images(data_dir, "test")
    train = load_images(train_paths, image_size)
    test = load_images([item.path for item in test_items], image_size)
    labels = np.array([item.label for item in test_items])

    model = build_model(method, device)
    breakdown = fit(model, method, train, coreset_ratio, device)
    scores, rate = score(model, test, device)
    image_auroc, per_type = auroc_by_type(labels, scores)
    return {
        "library": f"anomalib {anomalib.__version__}",
        "method": method,
        "backbone": BACKBONE,
        "layers": list(LAYERS),
        "image_size": image_size,
        "coreset_ratio": coreset_ratio if method == "patchcore" else None,
        "n_train": len(train),
        "n_test": len(test),
        "image_auroc": image_auroc,
        "image_auroc_by_type": per_type,
        "pixel_auroc": None,  # the dataset has no pixel masks
        "fit_seconds": sum(breakdown.values()),
        "fit_breakdown_seconds": breakdown,
        "images_per_second": rate,
        "backbone_images_per_second": backbone_rate(model, test, device),
        "batch_size": BATCH_SIZE,
        "device": device,
        "torch_threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="MVTec AD layout (train/good, test/*)")
    parser.add_argument("--out", type=Path, default=Path("var/peer.json"))
    parser.add_argument("--methods", nargs="+", default=["padim", "patchcore"],
                        choices=["padim", "patchcore"])
    parser.add_argument("--image-size", type=int, nargs="+", default=[224])
    parser.add_argument("--max-train", type=int, default=None, help="cap on train/good images")
    parser.add_argument("--coreset-ratio", type=float, default=0.01)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    rows = []
    for image_size in args.image_size:
        for method in args.methods:
            rows.append(run_anomalib(args.data, method, image_size, args.max_train,
                                     args.coreset_ratio, args.device))
            print(json.dumps(rows[-1]), flush=True)
            # Written after every row: a long PatchCore run that is stopped keeps what was done.
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
