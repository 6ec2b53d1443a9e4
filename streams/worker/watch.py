"""Drift and new-defect-type watching: the stream side of models/online/drift.py and models/online/novelty.py.

State lives in Faust tables (``StateTable``), so a restarted or rebalanced worker continues with
the same detectors. Drift is per camera, inside the inspect agent (its partitions are keyed by
camera). Novelty looks across cameras: the inspect agents send unexplained anomalies to one
internal topic of one partition, whose owner holds every line's clusters (anomalies are a few
per cent of events, so one owner keeps up, and labels reach it in the same ordered stream).
"""

import asyncio
import logging
import math
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import groupby
from pathlib import PurePosixPath
from typing import Any

import numpy as np
from river import drift

from latentline.models.defect_types.open_set import TypeDecision
from latentline.models.online.drift import SCORE_STATISTIC, DriftAlarm, DriftMonitor, event_statistics
from latentline.models.online.latent_reference import LatentReference
from latentline.models.online.novelty import Anomaly, Candidate, NoveltyDetector, is_unexplained
from latentline.models.online.pixel_stats import STATISTICS as PIXEL_STATISTICS
from latentline.models.online.pixel_stats import meaning
from latentline.schemas import (
    Alert,
    AlertKind,
    AlertStatus,
    CameraEvent,
    Decision,
    DriftDetails,
    Label,
    NoveltyDetails,
    NoveltyInput,
    Sighting,
)
from latentline.streams.settings import Settings
from latentline.streams.worker.metrics import WorkerMetrics
from latentline.streams.worker.ports import Publisher, StateTable
from latentline.streams.worker.store import MissingObject, ObjectStore, StoreUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Observation:
    """One answered event as the watchers see it."""

    handle: Any  # the framework's event, for table writes
    event: CameraEvent
    score: float
    decision: Decision
    summary: np.ndarray
    direction: np.ndarray
    defect_type: TypeDecision | None = None
    type_latent: np.ndarray | None = None  # what the type classifier read (defect_types/descriptor.py)
    heatmap_uri: str | None = None  # the anomaly-map overlay in the evidence bucket
    measurements: dict = field(default_factory=dict)  # {quantity: schemas.Measurement}
    pixels: dict = field(default_factory=dict)  # {statistic: value}, models/online/pixel_stats.py

    @property
    def unexplained(self) -> bool:
        return is_unexplained(self.decision, self.defect_type.status if self.defect_type else None)


class DriftWatch:
    def __init__(self, settings: Settings, reference: LatentReference, state: StateTable,
                 publisher: Publisher, metrics: WorkerMetrics, model_version: str):
        self.settings, self.reference, self.state = settings, reference, state
        self.publisher, self.metrics, self.model_version = publisher, metrics, model_version
        self.cameras: set[str] = set()  # whose alert counters are exported (from 0)
        self.saved_at: dict[str, float] = {}  # camera -> when its monitor was last written

    def new_monitor(self) -> DriftMonitor:
        s = self.settings
        detector = drift.ADWIN(delta=s.drift_delta, clock=s.drift_clock)
        return DriftMonitor(detector, hold_events=s.drift_hold_events,
                            reference_events=s.drift_reference_events,
                            clip=s.drift_clip, min_std=s.drift_min_std)

    def observe(self, observations: list[Observation]) -> list[Awaitable]:
        deliveries = []
        by_camera = sorted(observations, key=lambda o: o.event.camera_id)
        for camera, group in groupby(by_camera, key=lambda o: o.event.camera_id):
            group, alarms_before = list(group), len(deliveries)
            monitor = self.state.get(camera) or self.new_monitor()
            for o in group:
                values = event_statistics(o.score, o.decision, o.summary, self.reference.statistic_names,
                                          o.pixels)
                for alarm in monitor.update(values, o.event.captured_at.timestamp()):
                    deliveries.append(self._alert(o.event, alarm))
            self._save(group[-1].handle, camera, monitor, alarmed=len(deliveries) > alarms_before)
            self._export(camera, monitor)
        return deliveries

    def _save(self, handle, camera: str, monitor: DriftMonitor, alarmed: bool) -> None:
        """A monitor's record is ~200 kB of JSON (~10 ms to write on a 2-core CPU): by default after
        every batch; a line whose batches come faster can write at most every
        ``drift_checkpoint_seconds`` (and after every alarm), and a worker that dies then loses
        at most that many seconds of one camera's statistics, never an alarm's hold."""
        now = time.monotonic()
        if alarmed or now - self.saved_at.get(camera, -math.inf) >= self.settings.drift_checkpoint_seconds:
            self.state.put(handle, camera, monitor)
            self.saved_at[camera] = now

    def _export(self, camera: str, monitor: DriftMonitor) -> None:
        if camera not in self.cameras:  # every (camera, statistic) visible before its first alert
            pixels = PIXEL_STATISTICS if self.settings.drift_pixel_statistics else []
            for statistic in [SCORE_STATISTIC, *self.reference.statistic_names, *pixels]:
                self.metrics.drift_alerts.labels(camera, statistic)
            self.cameras.add(camera)
        self.metrics.drift_state.labels(camera).set(int(monitor.drifting))
        self.metrics.drift_history.labels(camera).set(monitor.events)

    def _alert(self, event: CameraEvent, alarm: DriftAlarm) -> Awaitable:
        self.metrics.drift_alerts.labels(event.camera_id, alarm.statistic).inc()
        log.warning("drift on %s: %s %.3g -> %.3g", event.camera_id, alarm.statistic,
                    alarm.before, alarm.after)
        alert = Alert(
            alert_id=f"drift:{event.camera_id}:{alarm.statistic}:{event.event_id}",
            kind=AlertKind.DRIFT, status=AlertStatus.OPEN, line_id=event.line_id,
            cameras=[event.camera_id], raised_at=datetime.now(UTC), model_version=self.model_version,
            message=drift_message(event.camera_id, alarm),
            drift=DriftDetails(
                statistic=alarm.statistic, detector=alarm.detector,
                started_at=datetime.fromtimestamp(alarm.started_at, UTC),
                events_since_start=alarm.events_since_start, before=alarm.before, after=alarm.after,
                direction=alarm.direction, change_in_std=alarm.change_in_std,
                meaning=meaning(alarm.statistic, alarm.direction),
            ),
        )
        return self.publisher.send(self.settings.alerts_topic, event.line_id, alert.to_bytes())


