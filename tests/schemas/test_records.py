"""The wire records: strict validation and a lossless JSON round trip."""

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from latentline.schemas import CameraEvent, DeadLetter, Decision, ErrorKind, StageTimings, Verdict

CAPTURED = datetime(2024, 5, 17, 8, 30, 12, 123456, tzinfo=UTC)
DIGEST = "ab" * 32


def camera_event_fields(**overrides) -> dict:
    fields = {
        "event_id": "evt-0001",
        "camera_id": "cam.line1:top",
        "line_id": "line-1",
        "captured_at": CAPTURED,
        "image_uri": "s3://latentline-images/line-1/evt-0001.png",
        "part_id": "PCB_42",
        "sha256": DIGEST,
        "metadata": {"exposure_ms": 4, "gain": 1.5, "lamp": "ring", "flash": True},
    }
    return fields | overrides


def make_verdict(**overrides) -> Verdict:
    fields = {
        "event_id": "evt-0001",
        "camera_id": "cam-1",
        "line_id": "line-1",
        "image_uri": "s3://latentline-images/line-1/evt-0001.png",
        "captured_at": CAPTURED,
        "model_version": "20240517T080000Z-deadbeef",
        "anomaly_score": 0.82,
        "threshold": 0.5,
        "review_threshold": 0.38,
        "decision": Decision.DEFECT,
        "heatmap_uri": "s3://latentline-evidence/heatmaps/evt-0001.png",
        "batch_size": 4,
        "timings": StageTimings(
            queue_seconds=0.1,
            fetch_seconds=0.02,
            decode_seconds=0.003,
            encode_seconds=0.04,
            score_seconds=0.0005,
        ),
        "processed_at": CAPTURED + timedelta(seconds=1),
    }
    return Verdict(**(fields | overrides))


def make_dead_letter(**overrides) -> DeadLetter:
    raw = b'{"event_id": "evt-0001", "camera_id": 7}'
    fields = {
        "error_kind": ErrorKind.SCHEMA_VIOLATION,
        "error_message": "camera_id: Input should be a valid string",
        "event_id": "evt-0001",
        "camera_id": None,
        "payload": raw.decode(),
        "payload_base64": base64.b64encode(raw).decode(),
        "source_topic": "camera.events",
        "source_partition": 3,
        "source_offset": 1234,
        "failed_at": CAPTURED,
    }
    return DeadLetter(**(fields | overrides))


def test_camera_event_round_trip():
    event = CameraEvent(**camera_event_fields())
    data = event.to_bytes()
    assert isinstance(data, bytes)
    again = CameraEvent.from_bytes(data)
    assert again == event
    assert again.captured_at == CAPTURED and again.captured_at.tzinfo is not None
    assert again.metadata == {"exposure_ms": 4, "gain": 1.5, "lamp": "ring", "flash": True}
    assert [type(v) for v in again.metadata.values()] == [int, float, str, bool]  # no coercion
    # str input is accepted too
    assert CameraEvent.from_bytes(data.decode()) == event


def test_camera_event_optional_fields_default():
    minimal = {k: v for k, v in camera_event_fields().items() if k not in ("part_id", "sha256", "metadata")}
    event = CameraEvent(**minimal)
    assert event.part_id is None and event.sha256 is None and event.metadata == {}
    assert CameraEvent.from_bytes(event.to_bytes()) == event


def test_camera_event_keeps_non_utc_zone_instant():
    zoned = CAPTURED.astimezone(timezone(timedelta(hours=2)))
    event = CameraEvent(**camera_event_fields(captured_at=zoned))
    assert CameraEvent.from_bytes(event.to_bytes()).captured_at == CAPTURED


@pytest.mark.parametrize("record", ["camera_event", "verdict", "dead_letter"])
def test_schema_version_is_in_json(record):
    instance = {
        "camera_event": lambda: CameraEvent(**camera_event_fields()),
        "verdict": make_verdict,
        "dead_letter": make_dead_letter,
    }[record]()
    assert json.loads(instance.to_bytes())["schema_version"] == 1


def test_camera_event_rejects_unknown_field():
    with pytest.raises(ValidationError, match="extra"):
        CameraEvent(**camera_event_fields(camera="cam-1"))
    payload = json.loads(CameraEvent(**camera_event_fields()).to_bytes())
    payload["imageUri"] = payload["image_uri"]
    with pytest.raises(ValidationError):
        CameraEvent.from_bytes(json.dumps(payload))


