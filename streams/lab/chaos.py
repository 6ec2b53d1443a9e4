"""``latentline chaos``: SIGKILL workers and take the object store away mid-stream, then count.

N ``latentline worker`` processes share one consumer group on the embedded stack (Tansu broker,
moto S3 server, a model fitted like the demo's). A steady stream of camera events, each with its
own event id, points at a pool of images uploaded once, so the producer never needs the store
while it is away. Meanwhile a seeded monkey SIGKILLs a random worker and starts it again with the
same environment, and stops the S3 server once for the stated time (same port, same objects).
At the end every published event must have a verdict or a dead letter: the report counts the
ones with neither (``lost``), second verdicts, and dead letters by kind. A ``store_unavailable``
dead letter is a failure too: an outage is a pause, not a reason to give a part up.
"""

import asyncio
import contextlib
import json
import random
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from latentline.models.bundle import ModelBundle
from latentline.models.dataset import list_images
from latentline.schemas import CameraEvent, ErrorKind
from latentline.streams.client import content_type_of
from latentline.streams.lab.audit import audit_lost
from latentline.streams.lab.cached_model import ensure_model
from latentline.streams.lab.collector import Collector, Outcomes
from latentline.streams.lab.embedded import TANSU_SETTINGS, S3Server, WorkerProcess, free_port, tansu_broker
from latentline.streams.settings import Settings, settings_env
from latentline.streams.worker.producer import kafka_producer
from latentline.streams.worker.store import ObjectStore, sha256_hex
from latentline.streams.worker.topics import ensure_topics

console = Console(stderr=True)

# Worker settings that decide what a kill or an outage can cost; reported with the counts.
REPORTED_SETTINGS = (
    "batch_max_size", "batch_max_wait_seconds", "fetch_concurrency", "partitions",
    "session_timeout_seconds", "heartbeat_seconds", "commit_interval_seconds", "processing_guarantee",
    "retry_initial_seconds", "retry_max_seconds", "poison_attempts", "fetch_deadline_seconds",
    "ledger_retention_seconds",
)


@dataclass(frozen=True)
class ChaosOptions:
    data_dir: Path
    workers: int = 2
    kills: int = 10
    events: int = 2000
    store_outage_seconds: float = 30.0
    rate: float | None = 20.0  # events per second; None: as fast as the producer can
    seed: int = 0
    cameras: int = 8  # message keys: enough of them to spread the events over every partition
    pool_size: int = 64  # distinct images uploaded once and reused by the events
    timeout: float = 900.0  # after the last event is published, for the rest to be answered
    logs: Path | None = None  # worker and broker logs (default: a temporary folder, removed)


@dataclass(frozen=True)
class ChaosPlan:
    """When things break, as shares of the events answered: the clock would depend on the
    machine's speed and the rate, this lands every blow while parts are in flight."""

    kill_points: list[float]
    outage_point: float | None
    kill_in_outage: bool  # one of the kills hits a worker while the store is away


@dataclass
class ChaosReport:
    events_published: int
    verdicts_unique: int
    dead_letters: int
    lost: int  # published events with neither a verdict nor a dead letter
    duplicate_verdicts: int
    duplicate_dead_letters: int  # repeated dead letters, and dead letters of events with a verdict
    kills: int
    worker_exits: int  # exits the harness did not cause; restarted like a restart policy would
    store_outage_seconds: float  # as measured, from stopped to serving again
    dead_letters_by_kind: dict[str, int]
    seconds: float
    drained: bool  # the group committed every event: no redelivery (and no duplicate) can follow
    publish_failures: int
    workers: int
    worker_settings: dict
    model_version: str
    seed: int
    rate: float | None
    lost_event_ids: list[str] = field(default_factory=list)
    # where each sits (partition, offset) and why it is lost (streams/lab/audit.py)
    lost_events: list[dict] = field(default_factory=list)
    group_offsets: dict[int, dict] = field(default_factory=dict)  # partition -> committed, end
    chaos_log: list[dict] = field(default_factory=list)

    def passed(self) -> bool:
        return self.lost == 0 and not self.dead_letters_by_kind.get(ErrorKind.STORE_UNAVAILABLE.value)


