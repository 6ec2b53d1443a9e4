"""Every kind of poison input in one burst, between valid events, through the real broker, S3
server and worker: each message gets exactly one outcome, and the worker still consumes after it.

The worker reaches the store through a real TCP proxy that misbehaves for chosen objects only:
it drops the connection in the middle of one download (a transient fault: retried, then a
verdict) and dribbles another so slowly that it runs past the fetch deadline (slow_object).
A NaN-producing image could not be made with a pretrained encoder; tests/streams/worker/test_inspect.py
covers a NaN score with a model that returns one.
"""

import io
import json
import uuid
import zlib

import numpy as np
import pytest
from aiokafka import AIOKafkaProducer
from PIL import Image

from latentline.schemas import ErrorKind
from latentline.streams.worker.store import ObjectStore, sha256_hex
from tests.integration.conftest import make_stack, send_raw
from tests.integration.test_pipeline import bad_input, event_for, sample
from tests.streams.faulty_proxy import Fault, FaultyProxy

pytestmark = pytest.mark.integration

MAX_BYTES = 1_000_000
BIG_METADATA = 4_500_000  # its dead letter once broke the producer's request size


def decompression_bomb() -> bytes:
    """A valid 1-bit PNG of 20,000 x 20,000 pixels (400 megapixels) in about 50 kB."""
    width = height = 20_000
    row = b"\x00" + b"\x00" * (width // 8)
    data = zlib.compress(row * height, 9)
    chunk = lambda kind, body: (len(body).to_bytes(4, "big") + kind + body  # noqa: E731
                                + zlib.crc32(kind + body).to_bytes(4, "big"))
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([1, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def noisy_png(side: int, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (side, side), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def proxied_stack(broker_url, store_url, bundle_dir, tmp_path):
    proxy = FaultyProxy(int(store_url.rsplit(":", 1)[1]))
    stack = make_stack(broker_url, proxy.url, bundle_dir, tmp_path, max_image_bytes=MAX_BYTES,
                       fetch_deadline_seconds=3.0, retry_initial_seconds=0.2, retry_max_seconds=1.0)
    try:
        yield stack, proxy
    finally:
        proxy.close()


class Burst:
    """Builds the burst's messages and remembers what each should become."""

    def __init__(self, stack, store: ObjectStore):
        self.stack, self.store, self.bucket = stack, store, stack.settings.image_bucket
        self.expected: dict[str, ErrorKind | None] = {}  # event_id -> dead-letter kind, None: verdict
        self.anonymous: list[ErrorKind] = []  # dead letters of messages without an event id
        self.raw: list[bytes | None] = []

    def upload(self, data: bytes, name: str) -> str:
        return self.store.put(f"s3://{self.bucket}/poison/{uuid.uuid4()}-{name}", data)

    def event(self, uri: str, data: bytes | None, kind: ErrorKind | None, **changes) -> None:
        event = event_for(uri, data, **changes)
        self.expected[event.event_id] = kind
        self.raw.append(event.to_bytes())

    def anonymous_message(self, value: bytes | None, kind: ErrorKind) -> None:
        self.anonymous.append(kind)
        self.raw.append(value)


def build_burst(stack, proxy: FaultyProxy, pcb_dir) -> Burst:
    burst = Burst(stack, ObjectStore(stack.settings))
    bucket = burst.bucket
    burst.anonymous_message(None, ErrorKind.EMPTY_MESSAGE)  # a tombstone
    for kind in (ErrorKind.INVALID_JSON, ErrorKind.SCHEMA_VIOLATION):
        burst.anonymous_message(bad_input(kind, burst.store, bucket)[0], kind)
    for uri in (f"s3://{bucket}/?x", f"s3://{bucket}/a#b", f"s3://{bucket}/a/../b.png",
                f"s3://{bucket}/a//b.png"):
        burst.event(uri, None, ErrorKind.INVALID_URI)
    burst.event(f"{stack.settings.model_uri}/manifest.json", None, ErrorKind.POLICY_VIOLATION)
    burst.event(f"s3://{bucket}/nowhere/{uuid.uuid4()}.png", None, ErrorKind.MISSING_OBJECT,
                metadata={"blob": "x" * BIG_METADATA})
    oversized = noisy_png(1100)
    burst.event(burst.upload(oversized, "oversized.png"), oversized, ErrorKind.IMAGE_TOO_LARGE)
    bomb = decompression_bomb()
    burst.event(burst.upload(bomb, "bomb.png"), bomb, ErrorKind.IMAGE_TOO_LARGE)
    slow = noisy_png(200, seed=1)
    proxy.path_faults["slow-"] = Fault(dribble=(1024, 0.25))  # ~4 kB/s: 40 kB take 10 s
    burst.event(burst.upload(slow, "slow-.png"), slow, ErrorKind.SLOW_OBJECT)
    dropped = sample(pcb_dir, "good", 1, seed=7)[0].read_bytes()
    uri = burst.upload(dropped, "drop-.png")
    proxy.path_faults["GET /" + uri.split("://", 1)[1]] = Fault(cut_after=len(dropped) // 3, times=2)
    burst.event(uri, dropped, None)
    for kind in (ErrorKind.CHECKSUM_MISMATCH, ErrorKind.CORRUPT_IMAGE, ErrorKind.UNSUPPORTED_FORMAT):
        message = bad_input(kind, burst.store, bucket)[0]
        burst.expected[json.loads(message)["event_id"]] = kind
        burst.raw.append(message)
    return burst


def test_a_burst_of_poison_costs_no_event_and_the_worker_keeps_consuming(proxied_stack, pcb_dir):
    stack, proxy = proxied_stack
    burst = build_burst(stack, proxy, pcb_dir)
    paths = sample(pcb_dir, "good", 6, seed=3)
    valid: dict[str, str] = {}

    async def scenario(producer, simulator):
        big = AIOKafkaProducer(bootstrap_servers=stack.settings.bootstrap_servers(),
                               max_request_size=8 * 2**20)
        await big.start()
        try:
            first = [await simulator.publish(p, "cam-p") for p in paths[:3]]
            for value in burst.raw:
                await big.send_and_wait(stack.settings.events_topic, value, key=b"cam-p")
            await send_raw(producer, stack.settings.events_topic, first[0].to_bytes(), key="cam-p")
            after = [await simulator.publish(p, "cam-p") for p in paths[3:]]
        finally:
            await big.stop()
        valid.update({e.event_id: "valid" for e in first + after})
        return [*valid, *burst.expected]

    with stack.worker():
        outcomes = stack.run(scenario, until=lambda o: sum(d.event_id is None for d in o.dead_letters)
                             >= len(burst.anonymous))
    letters = {d.event_id: d for d in outcomes.dead_letters if d.event_id}
    assert not set(letters) & set(outcomes.verdicts), "an event got a verdict and a dead letter"
    assert outcomes.duplicates == 0, "the redelivered event got a second verdict"
    assert len(letters) == sum(d.event_id is not None for d in outcomes.dead_letters), "a second letter"
    for event_id, kind in burst.expected.items():
        got = letters[event_id].error_kind if event_id in letters else None
        assert got == kind, f"{event_id}: expected {kind}, got {got}"
    assert set(valid) <= set(outcomes.verdicts), "valid events after the burst were not answered"
    anonymous = sorted(d.error_kind for d in outcomes.dead_letters if d.event_id is None)
    assert anonymous == sorted(burst.anonymous)
    big = next(d for d in letters.values() if d.payload_size > BIG_METADATA)
    assert big.payload_truncated and big.payload_uri and big.payload_sha256
    assert sha256_hex(ObjectStore(stack.settings).get(big.payload_uri)) == big.payload_sha256
    assert not any(d.error_kind is ErrorKind.STORE_UNAVAILABLE for d in outcomes.dead_letters)
