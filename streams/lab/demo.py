"""``latentline demo``: the whole path on the embedded stack, with a live view and a summary."""

import asyncio
import json
import os
import random
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.live import Live
from rich.table import Table
from sklearn.metrics import roc_auc_score

from latentline.models.bundle import ModelBundle
from latentline.models.dataset import at_defect_share, list_images
from latentline.schemas import Decision
from latentline.streams.lab.cached_model import ensure_model
from latentline.streams.lab.collector import Collector, Outcomes
from latentline.streams.lab.embedded import TANSU_SETTINGS, free_port, s3_server, tansu_broker, worker_process
from latentline.streams.settings import Settings, settings_env
from latentline.streams.worker.producer import CameraSimulator, kafka_producer, publish_paths, stage_paths
from latentline.streams.worker.store import ObjectStore
from latentline.streams.worker.topics import ensure_topics

console = Console(stderr=True)


@dataclass
class DemoSummary:
    events_published: int
    verdicts: int
    dead_letters: int
    duplicates: int
    missing: int
    alerts: int
    review_requests: int
    defect_types: dict[str, int]  # named automatically, by type
    image_auroc: float | None
    events_per_second: float
    latency_p50_seconds: float | None
    latency_p99_seconds: float | None
    model_version: str
    cameras: int
    worker_peak_rss_bytes: int | None = None  # the worker process's high-water mark (Linux)
    # CPU the worker spent (all its threads) per verdict while the events streamed (Linux)
    worker_cpu_seconds_per_event: float | None = None


@dataclass(frozen=True)
class DemoOptions:
    data_dir: Path
    events: int | None = None
    cameras: int = 2
    rate: float | None = None
    timeout: float = 600.0
    seed: int = 0
    # upload every image before the first event (producer.stage_paths): the bench's pipeline
    # figures then measure the inspection, not the simulated cameras' uploads on the same cores
    staged: bool = False
    # share of defective parts among the events (None: the test set's own mix)
    defect_share: float | None = None
    model_dir: Path | None = None  # the bundle the worker runs (None: the lab's cached model)


def plan_jobs(options: DemoOptions) -> list[tuple[Path, str, str]]:
    """(path, camera, label) for every event, shuffled; cycles the test set for --events N."""
    images = list_images(options.data_dir, "test")
    random.Random(options.seed).shuffle(images)
    count = options.events or len(images)
    if options.defect_share is not None:
        images = at_defect_share(images, options.defect_share, count, options.seed)
    return [
        (images[i % len(images)].path, f"cam-{i % options.cameras + 1}", images[i % len(images)].label)
        for i in range(count)
    ]


def live_table(published: int, total: int, outcomes: Outcomes, started: float) -> Table:
    elapsed = max(time.time() - started, 1e-6)
    done = len(outcomes.verdicts)
    anomalous = sum(v.decision != Decision.OK for v in outcomes.verdicts.values())
    p50 = np.percentile(outcomes.latencies, 50) * 1000 if outcomes.latencies else float("nan")
    table = Table(title="latentline demo", expand=False)
    for column in ("published", "verdicts", "dead letters", "events/s", "anomalous", "p50 latency"):
        table.add_column(column, justify="right")
    table.add_row(
        f"{published}/{total}", str(done), str(len(outcomes.dead_letters)),
        f"{done / elapsed:.1f}", f"{anomalous / max(done, 1):.1%}", f"{p50:.0f} ms",
    )
    return table


def summarise(published: dict[str, str], outcomes: Outcomes, version: str, cameras: int,
              started: float) -> DemoSummary:
    scored = [(published[i], v.anomaly_score) for i, v in outcomes.verdicts.items() if i in published]
    labels = [label != "good" for label, _ in scored]
    auroc = (
        float(roc_auc_score(labels, [s for _, s in scored])) if 0 < sum(labels) < len(labels) else None
    )
    span = (outcomes.last_at or time.time()) - started
    latencies = outcomes.latencies
    return DemoSummary(
        events_published=len(published),
        verdicts=len(outcomes.verdicts),
        dead_letters=len(outcomes.dead_letters),
        duplicates=outcomes.duplicates,
        missing=len(set(published) - outcomes.answered_ids()),
        alerts=len(outcomes.alerts),
        review_requests=len(outcomes.reviews),
        defect_types=dict(Counter(
            v.classification.defect_type for v in outcomes.verdicts.values()
            if v.classification and v.classification.defect_type
        )),
        image_auroc=auroc,
        events_per_second=len(outcomes.verdicts) / span if span > 0 else 0.0,
        latency_p50_seconds=float(np.percentile(latencies, 50)) if latencies else None,
        latency_p99_seconds=float(np.percentile(latencies, 99)) if latencies else None,
        model_version=version,
        cameras=cameras,
    )


