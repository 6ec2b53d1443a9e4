"""One micro-batch through the pipeline: parse, deduplicate, fetch + decode, encode, publish.

Framework-free on purpose: the Faust agent (streams/worker/app.py) hands batches in, and the same code
runs under unit tests. Every event leaves with exactly one outcome: a verdict, a dead letter,
or (already answered earlier) a duplicate count. Any exception on one event becomes that event's
dead letter; transient faults (store down, device out of memory) are waited out and the same
events retried (streams/worker/retry.py); only what cannot be attributed to an event (the broker
refusing the verdicts) escapes ``process``, and the agent then stops without committing.
"""

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from PIL import Image

from latentline.models.encoding.device import is_out_of_memory, release_cached_memory
from latentline.models.encoding.images import ImageError, decode_image
from latentline.models.inspector import Inspector
from latentline.models.online.pixel_stats import pixel_statistics
from latentline.models.overlay import overlay_png
from latentline.schemas import CameraEvent, ErrorKind, Measurement, StageTimings, Verdict
from latentline.streams.settings import Settings
from latentline.streams.worker.dead_letters import DeadLetterWriter, Incoming, Rejected, parse_event
from latentline.streams.worker.metrics import WorkerMetrics
from latentline.streams.worker.ports import Ledger, Publisher, Watcher
from latentline.streams.worker.retry import Backoff, pause, until_clear
from latentline.streams.worker.review import classification_of
from latentline.streams.worker.store import (
    BadLocation,
    MissingObject,
    ObjectStore,
    ObjectTooLarge,
    PolicyViolation,
    SlowObject,
    StoreUnavailable,
    sha256_hex,
)
from latentline.streams.worker.watch import Observation

log = logging.getLogger(__name__)

# Permanent store errors and the dead-letter kind each becomes; StoreUnavailable is transient.
STORE_REJECTIONS = {
    MissingObject: ErrorKind.MISSING_OBJECT,
    BadLocation: ErrorKind.INVALID_URI,
    PolicyViolation: ErrorKind.POLICY_VIOLATION,
    ObjectTooLarge: ErrorKind.IMAGE_TOO_LARGE,
    SlowObject: ErrorKind.SLOW_OBJECT,
}


@dataclass
class Item:
    incoming: Incoming
    event: CameraEvent
    pixels: np.ndarray | None = None
    # the object as fetched, not the decoded image: only anomalous parts get an overlay, which
    # decodes it again, so a batch holds compressed images while it waits for the model
    data: bytes | None = field(default=None, repr=False)
    pixel_stats: dict[str, float] = field(default_factory=dict)  # models/online/pixel_stats.py
    fetch_seconds: float = 0.0
    decode_seconds: float = 0.0
    error: Rejected | None = field(default=None, repr=False)
    transient: StoreUnavailable | None = field(default=None, repr=False)


