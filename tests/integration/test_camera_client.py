"""The camera-side client (streams/client.py) against the real broker (Tansu) and S3 server: what
it publishes is read back as a subscriber would, and a dead broker is an error, not a hang."""

import asyncio
import hashlib
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer
from minio import Minio

from latentline.schemas import CameraEvent
from latentline.streams.cli import main
from latentline.streams.client import BrokerUnavailable, CameraClient, SendError
from latentline.streams.lab.embedded import TANSU_SETTINGS, free_port, tansu_broker
from latentline.streams.settings import Settings
from latentline.streams.worker.topics import ensure_topics

pytestmark = pytest.mark.integration

IMAGES = 5


def fresh_settings(broker_url: str, store_url: str) -> Settings:
    """Settings with topics of their own on the shared broker, created explicitly (Tansu would
    auto-create a topic with its own defaults)."""
    tag = uuid.uuid4().hex[:8]
    settings = Settings(
        broker_url=broker_url, store_url=store_url, events_topic=f"camera.events.client.{tag}",
        verdicts_topic=f"inspection.verdicts.{tag}", dlq_topic=f"camera.events.dlq.{tag}",
        alerts_topic=f"inspection.alerts.{tag}", labels_topic=f"inspection.labels.{tag}",
        review_topic=f"inspection.review.{tag}", novelty_topic=f"latentline.novelty.{tag}",
        image_bucket="camera-images", **TANSU_SETTINGS,
    )
    asyncio.run(ensure_topics(settings))
    CameraClient.from_settings(settings).ensure_bucket()
    return settings


def consume(settings: Settings, expected: int, timeout: float = 30.0) -> list:
    """Every message of the events topic, from the earliest offset (Tansu's "latest" is wrong)."""
    consumer = KafkaConsumer(settings.events_topic, bootstrap_servers=settings.bootstrap_servers(),
                             group_id=None, auto_offset_reset="earliest", enable_auto_commit=False)
    messages = []
    deadline = time.monotonic() + timeout
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                messages += records
    finally:
        consumer.close()
    return messages


def store_of(settings: Settings) -> Minio:
    endpoint = settings.store_url.split("://", 1)[1]
    return Minio(endpoint, access_key="minioadmin", secret_key="minioadmin", secure=False)


def stored(store: Minio, uri: str) -> tuple[bytes, str]:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    response = store.get_object(bucket, key)
    try:
        return response.read(), response.headers["Content-Type"]
    finally:
        response.close()
        response.release_conn()


@pytest.fixture(scope="module")
def images(pcb_dir: Path) -> list[Path]:
    return sorted((pcb_dir / "test" / "good").glob("*.png"))[:IMAGES]


def test_published_events_are_read_back_in_order_with_their_images(broker_url, store_url, images):
    settings = fresh_settings(broker_url, store_url)
    published: list[CameraEvent] = []
    with CameraClient.from_settings(settings) as client:
        for index, path in enumerate(images):  # two cameras, interleaved; one waits, one queues
            published.append(client.publish(path, "cam-a", part_id=f"a-{index}"))
            published.append(client.publish(path.read_bytes(), "cam-b", part_id=f"b-{index}",
                                             metadata={"exposure_ms": 4.5, "index": index}, wait=False))
    # close() flushed cam-b's queued events: all of them are on the broker now.
    messages = consume(settings, len(published))
    assert len(messages) == len(published)

    events = [CameraEvent.from_bytes(m.value) for m in messages]  # each one a valid CameraEvent
    assert sorted(e.event_id for e in events) == sorted(e.event_id for e in published)
    by_id = {e.event_id: e for e in published}
    assert all(event == by_id[event.event_id] for event in events)
    assert all(m.key == e.camera_id.encode() for m, e in zip(messages, events))
    for camera in ("cam-a", "cam-b"):
        mine = sorted(((m.partition, m.offset), e.event_id) for m, e in zip(messages, events)
                      if e.camera_id == camera)
        assert len({partition for (partition, _), _ in mine}) == 1, f"{camera} spread over partitions"
        assert [event_id for _, event_id in mine] == [e.event_id for e in published if e.camera_id == camera]

    store = store_of(settings)
    originals = {path.name: path.read_bytes() for path in images}
    for index, event in enumerate(published):
        data, content_type = stored(store, event.image_uri)
        assert hashlib.sha256(data).hexdigest() == event.sha256
        assert data == originals[images[index // 2].name]
        assert content_type == "image/png"
        date = event.captured_at.date().isoformat()
        assert event.image_uri == f"s3://camera-images/{event.camera_id}/{date}/{event.event_id}.png"
    assert published[1].metadata == {"exposure_ms": 4.5, "index": 0}
    assert {e.line_id for e in published} == {"line-1"}


def test_an_unreachable_broker_raises_at_once_and_uploads_nothing(store_url, images):
    port = free_port()  # bound and released: nobody listens there
    client = CameraClient(f"127.0.0.1:{port}", store_url=store_url, store_access_key="minioadmin",
                          store_secret_key="minioadmin", connect_timeout=2.0)
    camera = f"cam-dead-{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match=f"127.0.0.1:{port}"):
        client.publish(images[0], camera)
    assert time.monotonic() - started < 15
    client.close()
    store = Minio(store_url.split("://", 1)[1], access_key="minioadmin", secret_key="minioadmin",
                  secure=False)
    if store.bucket_exists("camera-images"):
        assert list(store.list_objects("camera-images", prefix=f"{camera}/", recursive=True)) == []


def test_latentline_publish_sends_through_the_client(broker_url, store_url, images, tmp_path, monkeypatch,
                                                    capsys):
    settings = fresh_settings(broker_url, store_url)
    for path in images:
        (tmp_path / path.name).write_bytes(path.read_bytes())
    monkeypatch.setenv("LATENTLINE_EVENTS_TOPIC", settings.events_topic)
    argv = ["publish", str(tmp_path), "--camera", "cam-cli", "--broker", broker_url, "--store", store_url]
    assert main.main(argv) == 0
    assert "publishing cam-cli" in capsys.readouterr().err
    messages = sorted(consume(settings, len(images)), key=lambda m: m.offset)
    assert {m.key for m in messages} == {b"cam-cli"} and len({m.partition for m in messages}) == 1
    store = store_of(settings)  # in the order of the file names, as the command publishes them
    uris = [CameraEvent.from_bytes(m.value).image_uri for m in messages]
    assert [stored(store, uri)[0] for uri in uris] == [path.read_bytes() for path in images]


def test_events_the_broker_never_acknowledges_are_raised_not_dropped(store_url, images, tmp_path):
    with tansu_broker(tmp_path / "tansu.log") as url:  # a broker of its own, to stop
        settings = fresh_settings(url, store_url)
        client = CameraClient.from_settings(settings, delivery_timeout=3.0)
        first = client.publish(images[0], "cam-lost")  # connected, the topic's metadata known
    # The broker is gone: a waiting publish raises, and a queued one is raised by close().
    with pytest.raises(SendError, match="not acknowledged") as waited:
        client.publish(images[1], "cam-lost")
    queued = client.publish(images[2], "cam-lost", wait=False)
    started = time.monotonic()
    with pytest.raises(SendError, match="1 event") as flushed:
        client.close()
    assert time.monotonic() - started < 15
    assert flushed.value.events == [queued] and waited.value.events[0].event_id != first.event_id
    # Their images are stored: the events can be sent again once a broker is back.
    store = store_of(settings)
    assert stored(store, queued.image_uri)[0] == images[2].read_bytes()
    assert stored(store, waited.value.events[0].image_uri)[0] == images[1].read_bytes()
