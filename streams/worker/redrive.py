"""``latentline redrive``: re-publish chosen dead letters once their cause is fixed.

Reads the dead-letter topic from the beginning (outside any consumer group, so it can be run
again), keeps the letters that match every given filter (kind, failure time range, event id),
and sends each original payload back to the input topic, keyed by its camera as a producer
would. The event keeps its event_id: if it had somehow been answered meanwhile, the worker's
ledger answers the redriven copy as a duplicate instead of a second verdict. Letters whose payload
was truncated are redriven from the whole copy in the object store (``payload_uri``).
"""

import asyncio
import base64
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from latentline.schemas import DeadLetter, ErrorKind
from latentline.streams.settings import Settings
from latentline.streams.worker.kafka_security import aiokafka_options
from latentline.streams.worker.producer import kafka_producer
from latentline.streams.worker.store import ObjectStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RedriveFilter:
    kinds: frozenset[ErrorKind] = frozenset()  # empty: every kind
    since: datetime | None = None
    until: datetime | None = None
    event_ids: frozenset[str] = frozenset()  # empty: every event

    def matches(self, letter: DeadLetter) -> bool:
        return ((not self.kinds or letter.error_kind in self.kinds)
                and (self.since is None or letter.failed_at >= self.since)
                and (self.until is None or letter.failed_at < self.until)
                and (not self.event_ids or letter.event_id in self.event_ids))


@dataclass
class RedriveReport:
    read: int = 0
    redriven: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> letters that matched but could not go
    by_kind: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {"read": self.read, "redriven": self.redriven, "skipped": dict(self.skipped),
                "redriven_by_kind": dict(self.by_kind)}


async def redrive(settings: Settings, chosen: RedriveFilter, dry_run: bool = False,
                  idle_seconds: float = 3.0) -> RedriveReport:
    report = RedriveReport()
    letters = [letter for letter in await read_dead_letters(settings, idle_seconds) if chosen.matches(letter)]
    report.read = len(letters)
    producer = None if dry_run else kafka_producer(settings)
    if producer:
        await producer.start()
    try:
        store = ObjectStore(settings)
        for letter in letters:
            payload = await asyncio.to_thread(original_payload, letter, store)
            if payload is None:
                report.skipped["payload_unavailable" if letter.payload_size else "empty_message"] += 1
                continue
            if producer:
                key = letter.camera_id.encode() if letter.camera_id else None
                await producer.send_and_wait(settings.events_topic, payload, key=key)
            report.redriven += 1
            report.by_kind[letter.error_kind.value] += 1
    finally:
        if producer:
            await producer.stop()
    return report


def original_payload(letter: DeadLetter, store: ObjectStore) -> bytes | None:
    """The bytes the camera sent; None for a tombstone, or a truncated letter whose copy is gone."""
    if letter.payload_size == 0:
        return None
    if not letter.payload_truncated:
        return base64.b64decode(letter.payload_base64)
    if letter.payload_uri is None:
        return None
    try:
        return store.get(letter.payload_uri)
    except Exception as exc:  # missing or store down: report it, redrive the rest
        log.warning("payload of %s not readable: %s", letter.event_id, exc)
        return None


async def read_dead_letters(settings: Settings, idle_seconds: float) -> list[DeadLetter]:
    """Every letter on the topic: until each partition is read to its high watermark, or
    nothing arrived for ``idle_seconds`` (end offsets are not asked for: Tansu answers them wrong)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers(), enable_auto_commit=False,
                                **aiokafka_options(settings))
    await consumer.start()
    try:
        numbers = consumer.partitions_for_topic(settings.dlq_topic) or range(settings.partitions)
        partitions = [TopicPartition(settings.dlq_topic, p) for p in numbers]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        return await _drain(consumer, partitions, idle_seconds)
    finally:
        await consumer.stop()


async def _drain(consumer: AIOKafkaConsumer, partitions: list, idle_seconds: float) -> list[DeadLetter]:
    letters: list[DeadLetter] = []
    while True:
        batches = await consumer.getmany(timeout_ms=int(idle_seconds * 1000))
        letters += [letter for records in batches.values() for r in records if (letter := _letter(r.value))]
        if not batches or await _caught_up(consumer, partitions):
            return letters


async def _caught_up(consumer: AIOKafkaConsumer, partitions: list) -> bool:
    for tp in partitions:
        highwater = consumer.highwater(tp)
        if highwater is None or await consumer.position(tp) < highwater:
            return False
    return True


def _letter(value: bytes | None) -> DeadLetter | None:
    try:
        return DeadLetter.from_bytes(value)
    except ValueError:
        log.warning("a record on the dead-letter topic is not a DeadLetter; skipped")
        return None
