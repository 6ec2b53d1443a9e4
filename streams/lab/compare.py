"""``latentline compare``: every anomaly method side by side on one dataset, with anomalib's
PaDiM and PatchCore next to them when the optional ``compare`` extra is installed.

One table (JSON and Markdown): image AUROC, pixel AUROC, fit seconds, images per second. The
rate is the bare model on images already decoded and resized (encoder + scorer at batch 16),
the same basis streams/lab/peer.py measures anomalib on. Slow: not part of the tests.
"""

import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from latentline.models.dataset import list_images
from latentline.models.encoding.config import EncoderConfig
from latentline.models.encoding.images import decode_image
from latentline.models.evaluation.report import evaluate
from latentline.models.inspector import Inspector
from latentline.models.scoring.registry import make_scorer
from latentline.models.training.fit import TypeOptions, fit_bundle

log = logging.getLogger(__name__)

METHODS = ("mahalanobis", "padim", "patchcore", "cascade", "autoencoder", "vae")
BATCH = 16


def compare(data_dir: Path, methods=METHODS, encoder: EncoderConfig = EncoderConfig(), device: str = "auto",
            peers: bool = True, max_train: int | None = None, rate_images: int = 256) -> list[dict]:
    """``max_train``: the same evenly spaced good training images for every row (anomalib's
    greedy coreset needs hours for all of deeppcb-patches on a CPU)."""
    rows = [latentline_row(data_dir, method, encoder, device, max_train, rate_images) for method in methods]
    if peers:
        rows += peer_rows(data_dir, encoder.image_size, max_train)
    return rows


def latentline_row(data_dir: Path, method: str, encoder: EncoderConfig, device: str, max_train: int | None,
                   rate_images: int) -> dict:
    started = time.perf_counter()
    bundle = fit_bundle(data_dir, encoder, make_scorer(method), device=device, max_images=max_train,
                        types=TypeOptions(enabled=False))
    fit_seconds = time.perf_counter() - started
    inspector = Inspector(bundle, device=device)
    with tempfile.TemporaryDirectory() as report:
        metrics = evaluate(inspector, data_dir, Path(report), progress=False)
    return {"library": "latentline", "method": method, "backbone": encoder.backbone,
            "image_size": encoder.image_size, "n_train": bundle.training["n_images"],
            "n_test": metrics["n_test"], "image_auroc": metrics["image_auroc"],
            "pixel_auroc": metrics["pixel_auroc"], "fit_seconds": fit_seconds,
            "images_per_second": bare_rate(inspector, data_dir, rate_images)}


def bare_rate(inspector: Inspector, data_dir: Path, count: int) -> float:
    """Images per second of encoder + scorer on decoded, resized images, batch 16."""
    paths = [item.path for item in list_images(data_dir, "test")][:count]
    images = np.stack([inspector.prepare(decode_image(p.read_bytes())) for p in paths])
    inspector.infer(images[:BATCH])  # warm-up: the first call allocates
    started = time.perf_counter()
    for start in range(0, len(images), BATCH):
        inspector.infer(images[start : start + BATCH])
    return len(images) / (time.perf_counter() - started)


def peer_rows(data_dir: Path, image_size: int, max_train: int | None) -> list[dict]:
    try:
        from latentline.streams.lab.peer import run_anomalib
    except ImportError as exc:
        log.warning("anomalib comparison skipped: %s", exc)
        return []
    rows = []
    for method in ("padim", "patchcore"):
        try:
            rows.append(run_anomalib(data_dir, method, image_size=image_size, max_train=max_train))
        except ImportError as exc:  # the optional extra is not installed
            log.warning("anomalib comparison skipped: %s", exc)
            return rows
    return rows


def markdown(rows: list[dict]) -> str:
    def cell(value) -> str:
        return "n/a" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)

    columns = ("library", "method", "image_auroc", "pixel_auroc", "fit_seconds", "images_per_second")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_comparison(rows: list[dict], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(rows))
