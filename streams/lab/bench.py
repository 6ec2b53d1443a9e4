"""``latentline bench``: throughput as ratios measured in one run (the machines are noisy).

- bare model vs encoder: ``Inspector.infer`` (encode, score, maps, types, measurements) against
  the encoder's forward pass alone, at the worker's batch size and forward-pass size (measured
  at warm-up as the worker does, ``forward_batch``), at each defect share of DEFECT_SHARES;
- batched vs unbatched: the bare model at batch 1 and at the worker's batch size (share 0.2);
- pipeline vs bare model: events per second through broker, object store and worker (the demo
  path, share 0.2) against the bare model, and the latency from capture to verdict at half
  that rate;
- the nearest-neighbour searches (models/scoring/search.py) on the bundle's real bank and
  patches: speed and recall against the exact search;
- the bank-size sweep: scoring speed for the banks that 500, 1,500 and 5,000 good images give.

``model_only`` leaves the pipeline out, and with it the broker, the object store and their
clients: the model's figures alone, on a machine being sized (a GPU box) before the stack is
installed on it.
"""

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from latentline.models.bundle import ModelBundle
from latentline.models.dataset import at_defect_share, list_images
from latentline.models.encoding.images import decode_image
from latentline.models.inspector import Inspector
from latentline.models.latents import Latents
from latentline.models.scoring.base import patch_rows
from latentline.models.scoring.search import SEARCHES, faiss_available, make_search
from latentline.schemas import Decision
from latentline.streams.lab.cached_model import ensure_model
from latentline.streams.settings import Settings

GOOD_IMAGE_COUNTS = (500, 1500, 5000)
# defective parts among the images: a good line, a line with trouble, a burst where every part is
# defective (the defect types, above all the fine-tuned network, run on those parts alone)
DEFECT_SHARES = (0.02, 0.2, 1.0)
LINE_SHARE = 0.2  # the share batching, the CPU per image and the pipeline are measured at


def images_per_second(step, images: np.ndarray, batch_size: int) -> float:
    return rates(step, images, batch_size)[0]


def rates(step, images: np.ndarray, batch_size: int) -> tuple[float, float]:
    """``step(batch)`` over ``images`` in batches, after one warm-up call (it allocates): images
    per second, and CPU seconds (every thread of this process) per image."""
    step(images[:batch_size])
    started, cpu_started = time.perf_counter(), time.process_time()
    for index in range(0, len(images), batch_size):
        step(images[index : index + batch_size])
    cpu = (time.process_time() - cpu_started) / len(images)
    return len(images) / (time.perf_counter() - started), cpu


def model_rates(inspector: Inspector, images: np.ndarray, batch_size: int) -> dict:
    """The bare model against the encoder on ``images`` (one defect share), each measured right
    after the other, so that their ratio comes from the same minute of a shared machine."""
    inputs = inspector.encoder_inputs
    encoder = images_per_second(lambda b: inspector.encoder.encode_views(b, **inputs), images, batch_size)
    anomalous: list[bool] = []

    def infer(batch: np.ndarray) -> None:
        anomalous.extend(d is not Decision.OK for d in inspector.infer(batch).assessment.decisions)

    batched, cpu = rates(infer, images, batch_size)
    return {
        # the defect types (the fine-tuned network above all) are computed for these parts only
        "anomalous_share": float(np.mean(anomalous[-len(images):])),
        "bare_model_cpu_seconds_per_image": cpu,
        "encoder_only_images_per_second": encoder,
        "bare_model_batched_images_per_second": batched,
        "bare_model_over_encoder": batched / encoder,
    }


