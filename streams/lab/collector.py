"""Reads verdicts, dead letters, alerts and review requests back: what the demo and the tests count."""

import asyncio
import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition

from latentline.schemas import Alert, DeadLetter, ReviewRequest, Verdict
from latentline.streams.settings import Settings
from latentline.streams.worker.kafka_security import aiokafka_options


@dataclass
class Outcomes:
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    reviews: list[ReviewRequest] = field(default_factory=list)
    duplicates: int = 0
    latencies: list[float] = field(default_factory=list)  # captured_at -> received, seconds
    first_at: float | None = None
    last_at: float | None = None
    keys: dict[str, bytes | None] = field(default_factory=dict)

    def answered_ids(self) -> set[str]:
        return set(self.verdicts) | {d.event_id for d in self.dead_letters if d.event_id}


class Collector:
    """Consumes the output topics from the beginning, outside any consumer group."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.outcomes = Outcomes()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        # A short fetch wait: the collector measures latency, and the embedded broker holds a
        # fetch over many partitions for up to the wait even when data is there (docs/speed.md).
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers(), enable_auto_commit=False,
            fetch_max_wait_ms=50, **aiokafka_options(self.settings),
        )
        await self._consumer.start()
        s = self.settings
        topics = (s.verdicts_topic, s.dlq_topic, s.alerts_topic, s.review_topic)
        partitions = [
            TopicPartition(topic, p) for topic in topics for p in range(self.settings.partitions)
        ]
        self._consumer.assign(partitions)
        await self._consumer.seek_to_beginning(*partitions)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for message in self._consumer:
            self._add(message.topic, message.key, message.value)

    def _add(self, topic: str, key: bytes | None, value: bytes) -> None:
        now = time.time()
        out = self.outcomes
        if topic == self.settings.dlq_topic:
            out.dead_letters.append(DeadLetter.from_bytes(value))
            return
        if topic == self.settings.alerts_topic:
            out.alerts.append(Alert.from_bytes(value))
            return
        if topic == self.settings.review_topic:
            out.reviews.append(ReviewRequest.from_bytes(value))
            return
        verdict = Verdict.from_bytes(value)
        if verdict.event_id in out.verdicts:
            out.duplicates += 1
            return
        out.verdicts[verdict.event_id] = verdict
        out.keys[verdict.event_id] = key
        out.latencies.append(now - verdict.captured_at.timestamp())
        out.first_at = out.first_at or now
        out.last_at = now

    async def wait_for(self, event_ids: set[str], timeout: float, alive=lambda: True) -> bool:
        return await self.wait_until(lambda o: event_ids <= o.answered_ids(), timeout, alive)

    async def wait_until(self, done, timeout: float, alive=lambda: True) -> bool:
        """Until ``done(outcomes)`` holds, the timeout passes or ``alive()`` turns false."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and alive():
            if done(self.outcomes):
                return True
            await asyncio.sleep(0.05)
        return done(self.outcomes)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer:
            await self._consumer.stop()
