"""One micro-batch through the pipeline: parse, deduplicate, fetch + decode, encode, publish.

Framework-free on purpose: the Faust agent (streams/app.py) hands batches in, and the same code
runs under unit tests. Every event leaves with exactly one outcome: a verdict, a dead letter,
or (already answered earlier) a duplicate count.
"""

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
from PIL import Image
from pydantic import ValidationError

from models.heatmap import overlay_png
from models.images import ImageError, decode_image
from models.inspector import Inspector
from schemas import CameraEvent, DeadLetter, ErrorKind, Measurement, StageTimings, Verdict
from streams.metrics import WorkerMetrics
from streams.ports import Publisher
from streams.review import classification_of
from streams.settings import Settings
from streams.store import MissingObject, ObjectStore, StoreUnavailable, sha256_hex
from streams.watch import Observation

log = logging.getLogger(__name__)


@dataclass
class Incoming:
    """A consumed message; ``handle`` is the framework's event (for table writes)."""

    value: bytes
    topic: str
    partition: int
    offset: int
    handle: Any = None


class Ledger(Protocol):
    """Which event ids already have a verdict: makes redelivery idempotent."""

    def answered(self, event_id: str) -> bool: ...

    def record(self, incoming: Incoming, event_id: str) -> None: ...


class Watcher(Protocol):
    """Sees every answered event (drift, novelty); returns the deliveries it queued."""

    def observe(self, observations: list[Observation]) -> list[Awaitable]: ...