@dataclass
class Loaded:
    """A batch after its I/O half: the items to infer and the dead letters already due."""

    batch: list[Incoming]
    items: list[Item]
    deliveries: list[Awaitable]
    started: float


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
        self.dead_letters = DeadLetterWriter(publisher, settings, metrics, store)
        self.limits = settings.decode_limits()
        self.io_pool = ThreadPoolExecutor(settings.fetch_concurrency, thread_name_prefix="fetch")
        # One thread owns the model: batches are encoded one after another, never interleaved.
        self.model_pool = ThreadPoolExecutor(1, thread_name_prefix="encode")

    async def process(self, batch: list[Incoming]) -> None:
        await self.complete(await self.load(batch))

    async def load(self, batch: list[Incoming]) -> "Loaded":
        """The I/O half (parse, deduplicate, fetch, decode), which the worker runs for the next
        batch while the model works on this one (streams/worker/pipeline.py)."""
        started = time.time()
        self.metrics.events.inc(len(batch))
        deliveries: list[Awaitable] = []
        items = self._parse(batch, deliveries)
        items = self._drop_answered(items)
        items = await self._fetch_and_decode(items, deliveries)
        return Loaded(batch, items, deliveries, started)

    async def complete(self, loaded: "Loaded") -> None:
        """The model half: verdicts for a loaded batch, published, then recorded as answered."""
        # a batch ahead of this one in the pipeline may have answered the same event meanwhile
        items = self._drop_answered(loaded.items)
        answered = await self._inspect(items, loaded.started, loaded.deliveries) if items else []
        publish_started = time.perf_counter()
        await asyncio.gather(*loaded.deliveries)
        self.metrics.stage_seconds.labels("publish").observe(time.perf_counter() - publish_started)
        self._finish(answered, loaded.batch)

    async def quarantine(self, incoming: Incoming, attempts: int) -> None:
        """Dead-letter a message that stopped workers ``attempts`` times, without processing it."""
        try:
            event = parse_event(incoming)
        except Rejected:
            event = None
        reason = f"its batch stopped a worker {attempts} times; quarantined unprocessed"
        await self.dead_letters.send(incoming, Rejected(ErrorKind.POISON, reason), event)

    def _parse(self, batch: list[Incoming], deliveries: list) -> list[Item]:
        items = []
        for incoming in batch:
            try:
                items.append(Item(incoming, parse_event(incoming)))
            except Rejected as exc:
                deliveries.append(self.dead_letters.send(incoming, exc))
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
        """Loads every item; while the store is unavailable, waits and loads the same ones again."""
        loop = asyncio.get_running_loop()
        pending, backoff = items, self._backoff()
        while pending:
            await asyncio.gather(*(loop.run_in_executor(self.io_pool, self._load, i) for i in pending))
            pending = [item for item in pending if item.transient]
            if pending:
                await pause(backoff, self.metrics, "store", pending[0].transient)
                for item in pending:
                    item.transient = None
        self.metrics.paused.labels("store").set(0)
        self.metrics.stage_seconds.labels("fetch").observe(max((i.fetch_seconds for i in items), default=0))
        self.metrics.stage_seconds.labels("decode").observe(max((i.decode_seconds for i in items), default=0))
        for item in items:
            if item.error:
                deliveries.append(self.dead_letters.send(item.incoming, item.error, item.event))
        return [item for item in items if item.error is None]

    def _load(self, item: Item) -> None:
        """In an I/O thread: fetch, verify, decode, resize. Outcomes are kept on the item."""
        try:
            self._fetch_verify_decode(item)
        except StoreUnavailable as exc:
            item.transient = exc
        except tuple(STORE_REJECTIONS) as exc:
            kind = next(k for cls, k in STORE_REJECTIONS.items() if isinstance(exc, cls))
            item.error = Rejected(kind, str(exc))
        except ImageError as exc:
            item.error = Rejected(exc.kind, str(exc))
        except Rejected as exc:
            item.error = exc
        except Exception as exc:  # anything else about this one image is this event's fault
            log.exception("event %s failed to load", item.event.event_id)
            item.error = Rejected(ErrorKind.PROCESSING_ERROR, f"loading the image failed: {exc!r}")

    def _fetch_verify_decode(self, item: Item) -> None:
        s, started = self.settings, time.perf_counter()
        data = self.store.fetch(item.event.image_uri, s.max_image_bytes, s.fetch_deadline_seconds,
                                s.image_locations())
        item.fetch_seconds = time.perf_counter() - started
        if item.event.sha256 and sha256_hex(data) != item.event.sha256:
            raise Rejected(ErrorKind.CHECKSUM_MISMATCH, "sha256 of the object differs from the event's")
        decoded = time.perf_counter()
        image = decode_image(data, self.limits)
        item.pixels = self.inspector.prepare(image)
        item.pixel_stats = self._pixel_stats(item, image)
        item.data = data
        item.decode_seconds = time.perf_counter() - decoded

    def _pixel_stats(self, item: Item, image: Image.Image) -> dict[str, float]:
        """On the image as decoded, before resizing: what the camera saw (the drift watch's
        lighting, focus and lens evidence). Trouble here must never cost a verdict."""
        if not self.settings.drift_pixel_statistics:
            return {}
        try:
            return pixel_statistics(image, max_side=self.settings.drift_pixel_max_side)
        except Exception:
            log.exception("no pixel statistics for %s", item.event.event_id)
            return {}

    async def _inspect(self, items: list[Item], started: float, deliveries: list) -> list[Item]:
        """Verdicts for ``items``; a batch the model fails on is retried event by event, so
        that only the events it fails on alone are dead-lettered."""
        groups = forward_passes(items, self.settings.batch_max_size, self.inspector.encoder.config.image_size)
        if len(groups) > 1:
            return [a for group in groups for a in await self._inspect(group, started, deliveries)]
        try:
            result = await self._infer(items)
        except Exception as exc:
            if len(items) == 1:
                error = Rejected(ErrorKind.PROCESSING_ERROR, f"inference failed: {exc!r}")
                deliveries.append(self.dead_letters.send(items[0].incoming, error, items[0].event))
                return []
            log.exception("inference failed for a batch of %d; retrying event by event", len(items))
            return [a for item in items for a in await self._inspect([item], started, deliveries)]
        return await self._publish_verdicts(items, result, started, deliveries)

    async def _infer(self, items: list[Item]):
        loop = asyncio.get_running_loop()
        batch = np.stack([item.pixels for item in items])

        async def attempt():
            try:
                return await loop.run_in_executor(self.model_pool, self.inspector.infer, batch)
            except Exception as exc:
                if is_out_of_memory(exc):
                    release_cached_memory(self.inspector.encoder.device)
                raise

        return await until_clear(attempt, is_out_of_memory, self._backoff(), self.metrics, "device")

    async def _publish_verdicts(self, items: list[Item], result, started: float,
                                deliveries: list) -> list[Item]:
        self.metrics.batch_size.observe(len(items))
        self.metrics.batch_fill.observe(len(items) / self.settings.batch_max_size)
        self.metrics.stage_seconds.labels("encode").observe(result.encode_seconds)
        self.metrics.stage_seconds.labels("score").observe(result.score_seconds)
        heatmaps = await self._keep_anomaly_maps(items, result.assessment.maps)
        answered, observations = [], []
        for k, item in enumerate(items):
            try:
                o = self._observation(item, result, k, heatmaps[k])
                verdict = self._verdict(item, o, result, started, len(items))
            except Exception as exc:  # a NaN score, a measurement out of its type: this event's
                log.exception("no verdict for %s", item.event.event_id)
                error = Rejected(ErrorKind.PROCESSING_ERROR, f"no valid verdict: {exc!r}"[:2000])
                deliveries.append(self.dead_letters.send(item.incoming, error, item.event))
                continue
            self.metrics.count_verdict(item.event.camera_id, o.decision)
            self.metrics.observe_measurements(item.event.camera_id, o.measurements)
            deliveries.append(
                self.publisher.send(self.settings.verdicts_topic, item.event.camera_id, verdict.to_bytes())
            )
            answered.append(item)
            observations.append(o)
        self._watch(observations, deliveries)
        return answered

    def _observation(self, item: Item, result, k: int, heatmap_uri: str | None) -> Observation:
        a = result.assessment
        score = float(a.scores[k])
        if not math.isfinite(score):
            raise ValueError(f"the anomaly score is {score}")
        measurements = measurements_of(self.inspector.bundle.quantities, a.measurements, k)
        return Observation(item.incoming.handle, item.event, score, a.decisions[k], a.summaries[k],
                           a.directions[k], a.types[k], a.type_latents[k], heatmap_uri,
                           measurements, item.pixel_stats)

    def _watch(self, observations: list[Observation], deliveries: list) -> None:
        if not observations:
            return
        for watcher in self.watchers:
            try:
                deliveries.extend(watcher.observe(observations))
            except Exception:  # drift or novelty trouble must never cost a verdict
                log.exception("%s failed on a batch of %d", type(watcher).__name__, len(observations))

    def _backoff(self) -> Backoff:
        return Backoff(self.settings.retry_initial_seconds, self.settings.retry_max_seconds)

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
            image = decode_image(item.data, self.limits)
            self.store.put(uri, overlay_png(image, anomaly_map), "image/png")
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

    def _finish(self, answered: Iterable[Item], batch: list[Incoming]) -> None:
        now = time.time()
        for item in answered:
            self.ledger.record(item.incoming.handle, item.incoming.partition, item.event.event_id)
            self.metrics.end_to_end_seconds.observe(max(0.0, now - item.event.captured_at.timestamp()))
        purged = self.ledger.purge({m.partition: m.handle for m in batch})
        self.metrics.ledger_purged.inc(purged)

    def close(self) -> None:
        self.io_pool.shutdown(wait=False, cancel_futures=True)
        self.model_pool.shutdown(wait=False, cancel_futures=True)