@dataclass(frozen=True)
class PooledImage:
    uri: str
    sha256: str


def plan_chaos(options: ChaosOptions, rng: random.Random) -> ChaosPlan:
    outage = options.store_outage_seconds > 0
    in_outage = outage and options.kills > 0
    points = sorted(rng.uniform(0.05, 0.85) for _ in range(options.kills - in_outage))
    return ChaosPlan(points, rng.uniform(0.3, 0.6) if outage else None, in_outage)


def worker_settings(settings: Settings) -> dict:
    return {name: getattr(settings, name) for name in REPORTED_SETTINGS if name in Settings.model_fields}


def upload_pool(settings: Settings, store: ObjectStore, options: ChaosOptions) -> list[PooledImage]:
    images = list_images(options.data_dir, "test")
    random.Random(options.seed).shuffle(images)
    store.ensure_bucket(settings.image_bucket)
    pool = []
    for index, image in enumerate(images[: options.pool_size]):
        data, suffix = image.path.read_bytes(), image.path.suffix.lower()
        uri = f"s3://{settings.image_bucket}/chaos-pool/{index}{suffix}"
        store.put(uri, data, content_type_of(data, image.path.name))
        pool.append(PooledImage(uri, sha256_hex(data)))
    return pool


class Fleet:
    """N workers of one consumer group, each with its own metrics port and state directory, as
    separate machines would have (two workers downloading the bundle into one folder would race)."""

    def __init__(self, settings: Settings, count: int, workdir: Path):
        self.workers = [self._worker(settings, index, workdir) for index in range(count)]
        self.log: Callable[..., None] = lambda action, **details: None  # ChaosRun's, once it runs
        self.kills = 0
        self.exits = 0
        self.stopping = False

    @staticmethod
    def _worker(settings: Settings, index: int, workdir: Path) -> WorkerProcess:
        own = settings.model_copy(update={"metrics_port": free_port(),
                                          "state_dir": workdir / f"state-{index}"})
        return WorkerProcess(settings_env(own), workdir / f"worker-{index}.log", own.metrics_port)

    def start(self) -> None:
        for worker in self.workers:
            worker.start()
        for worker in self.workers:
            worker.wait_until_assigned(timeout=180)

    def ready_count(self) -> int:
        return sum(worker.assigned() for worker in self.workers)

    async def until_ready(self, partitions: int, timeout: float = 180) -> bool:
        """Until every worker owns partitions (as many as can), so a kill hits one with work."""
        wanted = min(len(self.workers), partitions)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await asyncio.to_thread(self.ready_count) >= wanted:
                return True
            await asyncio.sleep(0.5)
        return False

    def kill_and_restart(self, index: int) -> int:
        """SIGKILL worker ``index`` and start it again at once; returns the killed pid."""
        worker = self.workers[index]
        pid = worker.process.pid
        worker.kill()
        worker.start()
        self.kills += 1
        return pid

    async def supervise(self) -> None:
        """Restart workers that exit on their own (a failed start while the store is away,
        EXIT_PUBLISH_FAILED), as a container's restart policy would; each is counted."""
        while not self.stopping:
            await asyncio.sleep(1.0)
            for index, worker in enumerate(self.workers):
                if not self.stopping and worker.process.poll() is not None:
                    self.exits += 1
                    self.log("exit", worker=index, code=worker.process.returncode)
                    worker.start()

    def stop(self) -> None:
        self.stopping = True
        for worker in self.workers:  # all at once: their graceful shutdowns overlap
            if worker.alive():
                worker.process.terminate()
        for worker in self.workers:
            worker.stop()


