"""The lab commands' model: one bundle per dataset in the cache folder, fitted with the default
``fit`` on first use and refitted when the dataset's good images, this machine's native
precision or the fit's defaults changed. Apart from the demo, so that the bench can measure a
model on a machine without the broker and object store installed (``latentline bench
--model-only``)."""

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from rich.console import Console

from latentline.models.bundle import ModelBundle
from latentline.models.dataset import fingerprint, list_images
from latentline.models.defect_types.type_network import TypeNetwork
from latentline.models.encoding.config import EncoderConfig
from latentline.models.encoding.device import resolve_precision, select_device
from latentline.models.scoring.registry import make_scorer
from latentline.models.training.fit import TypeOptions, fit_bundle

console = Console(stderr=True)


def ensure_model(data_dir: Path, cache_dir: Path) -> Path:
    """The cached bundle for this dataset, refitted when train/good changed, when it was fitted
    at a precision this machine only emulates (a bf16 bundle on an AVX2 CPU) or with other
    defaults than the present ones."""
    target = cache_dir / "models" / f"{data_dir.resolve().name}"
    train = [item.path for item in list_images(data_dir, "train", "good")]
    if ModelBundle.is_bundle(target) and _still_fits(target, train):
        console.print(f"model: cached bundle in {target}")
        return target
    console.print(f"fitting a model on {len(train)} good images of {data_dir}")
    bundle = fit_bundle(data_dir)
    bundle.training["lab_defaults"] = defaults_key()
    return bundle.save(target)


def defaults_key() -> str:
    """A digest of what the default ``fit`` builds: the encoder, the scorer, the type options
    and the type network, each as its parameters."""
    defaults = {"encoder": EncoderConfig().to_dict(), "scorer": make_scorer().get_params(),
                "types": asdict(TypeOptions()), "type_network": TypeNetwork().get_params()}
    return hashlib.sha256(json.dumps(defaults, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _still_fits(target: Path, train: list[Path]) -> bool:
    try:
        bundle = ModelBundle.load(target)
    except (ValueError, KeyError, OSError):  # an older bundle format: refit
        return False
    native = resolve_precision(select_device("auto"), "auto")
    return (bundle.training.get("fingerprint") == fingerprint(train) and bundle.encoder.precision == native
            and bundle.training.get("lab_defaults") == defaults_key())