def drift_message(camera: str, alarm: DriftAlarm) -> str:
    """One line for the shop floor: what moved, which way, how far, and what that usually means."""
    size = "" if alarm.change_in_std is None else f" ({alarm.change_in_std:+.1f} reference std)"
    text = (f"{alarm.statistic} of {camera} went {alarm.direction} from {alarm.before:.3g} to "
            f"{alarm.after:.3g}{size} over the last {alarm.events_since_start} events")
    explanation = meaning(alarm.statistic, alarm.direction)
    return f"{text}; usually {explanation}" if explanation else text


class SightingFeed:
    """Sends every anomaly that nothing known explains to the novelty topic."""

    def __init__(self, settings: Settings, publisher: Publisher, metrics: WorkerMetrics, model_version: str):
        self.settings, self.publisher, self.metrics = settings, publisher, metrics
        self.model_version = model_version

    def observe(self, observations: list[Observation]) -> list[Awaitable]:
        deliveries = []
        for o in observations:
            if not o.unexplained:
                continue
            sighting = Sighting(
                event_id=o.event.event_id, camera_id=o.event.camera_id, line_id=o.event.line_id,
                image_uri=o.event.image_uri, captured_at=o.event.captured_at, anomaly_score=o.score,
                model_version=self.model_version, direction=[float(v) for v in o.direction],
            )
            self.metrics.novelty_sightings.inc()
            payload = NoveltyInput(sighting=sighting).to_bytes()
            deliveries.append(self.publisher.send(self.settings.novelty_topic, o.event.line_id, payload))
        return deliveries


