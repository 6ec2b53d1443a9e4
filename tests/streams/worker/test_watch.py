"""DriftWatch and NoveltyWatch without Kafka: alerts on the right topic, state in the table."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from latentline.models.online.latent_reference import LatentReference
from latentline.schemas import (
    Alert,
    AlertKind,
    AlertStatus,
    CameraEvent,
    Decision,
    Label,
    NoveltyInput,
    Sighting,
)
from latentline.streams.lab.embedded import s3_server
from latentline.streams.settings import Settings
from latentline.streams.worker.metrics import WorkerMetrics
from latentline.streams.worker.store import ObjectStore
from latentline.streams.worker.watch import DriftWatch, NoveltyWatch, Observation, SightingFeed

T0 = datetime(2024, 5, 17, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def reference():
    return LatentReference(n_components=4).fit(np.random.default_rng(0).normal(size=(100, 8)), {"all": 8})


def deliver(deliveries) -> None:
    """Run what a watcher queued, as the batch processor does before committing."""
    async def run():
        await asyncio.gather(*deliveries)

    asyncio.run(run())


def observation(i: int, score: float, decision=Decision.OK, camera="cam-1", pixels=None) -> Observation:
    event = CameraEvent(event_id=f"e{i}", camera_id=camera, line_id="line-1",
                        captured_at=T0 + timedelta(seconds=i), image_uri=f"s3://camera-images/e{i}.png")
    return Observation(None, event, score, decision, np.zeros(2), np.ones(4, np.float32) / 2,
                       pixels=pixels or {})


def test_drift_watch_alerts_once_the_score_shifts_and_keeps_state_per_camera(reference, publisher, state):
    settings, metrics = Settings(metrics_port=0), WorkerMetrics()
    watch = DriftWatch(settings, reference, state, publisher, metrics, "v1")
    rng = np.random.default_rng(3)
    for start in range(0, 1000, 50):  # batches of 50, as the worker hands them in
        batch = [observation(i, rng.normal(40, 10)) for i in range(start, start + 50)]
        batch += [observation(i, rng.normal(40, 10), camera="cam-2") for i in range(start, start + 5)]
        deliver(watch.observe(batch))
    assert publisher.on(settings.alerts_topic) == []
    for start in range(1000, 1300, 50):
        deliver(watch.observe([observation(i, rng.normal(60, 10)) for i in range(start, start + 50)]))
    alerts = [Alert.from_bytes(v) for v in publisher.on(settings.alerts_topic)]
    assert alerts and {a.kind for a in alerts} == {AlertKind.DRIFT}
    first = alerts[0]
    assert first.cameras == ["cam-1"] and first.line_id == "line-1"
    assert first.drift.statistic == "anomaly_score" and first.drift.before < 45 < 55 < first.drift.after
    assert T0 + timedelta(seconds=950) <= first.drift.started_at <= T0 + timedelta(seconds=1300)
    assert state.get("cam-1").events == 1300 and state.get("cam-2").events == 100
    assert metrics.drift_state.labels("cam-1")._value.get() == 1
    assert metrics.drift_state.labels("cam-2")._value.get() == 0


def test_a_pixel_drift_alert_names_the_statistic_direction_size_and_meaning(reference, publisher, state):
    settings = Settings(metrics_port=0, drift_reference_events=100)
    watch = DriftWatch(settings, reference, state, publisher, WorkerMetrics(), "v1")
    rng = np.random.default_rng(5)
    for start in range(0, 800, 50):  # the score steady, the image brightness steady around 0.5
        deliver(watch.observe([observation(i, 40.0, pixels={"pixel_mean": rng.normal(0.5, 0.01)})
                               for i in range(start, start + 50)]))
    assert publisher.on(settings.alerts_topic) == []
    for start in range(800, 1000, 50):  # the lamp dims by 3 reference std; the score does not move
        deliver(watch.observe([observation(i, 40.0, pixels={"pixel_mean": rng.normal(0.47, 0.01)})
                               for i in range(start, start + 50)]))
    alert = Alert.from_bytes(publisher.on(settings.alerts_topic)[0])
    assert alert.drift.statistic == "pixel_mean" and alert.drift.direction == "down"
    assert alert.drift.before == pytest.approx(0.5, abs=0.005)
    assert alert.drift.after == pytest.approx(0.47, abs=0.01)
    assert alert.drift.change_in_std == pytest.approx(-3.0, abs=1.0)
    assert "lamp" in alert.drift.meaning and "usually darker" in alert.message
    assert T0 + timedelta(seconds=780) <= alert.drift.started_at <= T0 + timedelta(seconds=900)


def test_drift_state_is_checkpointed_and_a_restart_resumes_from_the_checkpoint(reference, publisher, state):
    settings = Settings(metrics_port=0, drift_checkpoint_seconds=3600)
    watch = DriftWatch(settings, reference, state, publisher, WorkerMetrics(), "v1")
    deliver(watch.observe([observation(i, 40.0 + i % 3) for i in range(10)]))  # the first batch is saved
    deliver(watch.observe([observation(i, 40.0 + i % 3) for i in range(10, 25)]))  # within the interval
    assert state.get("cam-1").events == 25, "the live monitor has every event"
    state.restart()  # a new worker restores the changelog's record (JSON, not pickle)
    restored = state.get("cam-1")
    assert restored.events == 10 and restored is not None
    assert [v for _, v in restored.tracks["anomaly_score"].recent] == [40.0 + i % 3 for i in range(10)]


def test_sighting_feed_sends_only_anomalies(publisher):
    settings = Settings(metrics_port=0)
    feed = SightingFeed(settings, publisher, WorkerMetrics(), "v1")
    batch = [observation(1, 10.0), observation(2, 99.0, Decision.REVIEW),
             observation(3, 150.0, Decision.DEFECT)]
    deliver(feed.observe(batch))
    sent = [NoveltyInput.from_bytes(v).sighting for v in publisher.on(settings.novelty_topic)]
    assert [s.event_id for s in sent] == ["e2", "e3"]
    assert sent[0].direction == [0.5] * 4 and sent[0].model_version == "v1"


@pytest.fixture(scope="module")
def store_settings():
    with s3_server() as url:
        settings = Settings(store_url=url, metrics_port=0, novelty_exemplars=4)
        store = ObjectStore(settings)
        store.ensure_bucket(settings.image_bucket)
        store.ensure_bucket(settings.evidence_bucket)
        yield settings


def test_novelty_candidate_has_evidence_and_a_label_closes_it(store_settings, publisher, state):
    settings, store, metrics = store_settings, ObjectStore(store_settings), WorkerMetrics()
    watch = NoveltyWatch(settings, state, publisher, store, metrics)
    rng = np.random.default_rng(5)
    kind = rng.normal(size=16)
    for i in range(30):
        direction = kind + rng.normal(scale=0.1, size=16)
        uri = store.put(f"s3://{settings.image_bucket}/{uuid.uuid4()}.png", b"png bytes")
        sighting = Sighting(event_id=f"n{i}", camera_id=f"cam-{i % 2}", line_id="line-1", image_uri=uri,
                            captured_at=T0, anomaly_score=120.0, model_version="v1",
                            direction=list(direction / np.linalg.norm(direction)))
        asyncio.run(watch.handle(None, NoveltyInput(sighting=sighting)))
    [opened] = [Alert.from_bytes(v) for v in publisher.on(settings.alerts_topic)]
    assert opened.kind is AlertKind.NEW_DEFECT_TYPE and opened.status is AlertStatus.OPEN
    assert opened.cameras == ["cam-0", "cam-1"] and opened.model_version == "v1"
    assert len(opened.novelty.exemplar_uris) == 4
    for uri in opened.novelty.exemplar_uris:
        assert uri.startswith(f"s3://{settings.evidence_bucket}/novelty/{opened.alert_id}/")
        assert store.get(uri) == b"png bytes"
    assert metrics.novelty_candidates.labels("open")._value.get() == 1
    first = opened.novelty.exemplar_event_ids[0]
    label = Label(event_id=first, label="spur", labelled_by="op-7", labelled_at=T0)
    asyncio.run(watch.handle(None, NoveltyInput(label=label)))
    closed = Alert.from_bytes(publisher.on(settings.alerts_topic)[-1])
    assert closed.alert_id == opened.alert_id and closed.status is AlertStatus.CLOSED
    assert closed.novelty.label == "spur" and closed.novelty.labelled_by == "op-7"
    assert metrics.novelty_candidates.labels("open")._value.get() == 0
    assert metrics.novelty_candidates.labels("closed")._value.get() == 1


def test_a_new_model_starts_the_line_afresh_and_closes_its_open_candidates_as_superseded(
        store_settings, publisher, state):
    watch = NoveltyWatch(store_settings, state, publisher, ObjectStore(store_settings), WorkerMetrics())
    rng = np.random.default_rng(6)
    kind = rng.normal(size=16)

    def sight(i: int, direction: np.ndarray, version: str) -> None:
        sighting = Sighting(event_id=f"m{i}", camera_id="cam-1", line_id="line-9",
                            image_uri="s3://camera-images/x.png", captured_at=T0, anomaly_score=1.0,
                            model_version=version,
                            direction=list(direction / np.linalg.norm(direction)))
        asyncio.run(watch.handle(None, NoveltyInput(sighting=sighting)))

    for i in range(30):
        sight(i, kind + rng.normal(scale=0.1, size=16), "v1")
    alerts = map(Alert.from_bytes, publisher.on(store_settings.alerts_topic))
    [opened] = [a for a in alerts if a.line_id == "line-9"]
    sight(30, rng.normal(size=32), "v2")  # e.g. a bundle with the 32-d space of the defect descriptor
    closed = Alert.from_bytes(publisher.on(store_settings.alerts_topic)[-1])
    assert closed.alert_id == opened.alert_id and closed.status is AlertStatus.CLOSED
    assert "superseded" in closed.message and closed.novelty.label is None
    detector = state.get("line-9")
    assert detector.model_version == "v2" and detector.candidates == []
    assert [s.event_id for s in detector.buffer] == ["m30"]
    assert detector.prefix == "novelty-line-9-v2"  # its candidates' ids cannot repeat v1's
