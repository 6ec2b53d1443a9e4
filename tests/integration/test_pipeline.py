"""The whole path on the real Tansu broker, S3 server and a worker process."""

import io
import json
import random
import uuid
from datetime import UTC, datetime

import numpy as np
import pytest
from PIL import Image
from scipy.stats import spearmanr

from latentline.models.dataset import list_images, read_values
from latentline.schemas import CameraEvent, ErrorKind
from latentline.streams.worker.producer import publish_paths, stage_paths
from latentline.streams.worker.store import ObjectStore, sha256_hex
from tests.integration.conftest import SPOT, make_stack, send_raw

pytestmark = pytest.mark.integration
MAX_PIXELS = 1_000_000


@pytest.fixture(scope="module")
def stack(broker_url, store_url, bundle_dir, tmp_path_factory):
    stack = make_stack(broker_url, store_url, bundle_dir, tmp_path_factory.mktemp("pipeline"),
                       max_image_pixels=MAX_PIXELS)
    with stack.worker():
        yield stack


def sample(pcb_dir, label: str, count: int, seed: int = 0):
    images = list_images(pcb_dir, "test", label)
    return [item.path for item in random.Random(seed).sample(images, count)]


def test_one_verdict_per_event_keyed_by_camera(stack, pcb_dir):
    paths = sample(pcb_dir, "good", 12) + sample(pcb_dir, "short", 12)
    cameras = {}

    async def scenario(producer, simulator):
        events = [await simulator.publish(p, f"cam-{i % 3}") for i, p in enumerate(paths)]
        cameras.update({e.event_id: e.camera_id for e in events})
        return cameras

    outcomes = stack.run(scenario)
    assert set(outcomes.verdicts) == set(cameras)
    assert outcomes.duplicates == 0 and outcomes.dead_letters == []
    for event_id, verdict in outcomes.verdicts.items():
        assert outcomes.keys[event_id] == cameras[event_id].encode()
        assert verdict.camera_id == cameras[event_id]
        assert verdict.model_version and verdict.batch_size >= 1
    scores = {v.event_id: v.anomaly_score for v in outcomes.verdicts.values()}
    good = [scores[e] for e, p in zip(cameras, paths) if "good" in p.parts]
    bad = [scores[e] for e, p in zip(cameras, paths) if "good" not in p.parts]
    assert np.median(bad) > np.median(good)
    assert all(0 <= s <= 1 for s in scores.values())  # normalised: 0.5 is the threshold
    assert {v.threshold for v in outcomes.verdicts.values()} == {0.5}


def test_staged_images_are_answered_as_captured_when_their_events_are_sent(stack, pcb_dir):
    """The bench's publishing: every image uploaded first, each event sent later saying so."""
    paths = sample(pcb_dir, "good", 4, seed=3) + sample(pcb_dir, "short", 4, seed=3)
    sent_after = {}

    async def scenario(producer, simulator):
        jobs = [(p, "cam-staged") for p in paths]
        staged = await stage_paths(simulator, jobs)
        staged_at = datetime.now(UTC)
        assert all(e.captured_at < staged_at for e in staged)
        events = await publish_paths(simulator, jobs, rate=20, staged=staged)
        assert [e.event_id for e in events] == [e.event_id for e in staged]
        sent_after.update({e.event_id: staged_at for e in events if e.captured_at >= staged_at})
        return [e.event_id for e in events]

    outcomes = stack.run(scenario)  # earlier tests' verdicts are on the topic too
    assert len(sent_after) == len(paths) and set(sent_after) <= set(outcomes.verdicts)
    assert outcomes.duplicates == 0 and outcomes.dead_letters == []


def test_anomalous_verdicts_link_their_anomaly_map(stack, pcb_dir):
    """The overlay is in the object store before the verdict that links it is published."""
    paths = sample(pcb_dir, "short", 8, seed=1) + sample(pcb_dir, "good", 4, seed=1)

    async def scenario(producer, simulator):
        return [(await simulator.publish(p, "cam-maps")).event_id for p in paths]

    outcomes = stack.run(scenario)
    store = ObjectStore(stack.settings)
    anomalous = [v for v in outcomes.verdicts.values() if v.decision.value != "ok"]
    assert anomalous, "short circuits should reach the review band at least"
    for verdict in outcomes.verdicts.values():
        assert (verdict.heatmap_uri is None) == (verdict.decision.value == "ok")
    for verdict in anomalous:
        assert verdict.heatmap_uri.startswith(f"s3://{stack.settings.evidence_bucket}/heatmaps/")
        overlay = Image.open(io.BytesIO(store.get(verdict.heatmap_uri)))
        assert overlay.size == Image.open(io.BytesIO(store.get(verdict.image_uri))).size


def test_redelivered_event_gets_no_second_verdict(stack, pcb_dir):
    path = sample(pcb_dir, "open", 1)[0]
    before = stack.metrics().get("latentline_duplicate_events_total", 0)

    async def scenario(producer, simulator):
        event = await simulator.publish(path, "cam-dup")
        # the same event again, as a producer retry or a redelivery would send it
        await producer.send_and_wait(stack.settings.events_topic, event.to_bytes(), key=b"cam-dup")
        return [event.event_id]

    outcomes = stack.run(scenario)
    assert outcomes.duplicates == 0
    assert stack.metrics()["latentline_duplicate_events_total"] == before + 1