class Rejected(Exception):
    def __init__(self, kind: ErrorKind, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass
class Item:
    incoming: Incoming
    event: CameraEvent
    pixels: np.ndarray | None = None
    image: Image.Image | None = field(default=None, repr=False)  # as decoded: the overlay's base
    fetch_seconds: float = 0.0
    decode_seconds: float = 0.0
    error: Rejected | None = field(default=None, repr=False)


class BatchProcessor:
    def __init__(
        self,
        inspector: Inspector,
        store: ObjectStore,
        settings: Settings,
        metrics: WorkerMetrics,
        publisher: Publisher,
        ledger: Ledger,
        watchers: Sequence[Watcher] = (),
    ):
        self.inspector = inspector
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.publisher = publisher
        self.ledger = ledger
        self.watchers = watchers
        self.limits = settings.decode_limits()
        self.io_pool = ThreadPoolExecutor(settings.fetch_concurrency, thread_name_prefix="fetch")
        # One thread owns the model: batches are encoded one after another, never interleaved.
        self.model_pool = ThreadPoolExecutor(1, thread_name_prefix="encode")

    async def process(self, batch: list[Incoming]) -> None:
        started = time.time()
        self.metrics.events.inc(len(batch))
        deliveries: list[Awaitable] = []
        items = self._parse(batch, deliveries)
        items = self._drop_answered(items)
        items = await self._fetch_and_decode(items, deliveries)
        answered = await self._inspect(items, started, deliveries) if items else []
        publish_started = time.perf_counter()
        await asyncio.gather(*deliveries)
        self.metrics.stage_seconds.labels("publish").observe(time.perf_counter() - publish_started)
        self._finish(answered)

    def _parse(self, batch: list[Incoming], deliveries: list) -> list[Item]:
        items = []
        for incoming in batch:
            try:
                items.append(Item(incoming, CameraEvent.from_bytes(incoming.value)))
            except ValidationError as exc:
                deliveries.append(self._dead_letter(incoming, rejection(exc)))
        return items

    def _drop_answered(self, items: list[Item]) -> list[Item]:
        fresh, ids = [], set()
        for item in items:
            event_id = item.event.event_id
            if event_id in ids or self.ledger.answered(event_id):
                self.metrics.duplicates.inc()
                log.info("event %s already answered; no second verdict", event_id)
                continue
            ids.add(event_id)
            fresh.append(item)
        return fresh

    async def _fetch_and_decode(self, items: list[Item], deliveries: list) -> list[Item]:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        await asyncio.gather(*(loop.run_in_executor(self.io_pool, self._load, i) for i in items))
        self.metrics.stage_seconds.labels("fetch").observe(max((i.fetch_seconds for i in items), default=0))
        self.metrics.stage_seconds.labels("decode").observe(max((i.decode_seconds for i in items), default=0))
        log.debug("fetched and decoded %d images in %.3fs", len(items), time.perf_counter() - started)
        for item in items:
            if item.error:
                deliveries.append(self._dead_letter(item.incoming, item.error, item.event))
        return [item for item in items if item.error is None]

    def _load(self, item: Item) -> None:
        """In an I/O thread: fetch, verify, decode, resize. Errors are kept on the item."""
        started = time.perf_counter()
        try:
            data = self.store.get(item.event.image_uri)
            item.fetch_seconds = time.perf_counter() - started
            if item.event.sha256 and sha256_hex(data) != item.event.sha256:
                raise Rejected(ErrorKind.CHECKSUM_MISMATCH, "sha256 of the object differs from the event's")
            decoded = time.perf_counter()
            item.image = decode_image(data, self.limits)
            item.pixels = self.inspector.prepare(item.image)
            item.decode_seconds = time.perf_counter() - decoded
        except MissingObject as exc:
            item.error = Rejected(ErrorKind.MISSING_OBJECT, f"image not found: {exc}")
        except StoreUnavailable as exc:
            item.error = Rejected(ErrorKind.STORE_UNAVAILABLE, f"object store failed: {exc}")
        except ImageError as exc:
            item.error = Rejected(exc.kind, str(exc))
        except Rejected as exc:
            item.error = exc

    async def _inspect(self, items: list[Item], started: float, deliveries: list) -> list[Item]:
        loop = asyncio.get_running_loop()
        batch = np.stack([item.pixels for item in items])
        try:
            result = await loop.run_in_executor(self.model_pool, self.inspector.infer, batch)
        except Exception as exc:  # a model failure must not lose the batch
            log.exception("inference failed for a batch of %d", len(items))
            error = Rejected(ErrorKind.PROCESSING_ERROR, f"inference failed: {exc!r}")
            deliveries.extend(self._dead_letter(i.incoming, error, i.event) for i in items)
            return []
        self.metrics.batch_size.observe(len(items))
        self.metrics.batch_fill.observe(len(items) / self.settings.batch_max_size)
        self.metrics.stage_seconds.labels("encode").observe(result.encode_seconds)
        self.metrics.stage_seconds.labels("score").observe(result.score_seconds)
        a = result.assessment
        heatmaps = await self._keep_anomaly_maps(items, a.maps)
        quantities = self.inspector.bundle.quantities
        observations = [
            Observation(item.incoming.handle, item.event, float(a.scores[k]), a.decisions[k],
                        a.summaries[k], a.directions[k], a.types[k], result.latents.centre[k], heatmaps[k],
                        measurements_of(quantities, a.measurements, k))
            for k, item in enumerate(items)
        ]
        for item, o in zip(items, observations):
            verdict = self._verdict(item, o, result, started, len(items))
            self.metrics.count_verdict(item.event.camera_id, o.decision)
            self.metrics.observe_measurements(item.event.camera_id, o.measurements)
            deliveries.append(
                self.publisher.send(self.settings.verdicts_topic, item.event.camera_id, verdict.to_bytes())
            )
        for watcher in self.watchers:
            try:
                deliveries.extend(watcher.observe(observations))
            except Exception:  # drift or novelty trouble must never cost a verdict
                log.exception("%s failed on a batch of %d", type(watcher).__name__, len(observations))
        return items

    async def _keep_anomaly_maps(self, items: list[Item], maps: list) -> list[str | None]:
        """Overlay PNGs of the anomalous parts in the evidence bucket, before their verdicts go
        out (a subscriber may fetch one at once). A failed upload costs the link, not the verdict."""
        uris: list[str | None] = [None] * len(items)
        jobs = {k: (items[k], m) for k, m in enumerate(maps) if m is not None}
        if not jobs:
            return uris
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        stored = await asyncio.gather(*(
            loop.run_in_executor(self.io_pool, self._keep_anomaly_map, item, anomaly_map)
            for item, anomaly_map in jobs.values()
        ))
        self.metrics.stage_seconds.labels("evidence").observe(time.perf_counter() - started)
        for k, uri in zip(jobs, stored):
            uris[k] = uri
        return uris

    def _keep_anomaly_map(self, item: Item, anomaly_map: np.ndarray) -> str | None:
        uri = f"s3://{self.settings.evidence_bucket}/heatmaps/{item.event.event_id}.png"
        try:
            self.store.put(uri, overlay_png(item.image, anomaly_map), "image/png")
        except Exception:  # the store or the rendering: the verdict still goes out
            log.exception("anomaly map for %s not stored", item.event.event_id)
            self.metrics.anomaly_maps.labels("failed").inc()
            return None
        self.metrics.anomaly_maps.labels("stored").inc()
        return uri

    def _verdict(self, item: Item, o: Observation, result, started: float, size: int) -> Verdict:
        event = item.event
        thresholds = self.inspector.thresholds
        return Verdict(
            event_id=event.event_id,
            camera_id=event.camera_id,
            line_id=event.line_id,
            part_id=event.part_id,
            image_uri=event.image_uri,
            captured_at=event.captured_at,
            model_version=self.inspector.version,
            anomaly_score=o.score,
            threshold=thresholds.threshold,
            review_threshold=thresholds.review_threshold,
            decision=o.decision,
            heatmap_uri=o.heatmap_uri,
            classification=classification_of(o.defect_type),
            measurements=o.measurements,
            batch_size=size,
            timings=StageTimings(
                queue_seconds=max(0.0, started - event.captured_at.timestamp()),
                fetch_seconds=item.fetch_seconds,
                decode_seconds=item.decode_seconds,
                encode_seconds=result.encode_seconds,
                score_seconds=result.score_seconds,
            ),
            processed_at=datetime.now(UTC),
        )

    def _finish(self, answered: Iterable[Item]) -> None:
        now = time.time()
        for item in answered:
            self.ledger.record(item.incoming, item.event.event_id)
            self.metrics.end_to_end_seconds.observe(max(0.0, now - item.event.captured_at.timestamp()))

    def _dead_letter(self, incoming: Incoming, error: Rejected, event: CameraEvent | None = None):
        return send_dead_letter(self.publisher, self.settings, self.metrics, incoming, error, event)

    def close(self) -> None:
        self.io_pool.shutdown(wait=False, cancel_futures=True)
        self.model_pool.shutdown(wait=False, cancel_futures=True)


def send_dead_letter(publisher: Publisher, settings: Settings, metrics: WorkerMetrics,
                     incoming: Incoming, error: Rejected, event: CameraEvent | None = None) -> Awaitable:
    """Count it, log it, and queue it on the dead-letter topic with the original bytes."""
    metrics.dead_letters.labels(error.kind.value).inc()
    log.warning("dead letter %s at %s[%d]@%d: %s", error.kind, incoming.topic,
                incoming.partition, incoming.offset, error)
    letter = DeadLetter(
        error_kind=error.kind,
        error_message=str(error),
        event_id=event.event_id if event else None,
        camera_id=event.camera_id if event else None,
        payload=_as_text(incoming.value),
        payload_base64=base64.b64encode(incoming.value).decode(),
        source_topic=incoming.topic,
        source_partition=incoming.partition,
        source_offset=incoming.offset,
        failed_at=datetime.now(UTC),
    )
    key = event.camera_id if event else None
    return publisher.send(settings.dlq_topic, key, letter.to_bytes())


def rejection(exc: ValidationError) -> Rejected:
    """A payload that failed validation: not JSON at all, or JSON breaking the contract."""
    kind = ErrorKind.INVALID_JSON if _is_json_error(exc) else ErrorKind.SCHEMA_VIOLATION
    return Rejected(kind, _summary(exc))


def _is_json_error(exc: ValidationError) -> bool:
    return any(error["type"] == "json_invalid" for error in exc.errors())


def _summary(exc: ValidationError) -> str:
    parts = [
        f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}" for e in exc.errors()[:5]
    ]
    return "; ".join(parts)


def _as_text(value: bytes) -> str | None:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def measurements_of(quantities: dict, measured: dict[str, np.ndarray], k: int) -> dict[str, Measurement]:
    """Part ``k``'s measurements as the Verdict states them (``quantities``: the bundle's
    models.quantity.QuantityScale by name)."""
    records = {}
    for name, values in measured.items():
        scale, value = quantities[name], float(values[k])
        records[name] = Measurement(value=value, unit=scale.unit, uncertainty=scale.expanded_uncertainty_,
                                    coverage=scale.coverage, coverage_factor=scale.coverage_factor_,
                                    in_range=bool(scale.in_range(np.array([value]))[0]))
    return records