class Monkey:
    """Carries out a ChaosPlan: kills at shares of events answered, and the store's outage."""

    def __init__(self, fleet: Fleet, s3: S3Server, plan: ChaosPlan, options: ChaosOptions,
                 rng: random.Random, progress: Callable[[], float], log: Callable[..., None]):
        self.fleet, self.s3, self.plan, self.options = fleet, s3, plan, options
        self.rng, self.progress, self.log = rng, progress, log
        self.outage_seconds = 0.0

    async def run(self, partitions: int) -> None:
        await asyncio.gather(self._kills(partitions), self._outage())

    async def _until(self, share: float) -> None:
        while self.progress() < share:
            await asyncio.sleep(0.1)

    def _kill(self) -> None:
        index = self.rng.randrange(len(self.fleet.workers))
        pid = self.fleet.kill_and_restart(index)
        self.log("kill", worker=index, pid=pid)

    async def _kills(self, partitions: int) -> None:
        for point in self.plan.kill_points:
            await self._until(point)
            await self.fleet.until_ready(partitions)
            self._kill()

    async def _outage(self) -> None:
        if self.plan.outage_point is None:
            return
        await self._until(self.plan.outage_point)
        await asyncio.to_thread(self.s3.stop)
        down = time.monotonic()
        self.log("store_down")
        half = self.options.store_outage_seconds / 2
        await asyncio.sleep(half)
        if self.plan.kill_in_outage:  # a worker paused on the store must not take its batch along
            self._kill()
        await asyncio.sleep(max(0.0, down + self.options.store_outage_seconds - time.monotonic()))
        await asyncio.to_thread(self.s3.start)
        self.outage_seconds = time.monotonic() - down
        self.log("store_up", seconds=round(self.outage_seconds, 2))


class GroupLag:
    """Events of the input topic the worker group has not committed: while above zero, a
    restarted worker may still be handed (and answer again) events it already answered."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.partitions = [TopicPartition(settings.events_topic, p) for p in range(settings.partitions)]
        self.admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers())
        self.consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers(),
                                         enable_auto_commit=False)

    async def start(self) -> None:
        await self.admin.start()
        await self.consumer.start()

    async def offsets(self) -> dict[int, dict]:
        """Partition -> the group's committed offset and the end of the log."""
        ends = await self.consumer.end_offsets(self.partitions)
        committed = await self.admin.list_consumer_group_offsets(self.settings.app_id,
                                                                 partitions=self.partitions)
        done = {tp: max(0, meta.offset) for tp, meta in committed.items()}
        return {tp.partition: {"committed": done.get(tp, 0), "end": ends[tp]} for tp in self.partitions}

    async def lag(self) -> int:
        return sum(max(0, o["end"] - o["committed"]) for o in (await self.offsets()).values())

    async def stop(self) -> None:
        await self.consumer.stop()
        await self.admin.close()


def progress_view() -> Progress:
    return Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("{task.fields[note]}"), console=console)


