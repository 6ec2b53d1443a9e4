"""The Faust app: topics, tables, the inspect, labels and novelty agents, example sync. Thin by design."""

import asyncio
import contextlib
import logging
import os
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import faust
from aiokafka.errors import KafkaError
from faust.streams import _current_event
from pydantic import ValidationError

from latentline.schemas import Label, NoveltyInput
from latentline.streams.settings import Settings
from latentline.streams.worker.dead_letters import DeadLetterWriter, Incoming, rejection
from latentline.streams.worker.examples import ExampleSync, LabelLearner
from latentline.streams.worker.inspect import BatchProcessor
from latentline.streams.worker.kafka_security import faust_credentials
from latentline.streams.worker.ledger import TableLedger
from latentline.streams.worker.liveness import Progress
from latentline.streams.worker.metrics import WorkerMetrics
from latentline.streams.worker.pipeline import Pipeline
from latentline.streams.worker.quarantine import Quarantine
from latentline.streams.worker.state_codecs import DRIFT_CODEC, NOVELTY_CODEC, Codec, StateRejected
from latentline.streams.worker.transport import InspectionApp
from latentline.streams.worker.watch import NoveltyWatch

log = logging.getLogger(__name__)

# Exit code when a batch fails in a way no single event explains (the broker refuses verdicts):
# offsets stay uncommitted and a restarted worker (compose restart policy) gets the batch again;
# the ledger keeps that from doubling verdicts, the quarantine from looping on one message.
EXIT_BATCH_FAILED = 75
# Exit code when the agent sits idle while its partitions have waiting events
# (streams/worker/liveness.py): a new consumer is what cures it.
EXIT_STALLED = 76


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

    ``codec``: values are domain objects (drift monitors, novelty detectors) kept as explicit,
    versioned JSON (streams/worker/state_codecs.py); never pickle, so a record written by anyone who can
    reach the changelog topic is parsed and validated, not executed. A record that fails is
    dropped, logged and counted (``on_reject``): that key starts afresh.
    """

    def __init__(self, table: faust.Table, codec: Codec | None = None,
                 on_reject: Callable[[str], None] = lambda key: None):
        self.table, self.codec, self.on_reject = table, codec, on_reject
        # key -> (the stored bytes, their object): decoding replays detectors, so an object is
        # reused for as long as the table still holds the very bytes it was decoded from or
        # encoded to (a restore or another writer replaces them, and the cache with them)
        self.decoded: dict[str, tuple[bytes, object]] = {}

    def get(self, key: str):
        value = self.table.get(key)
        if not self.codec or value is None:
            return value
        cached = self.decoded.get(key)
        if cached is not None and cached[0] is value:
            return cached[1]
        decoded = self._decode(key, value)
        if decoded is not None:
            self.decoded[key] = (value, decoded)
        return decoded

    def put(self, handle, key: str, value) -> None:
        data = self.codec.encode(value) if self.codec else value
        with event_context(handle):
            self.table[key] = data
        if self.codec:
            self.decoded[key] = (self.table.get(key), value)

    def delete(self, handle, key: str) -> None:
        self.decoded.pop(key, None)
        with event_context(handle):
            self.table.pop(key, None)

    def items(self):
        for key, value in list(self.table.items()):
            decoded = self._decode(key, value) if self.codec else value
            if decoded is not None:
                yield key, decoded

    def _decode(self, key: str, value: bytes):
        try:
            return self.codec.decode(value)
        except StateRejected as exc:
            log.error("state record %r of %s rejected: %s", key, self.table.name, exc)
            self.on_reject(key)
            return None


def create_app(settings: Settings) -> faust.App:
    return InspectionApp(
        settings.app_id,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        broker=settings.broker_url,
        broker_credentials=faust_credentials(settings),
        processing_guarantee=settings.processing_guarantee,
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=settings.heartbeat_seconds,
        broker_commit_interval=settings.commit_interval_seconds,
        recovery_consistency_check=settings.table_consistency_check,
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
    as_json = faust.Schema(key_serializer="raw", value_serializer="json")  # lists and dicts, not bytes
    seen = app.Table("answered-events", default=None, partitions=settings.partitions, schema=as_json)
    inflight = app.Table("inflight-batches", default=None, partitions=settings.partitions, schema=as_json)
    monitors = app.Table("drift-monitors", default=None, partitions=settings.partitions, value_type=bytes)
    publisher = FaustPublisher(app, [
        settings.verdicts_topic, settings.dlq_topic, settings.alerts_topic, settings.novelty_topic,
        settings.review_topic,
    ])
    rejected = metrics.state_rejected.labels("drift-monitors").inc
    processor: BatchProcessor = make_processor(
        publisher, TableLedger(FaustState(seen), settings.ledger_retention_seconds),
        FaustState(monitors, DRIFT_CODEC, lambda key: rejected()),
    )
    quarantine = Quarantine(FaustState(inflight), app.producer.flush, settings.poison_attempts)
    progress = Progress()
    _install_watchdog(app, settings, metrics, progress)

    @app.agent(events, name="inspect")
    async def inspect(stream):
        pipeline = Pipeline(processor, quarantine, ack=lambda m: stream.ack(m.handle),
                            on_answered=lambda batch: progress.answered(id(batch), batch_offsets(batch)),
                            fail=_exit_unacked,
                            depth=settings.prefetch_batches)
        try:
            # noack_take: a batch is acked by the pipeline once answered, not when the next is taken
            batches = stream.noack_take(settings.batch_max_size, within=settings.batch_max_wait_seconds)
            async for batch in batches:
                incoming = [incoming_of(e) for e in batch]
                progress.begin(id(incoming), frozenset(m.partition for m in incoming))
                try:
                    await pipeline.submit(incoming)
                except Exception:
                    _exit_unacked()
        finally:
            await pipeline.stop()


def batch_offsets(batch: list[Incoming]) -> list[tuple[int, int]]:
    return [(m.partition, m.offset) for m in batch]


def _exit_unacked() -> None:
    """Every error about one event became its dead letter; what is left (the broker refusing
    verdicts, a bug) must not ack the batch: leave at once, offsets uncommitted."""
    log.critical("batch failed as a whole; exiting uncommitted so it is redelivered", exc_info=True)
    os._exit(EXIT_BATCH_FAILED)


def _install_watchdog(app: faust.App, settings: Settings, metrics: WorkerMetrics, progress: Progress) -> None:
    """Lag per owned partition, whether it is stalled, and the exit of an agent idle with work."""

    def owned() -> list:
        return [tp for tp in app.consumer.assignment() if tp.topic == settings.events_topic]

    @app.on_rebalance_complete.connect
    async def count_partitions(sender, **kwargs) -> None:
        partitions = owned()
        metrics.assigned_partitions.set(len(partitions))
        metrics.consumer_lag.clear()  # partitions moved away must not report a stale lag
        metrics.partition_stalled.clear()
        progress.assigned([tp.partition for tp in partitions])
        log.info("rebalance complete: %d partitions of %s", len(partitions), settings.events_topic)

    @app.timer(interval=settings.lag_interval_seconds)
    async def measure_lag() -> None:
        if app.rebalancing or app.in_recovery:
            progress.busy_elsewhere()
        waiting = 0
        for tp in owned():
            waiting += await _watch_partition(app, tp, settings, metrics, progress)
        if progress.idle_with_work(waiting, settings.stall_exit_seconds):
            log.critical("%d events wait on this worker's partitions and it has consumed nothing for "
                         "%.0fs; exiting uncommitted so a new consumer takes them",
                         waiting, settings.stall_exit_seconds)
            os._exit(EXIT_STALLED)


async def _watch_partition(app: faust.App, tp, settings: Settings, metrics: WorkerMetrics,
                           progress: Progress) -> int:
    """Lag and stall of one owned partition; exits when its commit is blocked. Returns its lag."""
    progress.saw_committed(tp.partition, app.consumer.committed_offset(tp))
    if progress.blocked(tp.partition, settings.stall_exit_seconds):
        log.critical("partition %d: events answered beyond committed offset %s, which has not moved "
                     "for %.0fs (an event below never reached the agent); exiting uncommitted so a "
                     "new consumer reads it again", tp.partition, progress.committed[tp.partition],
                     settings.stall_exit_seconds)
        os._exit(EXIT_STALLED)
    lag = await _lag(app, tp, progress)
    if lag is not None:
        metrics.consumer_lag.labels(str(tp.partition)).set(lag)
    stalled = progress.stalled(tp.partition, lag or 0, settings.stall_seconds)
    if stalled:
        log.error("partition %d is stalled: events wait and none was answered for %.0fs",
                  tp.partition, settings.stall_seconds)
    metrics.partition_stalled.labels(str(tp.partition)).set(int(stalled))
    return lag or 0


async def _lag(app: faust.App, tp, progress: Progress) -> int | None:
    """Events of ``tp`` this worker has not answered: from the next offset it would answer, else
    from the committed offset, else from where its consumer reads next (which counts events
    fetched and not yet answered as done); the end from the last fetch, else from the broker. A
    consumer that stopped fetching has no fetch to tell either, which is why the broker is asked.
    None while neither is known (or the broker does not answer)."""
    try:
        done = progress.next_offsets.get(tp.partition)
        if done is None:
            done = app.consumer.committed_offset(tp)
        if done is None:
            done = await app.consumer.position(tp)
        end = app.consumer.highwater(tp)
        if end is None or end < 0:
            end = (await app.consumer.highwaters(tp)).get(tp)
    except Exception:  # the broker away: the lag is unknown this time, not an error of the worker
        log.debug("lag of %s unknown", tp, exc_info=True)
        return None
    if done is None or end is None or end < 0:
        return None
    return max(0, end - done)


def install_novelty_agents(app: faust.App, settings: Settings, make_watch, learner: LabelLearner,
                           metrics: WorkerMetrics) -> None:
    """Labels become classifier examples (``learner``) and are forwarded into the one-partition
    novelty topic, whose owner runs ``make_watch(publisher, state)``'s NoveltyWatch; invalid
    labels go to the dead-letter topic."""
    labels = app.topic(settings.labels_topic, value_serializer="raw", key_serializer="raw")
    novelty = app.topic(settings.novelty_topic, partitions=1, value_serializer="raw", key_serializer="raw")
    detectors = app.Table("novelty-detectors", default=None, partitions=1, value_type=bytes)
    publisher = FaustPublisher(app, [settings.novelty_topic, settings.alerts_topic, settings.dlq_topic])
    rejected = metrics.state_rejected.labels("novelty-detectors").inc
    watch: NoveltyWatch = make_watch(publisher, FaustState(detectors, NOVELTY_CODEC, lambda key: rejected()))
    dead_letters = DeadLetterWriter(publisher, settings, metrics)

    async def parsed(event, record):
        """The record, or None after dead-lettering the payload with the reason."""
        try:
            return record.from_bytes(event.value or b"")
        except ValidationError as exc:
            await dead_letters.send(incoming_of(event), rejection(exc))
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
                os._exit(EXIT_BATCH_FAILED)
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
