"""Dead letters are bounded: a huge payload travels truncated, whole in the store, redrivable."""

import asyncio
import base64
import hashlib
import json

import pytest

from latentline.schemas import DeadLetter, ErrorKind
from latentline.streams.lab.embedded import s3_server
from latentline.streams.settings import Settings
from latentline.streams.worker.dead_letters import DeadLetterWriter, Incoming, Rejected, parse_event
from latentline.streams.worker.metrics import WorkerMetrics
from latentline.streams.worker.redrive import original_payload
from latentline.streams.worker.store import ObjectStore


@pytest.fixture(scope="module")
def store_settings():
    with s3_server() as url:
        settings = Settings(store_url=url, metrics_port=0, dead_letter_max_payload_bytes=1024)
        ObjectStore(settings).ensure_bucket(settings.evidence_bucket)
        yield settings


def event_with_metadata(size: int) -> bytes:
    return json.dumps({
        "event_id": "e-big", "camera_id": "cam-1", "line_id": "l", "captured_at": "2026-01-01T00:00:00Z",
        "image_uri": "s3://camera-images/absent.png", "metadata": {"blob": "x" * size},
    }).encode()


def test_a_huge_payload_is_truncated_with_its_digest_and_kept_whole_in_the_store(store_settings, publisher):
    store = ObjectStore(store_settings)
    writer = DeadLetterWriter(publisher, store_settings, WorkerMetrics(), store)
    payload = event_with_metadata(5 * 2**20)
    incoming = Incoming(payload, "camera.events", 2, 7)
    error = Rejected(ErrorKind.MISSING_OBJECT, "image not found")
    asyncio.run(writer.send(incoming, error, parse_event(incoming)))
    [(topic, key, value)] = publisher.sent
    letter = DeadLetter.from_bytes(value)
    assert topic == store_settings.dlq_topic and key == "cam-1"
    assert len(value) < 4096, "the letter itself stays small"
    assert letter.payload_truncated and letter.payload is None
    assert letter.payload_size == len(payload)
    assert letter.payload_sha256 == hashlib.sha256(payload).hexdigest()
    assert base64.b64decode(letter.payload_base64) == payload[:1024]
    assert original_payload(letter, store) == payload


def test_a_small_payload_travels_whole_and_a_tombstone_has_a_reason(store_settings, publisher):
    writer = DeadLetterWriter(publisher, store_settings, WorkerMetrics())
    tombstone = Incoming(None, "camera.events", 0, 1)
    with pytest.raises(Rejected) as rejected:
        parse_event(tombstone)
    assert rejected.value.kind is ErrorKind.EMPTY_MESSAGE
    asyncio.run(writer.send(tombstone, rejected.value))
    small = Incoming(b"not json", "camera.events", 0, 2)
    with pytest.raises(Rejected) as invalid:
        parse_event(small)
    asyncio.run(writer.send(small, invalid.value))
    first, second = (DeadLetter.from_bytes(v) for v in publisher.on(store_settings.dlq_topic))
    assert first.error_kind is ErrorKind.EMPTY_MESSAGE and first.payload_size == 0
    assert second.error_kind is ErrorKind.INVALID_JSON and second.payload == "not json"
    assert not second.payload_truncated and second.payload_uri is None