class NoveltyWatch:
    """The novelty agent's logic: one line's detector per table key."""

    def __init__(self, settings: Settings, state: StateTable, publisher: Publisher,
                 store: ObjectStore, metrics: WorkerMetrics):
        self.settings, self.state, self.publisher = settings, state, publisher
        self.store, self.metrics = store, metrics
        self.model_version = ""  # of the latest sighting: the model whose anomalies these are
        self.counted = False  # candidate gauges are recounted at start and on every change

    def new_detector(self, line_id: str, model_version: str, afresh: bool = False) -> NoveltyDetector:
        """``afresh``: the line had clusters of another model; the model version goes into the
        new candidates' ids, so that they never repeat the ids of alerts raised before."""
        s = self.settings
        prefix = f"novelty-{line_id}-{model_version}" if afresh else f"novelty-{line_id}"
        return NoveltyDetector(clustering_threshold=s.novelty_radius, min_weight=s.novelty_min_weight,
                               min_members=s.novelty_min_members, prefix=prefix, model_version=model_version)

    async def handle(self, handle: Any, message: NoveltyInput) -> None:
        if message.sighting is not None:
            changed = await self._sighting(handle, message.sighting)
        else:
            changed = await self._label(handle, message.label)
        if changed or not self.counted:
            self._count()

    async def _sighting(self, handle: Any, sighting: Sighting) -> bool:
        detector = await self._detector(sighting)
        anomaly = Anomaly(sighting.event_id, sighting.camera_id, sighting.image_uri,
                          sighting.captured_at.timestamp(), np.asarray(sighting.direction, np.float32))
        candidate = detector.observe(anomaly)
        self.state.put(handle, sighting.line_id, detector)
        self.model_version = sighting.model_version
        if candidate is not None:
            await self._publish(sighting.line_id, candidate)
        return candidate is not None

    async def _detector(self, sighting: Sighting) -> NoveltyDetector:
        """The line's detector for this sighting's model. Each bundle has its own deviation
        space, so a new one (or, during a rolling upgrade, a worker still on the old one) starts
        the line's clusters afresh, and its open candidates are closed as superseded."""
        detector = self.state.get(sighting.line_id)
        if detector is None:
            return self.new_detector(sighting.line_id, sighting.model_version)
        if detector.serves(sighting.model_version, len(sighting.direction)):
            return detector
        log.warning("line %s: sightings of model %s, clusters of model %s; novelty detection starts afresh",
                    sighting.line_id, sighting.model_version, detector.model_version)
        for candidate in detector.candidates:
            if candidate.is_open:
                await self._publish(sighting.line_id, candidate,
                                    closed=f"superseded: model {sighting.model_version} clusters afresh")
        return self.new_detector(sighting.line_id, sighting.model_version, afresh=True)

    async def _label(self, handle: Any, label: Label) -> bool:
        changed = False
        for line_id, detector in list(self.state.items()):
            closed = detector.label(label.event_id, label.label, label.labelled_by)
            if closed is not None:
                self.state.put(handle, line_id, detector)
                await self._publish(line_id, closed)
                changed = True
        return changed

    async def _publish(self, line_id: str, candidate: Candidate, closed: str | None = None) -> None:
        """The candidate's alert: open, closed by its label, or ``closed`` for that reason."""
        exemplars = candidate.exemplars(self.settings.novelty_exemplars)
        uris = await asyncio.get_running_loop().run_in_executor(
            None, self._keep_evidence, candidate.candidate_id, exemplars
        )
        status = AlertStatus.OPEN if candidate.is_open and closed is None else AlertStatus.CLOSED
        if status is AlertStatus.OPEN:
            cameras = ", ".join(sorted(candidate.cameras))
            message = f"{candidate.size} anomalies of one unnamed kind on {cameras}"
        else:
            message = closed or f"named '{candidate.label}' by {candidate.labelled_by}"
        alert = Alert(
            alert_id=candidate.candidate_id, kind=AlertKind.NEW_DEFECT_TYPE, status=status, line_id=line_id,
            cameras=sorted(candidate.cameras), raised_at=datetime.now(UTC),
            model_version=self.model_version, message=message,
            novelty=NoveltyDetails(
                candidate_id=candidate.candidate_id, size=candidate.size, radius=candidate.radius,
                first_seen=datetime.fromtimestamp(candidate.first_seen, UTC),
                last_seen=datetime.fromtimestamp(candidate.last_seen, UTC),
                exemplar_event_ids=[s.event_id for s in exemplars], exemplar_uris=uris,
                label=candidate.label, labelled_by=candidate.labelled_by,
            ),
        )
        log.warning("new defect type candidate %s: %s", candidate.candidate_id, message)
        await self.publisher.send(self.settings.alerts_topic, line_id, alert.to_bytes())

    def _keep_evidence(self, candidate_id: str, exemplars: list[Anomaly]) -> list[str]:
        """Copies in the evidence bucket; the original URI where a copy fails (logged)."""
        uris = []
        for s in exemplars:
            suffix = PurePosixPath(s.image_uri).suffix
            target = f"s3://{self.settings.evidence_bucket}/novelty/{candidate_id}/{s.event_id}{suffix}"
            try:
                uris.append(self.store.copy(s.image_uri, target))
            except (MissingObject, StoreUnavailable) as exc:
                log.warning("exemplar %s not copied: %s", s.event_id, exc)
                uris.append(s.image_uri)
        return uris

    def _count(self) -> None:
        self.counted = True
        candidates = [c for _, d in self.state.items() for c in d.candidates]
        self.metrics.novelty_candidates.labels(AlertStatus.OPEN.value).set(sum(c.is_open for c in candidates))
        self.metrics.novelty_candidates.labels(AlertStatus.CLOSED.value).set(
            sum(not c.is_open for c in candidates)
        )