def rates_by_share(inspector: Inspector, data_dir: Path, count: int, batch_size: int) -> dict:
    """``model_rates`` at each of DEFECT_SHARES, and batched over unbatched at the line's share
    (LINE_SHARE): the work per batch must not grow with its slowest part."""
    items = list_images(data_dir, "test")
    by_share = {}
    for share in DEFECT_SHARES:
        images = prepared(inspector, at_defect_share(items, share, count))
        by_share[str(share)] = model_rates(inspector, images, batch_size)
        if share == LINE_SHARE:
            unbatched = images_per_second(inspector.infer, images[: max(batch_size, count // 4)], 1)
            by_share[str(share)]["bare_model_unbatched_images_per_second"] = unbatched
    line = by_share[str(LINE_SHARE)]
    return {
        "defect_shares": by_share,
        "bare_model_over_encoder_by_share": {k: v["bare_model_over_encoder"] for k, v in by_share.items()},
        "line_share": LINE_SHARE,
        "encoder_only_images_per_second": line["encoder_only_images_per_second"],
        "bare_model_batched_images_per_second": line["bare_model_batched_images_per_second"],
        "bare_model_unbatched_images_per_second": line["bare_model_unbatched_images_per_second"],
        "batched_over_unbatched": (line["bare_model_batched_images_per_second"]
                                   / line["bare_model_unbatched_images_per_second"]),
        "bare_model_cpu_seconds_per_image": line["bare_model_cpu_seconds_per_image"],
    }


def prepared(inspector: Inspector, items) -> np.ndarray:
    return np.stack([inspector.prepare(decode_image(i.path.read_bytes())) for i in items])


def search_rows(bank: np.ndarray, queries: np.ndarray, device) -> list[dict]:
    """Each available search on the real bank: queries per second and recall of the exact rows."""
    exact_rows, rows = None, []
    for name in SEARCHES:
        if name.startswith("faiss") and not faiss_available():
            continue
        search = make_search(name).fit(bank).to(device)
        search.search(queries[:1000])
        started = time.perf_counter()
        _, found = search.search(queries)
        seconds = time.perf_counter() - started
        exact_rows = found if name == "exact" else exact_rows
        rows.append({"search": name, "queries_per_second": len(queries) / seconds,
                     "recall_vs_exact": float((found == exact_rows).mean())})
    for row in rows:
        row["over_exact"] = row["queries_per_second"] / rows[0]["queries_per_second"]
    return rows


def bank_sweep(scorer, fitted_images: int, maps: np.ndarray, batch_size: int, device,
               seed: int = 0) -> list[dict]:
    """Scoring speed with the bank ``n`` good images would give (the real bank resampled with a
    little noise: the coreset keeps a fixed share of every image's patches)."""
    rng = np.random.default_rng(seed)
    bank = scorer.bank_
    per_image = len(bank) / fitted_images
    spread = bank.std(axis=0) * 0.05
    rows = []
    for good in GOOD_IMAGE_COUNTS:
        size = max(1, round(per_image * good))
        resampled = bank[rng.integers(0, len(bank), size)] + rng.normal(size=(size, bank.shape[1])) * spread
        sized = type(scorer).from_arrays(scorer.get_params(), {"bank": resampled.astype(np.float32)})
        sized.to(device)

        def score(b, sized=sized):
            sized.score_batch(Latents(np.zeros((len(b), 1)), np.zeros((len(b), 1)), b))

        rows.append({"good_images": good, "bank_rows": size,
                     "scoring_images_per_second": images_per_second(score, maps, batch_size)})
    return rows


def run_bench(data_dir: Path, settings: Settings, events: int = 400, images: int = 256,
              model_only: bool = False, model_dir: Path | None = None) -> dict:
    """Every figure of one run; ``model_dir``: the bundle to measure (the lab's cached model of
    ``data_dir`` by default, fitted with the present defaults when missing or stale)."""
    bundle = ModelBundle.load(model_dir or ensure_model(data_dir, settings.cache_dir))
    inspector = Inspector(bundle, device=settings.device)
    passes = inspector.warm_up(settings.forward_batch, settings.batch_max_size)  # as the worker does
    result = provenance() | {
              "device": str(inspector.encoder.device), "precision": bundle.encoder.precision,
              "model_version": bundle.version, "batch_size": settings.batch_max_size,
              "forward_batch": passes,
              "scorer": bundle.scorer.get_params()}
    result |= rates_by_share(inspector, data_dir, images, settings.batch_max_size)
    if hasattr(bundle.scorer, "bank_"):
        batch = prepared(inspector, list_images(data_dir, "test")[::8][:64])
        maps = inspector.encoder.encode_views(batch, maps=True).maps
        device = inspector.encoder.device
        result["searches"] = search_rows(bundle.scorer.bank_, patch_rows(maps), device)
        result["bank_sweep"] = bank_sweep(bundle.scorer, bundle.training["n_images"], maps,
                                          settings.batch_max_size, device)
    if model_only:
        return result
    result |= pipeline_rates(data_dir, settings, events, result["bare_model_batched_images_per_second"],
                             model_dir)
    if result["worker_cpu_seconds_per_event"]:  # the worker's own overhead, whatever shares its cores
        result["worker_cpu_over_bare_model_cpu"] = (result["worker_cpu_seconds_per_event"]
                                                     / result["bare_model_cpu_seconds_per_image"])
    return result


def pipeline_rates(data_dir: Path, settings: Settings, events: int, bare: float,
                   model_dir: Path | None = None) -> dict:
    """The demo path flat out, then at half that rate for the latency a steady line sees."""
    from latentline.streams.lab.demo import DemoOptions, run_demo  # the stack's clients: not for --model-only

    def options(**more) -> DemoOptions:
        return DemoOptions(data_dir, staged=True, defect_share=LINE_SHARE, model_dir=model_dir, **more)

    flat_out = run_demo(options(events=events), settings)
    half = flat_out.events_per_second / 2
    steady = run_demo(options(events=max(40, events // 2), rate=half), settings)
    return {
        "pipeline_events_per_second": flat_out.events_per_second,
        "pipeline_over_bare_model": flat_out.events_per_second / bare,
        "steady_rate_events_per_second": half,
        "steady_latency_p50_seconds": steady.latency_p50_seconds,
        "steady_latency_p99_seconds": steady.latency_p99_seconds,
        "worker_peak_rss_bytes": flat_out.worker_peak_rss_bytes,
        # where a pipeline's time goes on a machine it shares with its broker, store and camera
        "worker_cpu_seconds_per_event": flat_out.worker_cpu_seconds_per_event,
        "pipeline": asdict(flat_out),
        "steady": asdict(steady),
    }


def provenance() -> dict:
    """Which code, machine and command made the figures (the benchmark pages print them)."""
    import os
    import platform
    import subprocess
    import sys

    import torch

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                timeout=5, cwd=Path(__file__).parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"commit": commit, "command": " ".join(["latentline", *map(_portable, sys.argv[1:])]),
            "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                        "python": platform.python_version(), "torch": torch.__version__,
                        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}}


def _portable(argument: str) -> str:
    """A command's argument as the page may show it: an absolute path by its last part, which
    says which dataset or bundle without naming a machine's folders."""
    return Path(argument).name if Path(argument).is_absolute() else argument


def write_bench(result: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