def test_camera_event_rejects_other_schema_version():
    payload = json.loads(CameraEvent(**camera_event_fields()).to_bytes())
    payload["schema_version"] = 2
    with pytest.raises(ValidationError):
        CameraEvent.from_bytes(json.dumps(payload))


def test_camera_event_rejects_naive_datetime():
    with pytest.raises(ValidationError, match="timezone"):
        CameraEvent(**camera_event_fields(captured_at=datetime(2024, 5, 17, 8, 30)))
    payload = json.loads(CameraEvent(**camera_event_fields()).to_bytes())
    payload["captured_at"] = "2024-05-17T08:30:12"
    with pytest.raises(ValidationError):
        CameraEvent.from_bytes(json.dumps(payload))


@pytest.mark.parametrize(
    "uri",
    [
        "http://bucket/key.png",
        "/data/images/key.png",
        "s3://bucket",
        "s3://bucket/",
        "s3://Bucket/key.png",  # bucket names are lower case
        "s3://-bucket/key.png",
        "s3://b/key.png",  # too short a bucket name
    ],
)
def test_camera_event_rejects_bad_image_uri(uri):
    with pytest.raises(ValidationError, match="image_uri"):
        CameraEvent(**camera_event_fields(image_uri=uri))


@pytest.mark.parametrize(
    "digest",
    ["ab" * 31, "ab" * 33, "AB" * 32, "g" * 64, "", "ab" * 32 + "\n"],
)
def test_camera_event_rejects_bad_sha256(digest):
    with pytest.raises(ValidationError, match="sha256"):
        CameraEvent(**camera_event_fields(sha256=digest))


@pytest.mark.parametrize("camera_id", ["", "cam 1", "cam/1", "x" * 129])
def test_camera_event_rejects_bad_identifier(camera_id):
    with pytest.raises(ValidationError, match="camera_id"):
        CameraEvent(**camera_event_fields(camera_id=camera_id))


def test_records_are_frozen():
    event = CameraEvent(**camera_event_fields())
    with pytest.raises(ValidationError):
        event.camera_id = "other"


def test_verdict_round_trip():
    verdict = make_verdict()
    again = Verdict.from_bytes(verdict.to_bytes())
    assert again == verdict
    assert again.decision is Decision.DEFECT
    assert isinstance(again.timings, StageTimings)
    assert json.loads(verdict.to_bytes())["decision"] == "defect"


def test_verdict_validation():
    with pytest.raises(ValidationError, match="batch_size"):
        make_verdict(batch_size=0)
    with pytest.raises(ValidationError, match="decision"):
        make_verdict(decision="maybe")
    with pytest.raises(ValidationError, match="fetch_seconds"):
        StageTimings(
            queue_seconds=0, fetch_seconds=-0.1, decode_seconds=0, encode_seconds=0, score_seconds=0
        )
    with pytest.raises(ValidationError, match="processed_at"):
        make_verdict(processed_at=datetime(2024, 5, 17, 8, 31))


def test_dead_letter_round_trip():
    letter = make_dead_letter()
    again = DeadLetter.from_bytes(letter.to_bytes())
    assert again == letter
    assert again.error_kind is ErrorKind.SCHEMA_VIOLATION
    assert base64.b64decode(again.payload_base64).decode() == again.payload


def test_dead_letter_round_trip_binary_payload():
    raw = b"\x89PNG\r\n\x1a\n\xff\xfe"
    letter = make_dead_letter(
        error_kind=ErrorKind.INVALID_JSON,
        event_id=None,
        payload=None,
        payload_base64=base64.b64encode(raw).decode(),
    )
    again = DeadLetter.from_bytes(letter.to_bytes())
    assert again == letter
    assert base64.b64decode(again.payload_base64) == raw


def test_dead_letter_rejects_unknown_error_kind():
    with pytest.raises(ValidationError, match="error_kind"):
        make_dead_letter(error_kind="out_of_coffee")


@pytest.mark.parametrize("score", [-0.1, 1.5])
def test_verdict_score_is_normalised(score):
    with pytest.raises(ValidationError, match="anomaly_score"):
        make_verdict(anomaly_score=score)
