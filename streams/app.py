"""The Faust app: topics, the idempotency table and the inspect agent. Thin by design."""

import contextlib
import logging
import os
import weakref
from collections.abc import Iterator

import faust
from aiokafka.errors import KafkaError
from faust.streams import _current_event

from streams.inspect import BatchProcessor, Incoming
from streams.metrics import WorkerMetrics
from streams.settings import Settings

log = logging.getLogger(__name__)

# Exit code when verdicts cannot be published: offsets stay uncommitted and a restarted worker
# (compose restart policy) gets the batch again; the ledger keeps that from doubling verdicts.
EXIT_PUBLISH_FAILED = 75


@contextlib.contextmanager
def event_context(event: faust.types.EventT) -> Iterator[None]:
    """Make ``event`` the current event, so a table write goes to its partition's changelog.

    ``take_events`` yields batches with no current event, and ``take`` leaves the last one
    set: either would write every key of a batch to one changelog partition, and a rebalanced
    worker would then restore the wrong keys. Faust reads the current event from this context
    variable (faust.streams.current_event).
    """
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


class FaustPublisher:
    def __init__(self, app: faust.App, names: list[str]):
        self.topics = {name: app.topic(name, key_type=str, value_serializer="raw") for name in names}

    async def send(self, topic: str, key: str | None, value: bytes):
        pending = await self.topics[topic].send(key=key, value=value, key_serializer="raw")
        return await pending


class TableLedger:
    """event_id -> processed; a Faust table, so it survives restarts and follows rebalances."""

    def __init__(self, table: faust.Table):
        self.table = table

    def answered(self, event_id: str) -> bool:
        return self.table.get(event_id) is not None

    def record(self, incoming: Incoming, event_id: str) -> None:
        with event_context(incoming.handle):
            self.table[event_id] = 1


def create_app(settings: Settings) -> faust.App:
    return faust.App(
        settings.app_id,
        broker=settings.broker_url,
        processing_guarantee="at_least_once",  # exactly_once needs transactions Tansu lacks
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=settings.heartbeat_seconds,
        broker_commit_interval=settings.commit_interval_seconds,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        datadir=str(settings.state_dir),
        store="memory://",
        web_enabled=False,
        key_serializer="raw",
        value_serializer="raw",
    )


def install_inspect_agent(
    app: faust.App, settings: Settings, make_processor, metrics: WorkerMetrics
) -> None:
    """``make_processor(publisher, ledger)`` builds the BatchProcessor once topics exist."""
    events = app.topic(settings.events_topic, value_serializer="raw", key_serializer="raw")
    seen = app.Table("answered-events", default=None, partitions=settings.partitions)
    publisher = FaustPublisher(app, [settings.verdicts_topic, settings.dlq_topic])
    processor: BatchProcessor = make_processor(publisher, TableLedger(seen))

    next_offsets: dict[int, int] = {}  # partition -> offset after the last one answered

    def owned() -> list:
        return [tp for tp in app.consumer.assignment() if tp.topic == settings.events_topic]

    @app.on_rebalance_complete.connect
    async def count_partitions(sender, **kwargs) -> None:
        partitions = owned()
        metrics.assigned_partitions.set(len(partitions))
        metrics.consumer_lag.clear()  # partitions moved away must not report a stale lag
        log.info("rebalance complete: %d partitions of %s", len(partitions), settings.events_topic)

    @app.timer(interval=settings.lag_interval_seconds)
    async def measure_lag() -> None:
        # Only partitions with an answered event: before that the position is unknown here.
        for tp in owned():
            highwater = app.consumer.highwater(tp)
            if tp.partition in next_offsets and highwater is not None and highwater >= 0:
                lag = max(0, highwater - next_offsets[tp.partition])
                metrics.consumer_lag.labels(str(tp.partition)).set(lag)

    @app.agent(events, name="inspect")
    async def inspect(stream):
        batches = stream.take_events(settings.batch_max_size, within=settings.batch_max_wait_seconds)
        async for batch in batches:
            incoming = [
                Incoming(e.value, e.message.topic, e.message.partition, e.message.offset, e)
                for e in batch
            ]
            try:
                await processor.process(incoming)
                for message in incoming:
                    next_offsets[message.partition] = max(
                        next_offsets.get(message.partition, 0), message.offset + 1
                    )
            except KafkaError:
                log.critical("cannot publish to the broker; exiting so the batch is redelivered",
                             exc_info=True)
                os._exit(EXIT_PUBLISH_FAILED)
