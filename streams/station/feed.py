"""Keeps the station's SQLite up to date from the topics: review requests, verdicts, alerts and
labels, each read from the beginning on every start (outside any consumer group), so that every
station instance rebuilds the same state and an answer from any of them closes a request in all."""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from pydantic import ValidationError

from latentline.schemas import Alert, Label, ReviewRequest, Verdict
from latentline.streams.client import KafkaSecurity
from latentline.streams.settings import Settings
from latentline.streams.station.db import StationDB

log = logging.getLogger(__name__)
REFRESH_SECONDS = 5.0  # how often topics (and partitions) that appeared since are picked up


@dataclass(frozen=True)
class Source:
    topic: str
    apply: Callable  # (db, connection, record) -> None
    record: type


def sources(settings: Settings, db: StationDB) -> dict[str, Source]:
    return {s.topic: s for s in (
        Source(settings.review_topic, db.add_request, ReviewRequest),
        Source(settings.verdicts_topic, db.add_verdict, Verdict),
        Source(settings.alerts_topic, db.add_alert, Alert),
        Source(settings.labels_topic, db.add_label, Label),
    )}


def apply_records(db: StationDB, by_topic: dict[str, Source], records: list[tuple[str, bytes]]) -> int:
    """Applies (topic, value) records in one transaction; returns how many were invalid (skipped:
    the worker dead-letters bad labels, and nothing on these topics may stop the station)."""
    invalid = 0
    with db.transaction() as connection:
        for topic, value in records:
            source = by_topic[topic]
            try:
                source.apply(connection, source.record.from_bytes(value))
            except (ValidationError, ValueError, TypeError) as exc:
                invalid += 1
                log.warning("skipped a record on %s: %s", topic, str(exc).splitlines()[0])
    return invalid


class Feed:
    """A thread consuming the four topics into the database."""

    def __init__(self, settings: Settings, db: StationDB):
        self.settings, self.db = settings, db
        self.by_topic = sources(settings, db)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="station-feed", daemon=True)
        self.targets: dict[TopicPartition, int] = {}  # end offsets at assignment: caught up past them
        self.consumer: KafkaConsumer | None = None
        self.checked = False
        self.caught_up = False
        self.invalid = 0
        self.error: str | None = None

    def start(self) -> "Feed":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=10)

    def ready(self) -> bool:
        """Caught up with what the topics held when they were found."""
        return self.caught_up

    def _check_caught_up(self, consumer: KafkaConsumer) -> None:
        # In the feed's thread: a KafkaConsumer is not thread-safe.
        if self.checked and not self.caught_up:
            self.caught_up = all(consumer.position(tp) >= end for tp, end in self.targets.items())

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self._consume()
            except Exception as exc:  # the broker went away: start over, rebuilding from the topics
                self.error = str(exc)
                log.exception("station feed failed; reconnecting")
                self.stop_event.wait(2.0)

    def _consume(self) -> None:
        self.consumer = consumer = self._new_consumer()
        self.targets, self.checked, self.caught_up = {}, False, False
        self.db.reset()
        refreshed = 0.0
        try:
            while not self.stop_event.is_set():
                if time.monotonic() - refreshed > REFRESH_SECONDS:
                    self._assign(consumer)
                    refreshed = time.monotonic()
                batches = consumer.poll(timeout_ms=200, max_records=2000)
                records = [(tp.topic, m.value) for tp, messages in batches.items() for m in messages
                           if m.value is not None]
                if records:
                    self.invalid += apply_records(self.db, self.by_topic, records)
                self._check_caught_up(consumer)
                self.error = None
        finally:
            consumer.close()

    def _new_consumer(self) -> KafkaConsumer:
        return KafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers(), group_id=None, enable_auto_commit=False,
            auto_offset_reset="earliest", fetch_max_wait_ms=100,
            # The worker creates the topics with their partitions; a reader must not make them first.
            allow_auto_create_topics=False,
            **KafkaSecurity.from_settings(self.settings).kafka_python_options(),
        )

    def _assign(self, consumer: KafkaConsumer) -> None:
        """Adds the partitions of the four topics that exist now, each read from its beginning."""
        found = set()
        for topic in self.by_topic:
            for partition in consumer.partitions_for_topic(topic) or ():
                found.add(TopicPartition(topic, partition))
        new = found - set(consumer.assignment())
        self.checked = True  # topics that do not exist yet hold nothing to catch up with
        if not new:
            return
        consumer.assign(sorted(found | set(consumer.assignment())))
        consumer.seek_to_beginning(*new)
        self.targets |= consumer.end_offsets(list(new))
