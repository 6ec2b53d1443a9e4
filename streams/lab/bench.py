"""``latentline bench``: throughput as ratios measured in one run (the machines are noisy).

- batched vs unbatched: the bare encoder + scorer at batch 1 and at the worker's batch size;
- pipeline vs bare model: events per second through broker, object store and worker (the demo
  path) against the bare model at the same batch size.
"""

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from models.bundle import ModelBundle
from models.dataset import list_images
from models.encoding.images import decode_image
from models.inspector import Inspector
from streams.lab.demo import DemoOptions, ensure_model, run_demo
from streams.settings import Settings


def bare_model_rate(inspector: Inspector, images: np.ndarray, batch_size: int) -> float:
    inspector.infer(images[:batch_size])  # warm-up: first call allocates
    started = time.perf_counter()
    for index in range(0, len(images), batch_size):
        inspector.infer(images[index : index + batch_size])
    return len(images) / (time.perf_counter() - started)


def run_bench(data_dir: Path, settings: Settings, events: int = 400, images: int = 256) -> dict:
    bundle = ModelBundle.load(ensure_model(data_dir, settings.cache_dir))
    inspector = Inspector(bundle, device=settings.device)
    paths = [item.path for item in list_images(data_dir, "test")][:images]
    batch = np.stack([inspector.prepare(decode_image(p.read_bytes())) for p in paths])
    unbatched = bare_model_rate(inspector, batch, 1)
    batched = bare_model_rate(inspector, batch, settings.batch_max_size)
    demo = run_demo(DemoOptions(data_dir, events=events), settings)
    return {
        "device": str(inspector.encoder.device),
        "model_version": bundle.version,
        "batch_size": settings.batch_max_size,
        "bare_model_unbatched_images_per_second": unbatched,
        "bare_model_batched_images_per_second": batched,
        "batched_over_unbatched": batched / unbatched,
        "pipeline_events_per_second": demo.events_per_second,
        "pipeline_over_bare_model": demo.events_per_second / batched,
        "pipeline": asdict(demo),
    }


def write_bench(result: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