def png_bytes(size=(64, 64), mode="L", fmt="PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, 128).save(buffer, format=fmt)
    return buffer.getvalue()


def event_for(uri: str, data: bytes | None, **changes) -> CameraEvent:
    fields = {
        "event_id": str(uuid.uuid4()), "camera_id": "cam-bad", "line_id": "line-1",
        "captured_at": datetime.now(UTC), "image_uri": uri,
        "sha256": sha256_hex(data) if data is not None else None,
    }
    return CameraEvent(**(fields | changes))


def bad_input(kind: ErrorKind, store: ObjectStore, bucket: str) -> tuple[bytes, str | None]:
    """The raw message for one kind of bad input; uploads what it references."""
    def upload(data: bytes, name: str) -> str:
        return store.put(f"s3://{bucket}/bad/{uuid.uuid4()}-{name}", data)

    if kind is ErrorKind.INVALID_JSON:
        return b'{"event_id": "x", oops', None
    if kind is ErrorKind.SCHEMA_VIOLATION:
        return json.dumps({"event_id": "x", "camera_id": "cam-bad"}).encode(), None
    if kind is ErrorKind.MISSING_OBJECT:
        return event_for(f"s3://{bucket}/nowhere/{uuid.uuid4()}.png", None).to_bytes(), None
    if kind is ErrorKind.CHECKSUM_MISMATCH:
        data = png_bytes()
        return event_for(upload(data, "a.png"), None, sha256="0" * 64).to_bytes(), None
    if kind is ErrorKind.CORRUPT_IMAGE:
        data = _noisy_png()[:400]  # a valid header, then the file just stops
        return event_for(upload(data, "c.png"), data).to_bytes(), None
    if kind is ErrorKind.IMAGE_TOO_LARGE:
        data = png_bytes(size=(1200, 1200))
        return event_for(upload(data, "big.png"), data).to_bytes(), None
    if kind is ErrorKind.UNSUPPORTED_FORMAT:
        data = png_bytes(fmt="BMP")
        return event_for(upload(data, "x.bmp"), data).to_bytes(), None
    raise AssertionError(kind)


def _noisy_png() -> bytes:
    pixels = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


# one bad message at a time; tests/integration/test_poison.py sends every kind in one burst
BAD_KINDS = [ErrorKind.INVALID_JSON, ErrorKind.SCHEMA_VIOLATION, ErrorKind.MISSING_OBJECT,
             ErrorKind.CHECKSUM_MISMATCH, ErrorKind.CORRUPT_IMAGE, ErrorKind.IMAGE_TOO_LARGE,
             ErrorKind.UNSUPPORTED_FORMAT]


@pytest.mark.parametrize("kind", BAD_KINDS, ids=str)
def test_bad_input_goes_to_dead_letters_and_next_event_is_inspected(stack, pcb_dir, kind):
    store = ObjectStore(stack.settings)
    payload, _ = bad_input(kind, store, stack.settings.image_bucket)
    good_path = sample(pcb_dir, "good", 1, seed=hash(kind) % 1000)[0]
    before = stack.metrics().get("latentline_dead_letters_total", 0)
    marker = {}

    async def scenario(producer, simulator):
        await send_raw(producer, stack.settings.events_topic, payload, key="cam-bad")
        good = await simulator.publish(good_path, "cam-bad")
        marker["good"] = good.event_id
        return [good.event_id]

    outcomes = stack.run(scenario)
    letters = [d for d in outcomes.dead_letters if d.payload_base64 and d.error_kind == kind]
    matching = [d for d in letters if d.payload == payload.decode("utf-8", "replace") or d.payload is None]
    assert matching, f"no {kind} dead letter; got {[d.error_kind for d in outcomes.dead_letters]}"
    assert matching[0].error_message
    assert marker["good"] in outcomes.verdicts
    assert stack.metrics()["latentline_dead_letters_total"] >= before + 1


def test_verdicts_measure_spots_in_millimetres(stack, spots_dir):
    """The bundle measures spot_diameter (calibrated on generated spots); verdicts of spots it has
    not seen state the diameter with its uncertainty, in the right order, and Prometheus counts
    every measurement."""
    truth = read_values(spots_dir / "test" / SPOT)
    true_of: dict[str, float] = {}
    counts = ("latentline_measurement_count", "latentline_measurements_out_of_range_total")
    before = sum(stack.metrics().get(name, 0) for name in counts)

    async def scenario(producer, simulator):
        for name, value in truth.items():
            true_of[(await simulator.publish(spots_dir / "test" / SPOT / name, "cam-spots")).event_id] = value
        return list(true_of)

    outcomes = stack.run(scenario)
    assert set(true_of) <= set(outcomes.verdicts)  # (the topic also holds earlier tests' verdicts)
    measured = {}
    for event_id in true_of:
        spot = outcomes.verdicts[event_id].measurements[SPOT]
        assert spot.unit == "mm" and spot.uncertainty > 0 and spot.coverage == 0.95
        measured[event_id] = spot.value
    assert spearmanr([measured[e] for e in true_of], list(true_of.values()))[0] > 0.8
    assert sum(stack.metrics().get(name, 0) for name in counts) == before + len(truth)