class ChaosRun:
    """One run's moving parts inside the event loop: producer, collector, fleet, monkey."""

    def __init__(self, settings: Settings, options: ChaosOptions, fleet: Fleet, s3: S3Server,
                 pool: list[PooledImage]):
        self.settings, self.options, self.fleet, self.s3, self.pool = settings, options, fleet, s3, pool
        self.rng = random.Random(options.seed)
        self.plan = plan_chaos(options, self.rng)
        self.collector = Collector(settings)
        self.published: list[str] = []
        self.placement: dict[str, tuple[int, int]] = {}  # event id -> partition, offset
        self.group_offsets: dict[int, dict] = {}  # at the end of the run
        self.lost_causes: dict[str, str] = {}  # event id -> why lost (streams/lab/audit.py)
        self.publish_failures = 0
        self.chaos_log: list[dict] = []
        self.started = time.monotonic()
        self.view = progress_view()
        fleet.log = self.log
        self.monkey = Monkey(fleet, s3, self.plan, options, self.rng, self.answered_share, self.log)

    def answered_share(self) -> float:
        return len(self.collector.outcomes.answered_ids()) / max(self.options.events, 1)

    def log(self, action: str, **details) -> None:
        entry = {"at_seconds": round(time.monotonic() - self.started, 2), "action": action,
                 "answered_share": round(self.answered_share(), 3), **details}
        self.chaos_log.append(entry)
        self.view.console.log(" ".join(f"{k}={v}" for k, v in entry.items()))

    async def publish(self) -> None:
        producer = kafka_producer(self.settings)
        await producer.start()
        try:
            await self._publish_all(producer)
            await producer.flush()
            await asyncio.sleep(0)  # the last acknowledgements' callbacks
        finally:
            await producer.stop()

    async def _publish_all(self, producer) -> None:
        interval = 1.0 / self.options.rate if self.options.rate else 0.0
        loop = asyncio.get_running_loop()
        start = loop.time()
        for index in range(self.options.events):
            if interval:
                await asyncio.sleep(max(0.0, start + index * interval - loop.time()))
            camera = f"cam-{index % self.options.cameras + 1}"
            event = self._event(index, camera)
            sent = await producer.send(self.settings.events_topic, event.to_bytes(), key=camera.encode())
            sent.add_done_callback(self._acked(event.event_id))

    def _event(self, index: int, camera: str) -> CameraEvent:
        image = self.pool[index % len(self.pool)]
        return CameraEvent(event_id=str(uuid.uuid4()), camera_id=camera, line_id="line-1",
                           captured_at=datetime.now(UTC), image_uri=image.uri, sha256=image.sha256)

    def _acked(self, event_id: str):
        def done(future: asyncio.Future) -> None:  # published means: the broker has it
            if not future.cancelled() and future.exception() is None:
                self.published.append(event_id)
                sent = future.result()
                self.placement[event_id] = (sent.partition, sent.offset)
            else:
                self.publish_failures += 1
        return done

    async def drain(self, lag: GroupLag, monkey: asyncio.Task, background: list[asyncio.Task]) -> bool:
        """Until every event is answered, the monkey is done and the group committed it all."""
        deadline = time.monotonic() + self.options.timeout
        while time.monotonic() < deadline:
            for task in background:  # a failed monkey or supervisor would fake a calm run
                if task.done() and not task.cancelled() and task.exception():
                    raise task.exception()
            answered = set(self.published) <= self.collector.outcomes.answered_ids()
            if answered and monkey.done() and await lag.lag() == 0:
                await asyncio.sleep(1.0)  # verdicts already produced still reach the collector
                return True
            await asyncio.sleep(0.5)
        return False

    async def _show(self) -> None:
        published = self.view.add_task("published", total=self.options.events, note="")
        answered = self.view.add_task("answered", total=self.options.events, note="")
        while True:
            store = "store up" if self.s3.running else "STORE DOWN"
            note = f"kills {self.fleet.kills}/{self.options.kills}, {store}, exits {self.fleet.exits}"
            self.view.update(published, completed=len(self.published))
            self.view.update(answered, completed=len(self.collector.outcomes.answered_ids()), note=note)
            await asyncio.sleep(0.5)

    async def execute(self) -> bool:
        lag = GroupLag(self.settings)
        await self.collector.start()
        await lag.start()
        background = []
        try:
            with self.view:
                background = [asyncio.create_task(c) for c in (self._show(), self.fleet.supervise())]
                monkey = asyncio.create_task(self.monkey.run(self.settings.partitions))
                background.append(monkey)
                await self.publish()
                self.log("published", events=len(self.published))
                return await self.drain(lag, monkey, background)
        finally:
            self.fleet.stopping = True
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            with contextlib.suppress(Exception):  # for the report; a broker gone must not hide it
                self.group_offsets = await lag.offsets()
            with contextlib.suppress(Exception):
                lost = sorted(set(self.published) - self.collector.outcomes.answered_ids())
                self.lost_causes = await audit_lost(self.settings, lost)
            await lag.stop()
            await self.collector.stop()


def duplicate_dead_letters(outcomes: Outcomes) -> int:
    """Second outcomes besides second verdicts: an event's repeated dead letters, and the dead
    letters of events that also got a verdict."""
    ids = Counter(letter.event_id for letter in outcomes.dead_letters if letter.event_id)
    return sum(n - 1 for n in ids.values()) + len(set(ids) & set(outcomes.verdicts))


def report_of(run: ChaosRun, drained: bool, version: str, seconds: float) -> ChaosReport:
    outcomes = run.collector.outcomes
    lost = sorted(set(run.published) - outcomes.answered_ids())
    return ChaosReport(
        events_published=len(run.published), verdicts_unique=len(outcomes.verdicts),
        dead_letters=len(outcomes.dead_letters), lost=len(lost),
        duplicate_verdicts=outcomes.duplicates, duplicate_dead_letters=duplicate_dead_letters(outcomes),
        kills=run.fleet.kills, worker_exits=run.fleet.exits,
        store_outage_seconds=round(run.monkey.outage_seconds, 2),
        dead_letters_by_kind=dict(Counter(letter.error_kind.value for letter in outcomes.dead_letters)),
        seconds=round(seconds, 1), drained=drained, publish_failures=run.publish_failures,
        workers=len(run.fleet.workers), worker_settings=worker_settings(run.settings),
        model_version=version, seed=run.options.seed, rate=run.options.rate,
        lost_event_ids=lost, chaos_log=run.chaos_log, group_offsets=run.group_offsets,
        lost_events=[{"event_id": e, "partition": run.placement[e][0], "offset": run.placement[e][1],
                      "cause": run.lost_causes.get(e, "not audited")} for e in lost],
    )