def forward_passes(items: list[Item], max_tiles: int, tile_side: int) -> list[list[Item]]:
    """``items`` in groups the encoder can take in one pass: one input shape each (cameras whose
    images are tiled differently, models/encoding/config.py), at most ``max_tiles`` tiles of
    ``tile_side`` pixels each, so the micro-batch bounds the work in tiles, not events (an item
    larger than that alone)."""
    groups: list[list[Item]] = []
    for shape in dict.fromkeys(item.pixels.shape for item in items):
        tiles = shape[0] * shape[1] // (tile_side * tile_side)
        per_pass = max(1, max_tiles // max(1, tiles))
        same = [item for item in items if item.pixels.shape == shape]
        groups += [same[i : i + per_pass] for i in range(0, len(same), per_pass)]
    return groups


def measurements_of(quantities: dict, measured: dict[str, np.ndarray], k: int) -> dict[str, Measurement]:
    """Part ``k``'s measurements as the Verdict states them (``quantities``: the bundle's
    models.metrology.quantity.QuantityScale by name)."""
    records = {}
    for name, values in measured.items():
        scale, value = quantities[name], float(values[k])
        records[name] = Measurement(value=value, unit=scale.unit, uncertainty=scale.expanded_uncertainty_,
                                    coverage=scale.coverage, coverage_factor=scale.coverage_factor_,
                                    in_range=bool(scale.in_range(np.array([value]))[0]))
    return records