async def stream_events(settings: Settings, options: DemoOptions, alive) -> tuple[dict, Outcomes, float]:
    jobs = plan_jobs(options)
    store = ObjectStore(settings)
    store.ensure_bucket(settings.image_bucket)
    producer = kafka_producer(settings)
    collector = Collector(settings)
    await producer.start()
    await collector.start()
    published: dict[str, str] = {}
    labels = {path: label for path, _, label in jobs}
    simulator = CameraSimulator(settings, store, producer)
    camera_jobs = [(p, c) for p, c, _ in jobs]
    try:
        staged = await stage_paths(simulator, camera_jobs) if options.staged else None
        started = time.time()
        with Live(console=console, refresh_per_second=4) as live:
            def on_published(event, path):
                published[event.event_id] = labels[path]

            async def refresh():
                while True:
                    live.update(live_table(len(published), len(jobs), collector.outcomes, started))
                    await asyncio.sleep(0.25)

            ticker = asyncio.create_task(refresh())
            await publish_paths(simulator, camera_jobs, options.rate, on_published, staged=staged)
            await collector.wait_for(set(published), options.timeout, alive)
            ticker.cancel()
            live.update(live_table(len(published), len(jobs), collector.outcomes, started))
    finally:
        await producer.stop()
        await collector.stop()
    return published, collector.outcomes, started


def run_demo(options: DemoOptions, base: Settings) -> DemoSummary:
    bundle_dir = options.model_dir or ensure_model(options.data_dir, base.cache_dir)
    version = ModelBundle.load(bundle_dir).version
    with tempfile.TemporaryDirectory(prefix="latentline-demo-") as work, \
            tansu_broker(Path(work) / "broker.log") as broker_url, s3_server() as store_url:
        settings = base.model_copy(update={
            **TANSU_SETTINGS, "broker_url": broker_url, "store_url": store_url, "metrics_port": free_port(),
            "model_uri": f"s3://{base.model_bucket}/{version}", "state_dir": Path(work) / "state",
        })
        ObjectStore(settings).upload_dir(bundle_dir, settings.model_uri)
        asyncio.run(ensure_topics(settings))
        console.print(f"broker {broker_url}, object store {store_url}, model {version}")
        log_path = Path(work) / "worker.log"
        with worker_process(settings_env(settings), log_path, settings.metrics_port) as worker:
            cpu_before = cpu_seconds(worker.pid)
            published, outcomes, started = asyncio.run(
                stream_events(settings, options, alive=lambda: worker.poll() is None)
            )
            if worker.poll() is not None:
                console.print(log_path.read_text()[-4000:])
            peak, cpu_after = peak_rss_bytes(worker.pid), cpu_seconds(worker.pid)
    summary = summarise(published, outcomes, version, options.cameras, started)
    measured = None not in (cpu_before, cpu_after) and summary.verdicts
    cpu = (cpu_after - cpu_before) / summary.verdicts if measured else None
    return replace(summary, worker_peak_rss_bytes=peak, worker_cpu_seconds_per_event=cpu)


def peak_rss_bytes(pid: int) -> int | None:
    """The process's peak resident memory (VmHWM), where /proc has it."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    line = next((line for line in status.splitlines() if line.startswith("VmHWM:")), None)
    return int(line.split()[1]) * 1024 if line else None


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU of every thread of the process so far, where /proc has it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def print_summary(summary: DemoSummary, json_path: Path | None) -> None:
    table = Table(title="summary")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in asdict(summary).items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    Console().print(table)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(asdict(summary), indent=2) + "\n")
