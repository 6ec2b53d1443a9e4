"""The Faust app: topics, tables, the inspect, labels and novelty agents, example sync. Thin by design."""

import asyncio
import contextlib
import logging
import os
import pickle
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import faust
from aiokafka.errors import KafkaError
from faust.streams import _current_event
from pydantic import ValidationError

from schemas import Label, NoveltyInput
from streams.examples import ExampleSync, LabelLearner
from streams.inspect import BatchProcessor, Incoming, rejection, send_dead_letter
from streams.metrics import WorkerMetrics
from streams.settings import Settings
from streams.watch import NoveltyWatch

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


def incoming_of(event: faust.types.EventT) -> Incoming:
    message = event.message
    return Incoming(event.value, message.topic, message.partition, message.offset, event)


class FaustPublisher:
    def __init__(self, app: faust.App, names: list[str]):
        self.topics = {name: app.topic(name, key_type=str, value_serializer="raw") for name in names}

    async def send(self, topic: str, key: str | None, value: bytes):
        pending = await self.topics[topic].send(key=key, value=value, key_serializer="raw")
        return await pending


class FaustState:
    """A Faust table as a ``StateTable``: each write lands in its message's changelog partition.

    ``pickled``: values are Python objects (river detectors and clusters) stored as pickles.
    Those changelogs are written and read by latentline workers only, inside the broker's
    trust boundary; the model bundle, which travels between teams, stays free of pickle.
    """

    def __init__(self, table: faust.Table, pickled: bool = False):
        self.table = table
        self.pickled = pickled

    def get(self, key: str):
        value = self.table.get(key)
        return pickle.loads(value) if self.pickled and value is not None else value

    def put(self, handle, key: str, value) -> None:
        with event_context(handle):
            self.table[key] = pickle.dumps(value) if self.pickled else value

    def items(self):
        for key, value in self.table.items():
            yield key, pickle.loads(value) if self.pickled else value


class TableLedger:
    """event_id -> processed; a Faust table, so it survives restarts and follows rebalances."""

    def __init__(self, state: FaustState):
        self.state = state

    def answered(self, event_id: str) -> bool:
        return self.state.get(event_id) is not None

    def record(self, incoming: Incoming, event_id: str) -> None:
        self.state.put(incoming.handle, event_id, 1)


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
    """``make_processor(publisher, ledger, drift_state)`` builds the BatchProcessor once topics exist."""
    events = app.topic(settings.events_topic, value_serializer="raw", key_serializer="raw")
    seen = app.Table("answered-events", default=None, partitions=settings.partitions)
    monitors = app.Table("drift-monitors", default=None, partitions=settings.partitions, value_type=bytes)
    publisher = FaustPublisher(app, [
        settings.verdicts_topic, settings.dlq_topic, settings.alerts_topic, settings.novelty_topic,
        settings.review_topic,
    ])
    processor: BatchProcessor = make_processor(
        publisher, TableLedger(FaustState(seen)), FaustState(monitors, pickled=True)
    )

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
            incoming = [incoming_of(e) for e in batch]
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


def install_novelty_agents(app: faust.App, settings: Settings, make_watch, learner: LabelLearner,
                           metrics: WorkerMetrics) -> None:
    """Labels become classifier examples (``learner``) and are forwarded into the one-partition
    novelty topic, whose owner runs ``make_watch(publisher, state)``'s NoveltyWatch; invalid
    labels go to the dead-letter topic."""
    labels = app.topic(settings.labels_topic, value_serializer="raw", key_serializer="raw")
    novelty = app.topic(settings.novelty_topic, partitions=1, value_serializer="raw", key_serializer="raw")
    detectors = app.Table("novelty-detectors", default=None, partitions=1, value_type=bytes)
    publisher = FaustPublisher(app, [settings.novelty_topic, settings.alerts_topic, settings.dlq_topic])
    watch: NoveltyWatch = make_watch(publisher, FaustState(detectors, pickled=True))

    async def parsed(event, record):
        """The record, or None after dead-lettering the payload with the reason."""
        try:
            return record.from_bytes(event.value)
        except ValidationError as exc:
            await send_dead_letter(publisher, settings, metrics, incoming_of(event), rejection(exc))
            return None

    @app.agent(labels, name="labels")
    async def forward_labels(stream):
        async for event in stream.events():
            if (label := await parsed(event, Label)) is None:
                continue
            try:
                outcome = await asyncio.get_running_loop().run_in_executor(None, learner.learn, label)
            except Exception:  # the store failed: the label still reaches novelty detection
                log.exception("label for %s not learned", label.event_id)
                outcome = "failed"
            metrics.labels.labels(outcome).inc()
            await publisher.send(settings.novelty_topic, None, NoveltyInput(label=label).to_bytes())

    @app.agent(novelty, name="novelty")
    async def watch_novelty(stream):
        async for event in stream.events():
            if (message := await parsed(event, NoveltyInput)) is None:
                continue
            try:
                await watch.handle(event, message)
            except KafkaError:
                log.critical("cannot publish to the broker; exiting so the input is redelivered",
                             exc_info=True)
                os._exit(EXIT_PUBLISH_FAILED)
            except Exception:  # novelty trouble must not stop the agent; verdicts are not at stake
                log.exception("novelty watch failed at offset %d", event.message.offset)


def install_example_sync(app: faust.App, settings: Settings, sync: ExampleSync) -> None:
    """Every worker (not only the leader) refreshes its own classifier from the labelled examples."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="examples")

    @app.task
    async def load_examples_at_start() -> None:
        await _refresh(sync, pool)

    @app.timer(interval=settings.examples_sync_seconds)
    async def sync_examples() -> None:
        await _refresh(sync, pool)


async def _refresh(sync: ExampleSync, pool: ThreadPoolExecutor) -> None:
    try:
        await asyncio.get_running_loop().run_in_executor(pool, sync.refresh)
    except Exception:  # a store outage: keep the classifier we have, try again next tick
        log.exception("labelled examples not refreshed")