def deploy(settings: Settings, bundle_dir: Path, options: ChaosOptions) -> list[PooledImage]:
    """The model and the image pool into the store, the topics onto the broker."""
    store = ObjectStore(settings)
    store.upload_dir(bundle_dir, settings.model_uri)
    asyncio.run(ensure_topics(settings))
    return upload_pool(settings, store, options)


def work_folder(stack: contextlib.ExitStack, logs: Path | None) -> Path:
    if logs is None:
        return Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="latentline-chaos-")))
    logs.mkdir(parents=True, exist_ok=True)
    return logs


def run_chaos(options: ChaosOptions, base: Settings, bundle_dir: Path | None = None,
              broker_url: str | None = None) -> ChaosReport:
    """The whole run; ``bundle_dir`` (else fitted like the demo's) and ``broker_url`` (else an
    own Tansu broker) let tests share theirs. The harness always owns its S3 server: it stops it."""
    bundle_dir = bundle_dir or ensure_model(options.data_dir, base.cache_dir)
    version = ModelBundle.load(bundle_dir).version
    with contextlib.ExitStack() as stack:
        workdir = work_folder(stack, options.logs)
        broker_url = broker_url or stack.enter_context(tansu_broker(workdir / "broker.log"))
        s3 = stack.enter_context(S3Server())
        settings = base.model_copy(update={
            **TANSU_SETTINGS, "broker_url": broker_url, "store_url": s3.url, "state_dir": workdir / "state",
            "model_uri": f"s3://{base.model_bucket}/{version}",
        })
        pool = deploy(settings, bundle_dir, options)
        console.print(f"broker {broker_url}, object store {s3.url}, model {version}; "
                      f"starting {options.workers} workers (logs in {workdir})")
        fleet = Fleet(settings, options.workers, workdir)
        stack.callback(fleet.stop)
        with console.status(f"{options.workers} workers loading the model and joining the group"):
            fleet.start()
        started = time.monotonic()
        run = ChaosRun(settings, options, fleet, s3, pool)
        drained = asyncio.run(run.execute())
        return report_of(run, drained, version, time.monotonic() - started)


# What a worker log says about rebalances, commits and exits: what explains a lost part.
NOTABLE = ("--- latentline worker", "rebalance complete", "CRITICAL", "ERROR] partition",
           "exception performing seek", "Worker ready", "Heartbeat failed", "jumped from")


def notable_log_lines(log_path: Path, limit: int = 60) -> list[str]:
    """The last ``limit`` lines of a worker log that tell its rebalances, stalls and exits."""
    if not log_path.exists():
        return []
    lines = log_path.read_text(errors="replace").splitlines()
    return [line[:240] for line in lines if any(mark in line for mark in NOTABLE)][-limit:]


def print_report(report: ChaosReport, json_path: Path | None) -> None:
    table = Table(title="chaos")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in asdict(report).items():
        if key not in ("chaos_log", "worker_settings", "lost_event_ids", "lost_events", "group_offsets"):
            table.add_row(key, str(value))
    Console().print(table)
    if not report.drained:
        console.print("not drained within the timeout: 'lost' counts the events still unanswered then")
    for event in report.lost_events[:20]:
        console.print(f"lost {event['event_id']} at partition {event['partition']} offset {event['offset']}: "
                      f"{event['cause']}")
    if report.lost_events:
        console.print(f"group offsets at the end: {report.group_offsets}")
    console.print("PASSED" if report.passed() else
                  "FAILED: parts lost or given up as store_unavailable")
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(asdict(report), indent=2, default=str) + "\n")
