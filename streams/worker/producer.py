"""The reference producer and camera simulator: image to the object store, event to Kafka."""

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaProducer

from schemas import CameraEvent
from streams.settings import Settings
from streams.worker.kafka_security import aiokafka_options
from streams.worker.store import ObjectStore, sha256_hex

CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


def kafka_producer(settings: Settings) -> AIOKafkaProducer:
    # acks=all without idempotence: Tansu (tests, demo) has no idempotent producer support.
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers(), acks="all", linger_ms=5,
        **aiokafka_options(settings),
    )


class CameraSimulator:
    """Publishes image files as a camera would: one upload and one event per image."""

    def __init__(self, settings: Settings, store: ObjectStore, producer: AIOKafkaProducer):
        self.settings = settings
        self.store = store
        self.producer = producer

    async def publish(
        self, path: Path, camera_id: str, line_id: str = "line-1", part_id: str | None = None,
        metadata: dict | None = None,
    ) -> CameraEvent:
        data = await asyncio.to_thread(path.read_bytes)
        event_id = str(uuid.uuid4())
        uri = f"s3://{self.settings.image_bucket}/{camera_id}/{event_id}{path.suffix.lower()}"
        content_type = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
        await asyncio.to_thread(self.store.put, uri, data, content_type)
        event = CameraEvent(
            event_id=event_id,
            camera_id=camera_id,
            line_id=line_id,
            captured_at=datetime.now(UTC),
            image_uri=uri,
            part_id=part_id,
            sha256=sha256_hex(data),
            metadata=metadata or {},
        )
        await self.producer.send_and_wait(
            self.settings.events_topic, event.to_bytes(), key=camera_id.encode()
        )
        return event


async def publish_paths(
    simulator: CameraSimulator,
    jobs: list[tuple[Path, str]],
    rate: float | None = None,
    on_published: Callable[[CameraEvent, Path], None] | None = None,
    concurrency: int = 8,
) -> list[CameraEvent]:
    """Publish (path, camera_id) jobs in order, at most ``rate`` events per second."""
    interval = 1.0 / rate if rate else 0.0
    slots = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def one(index: int, path: Path, camera: str) -> CameraEvent:
        async with slots:
            event = await simulator.publish(path, camera)
        if on_published:
            on_published(event, path)
        return event

    tasks = []
    for index, (path, camera) in enumerate(jobs):
        if interval:
            await asyncio.sleep(max(0.0, start + index * interval - loop.time()))
        tasks.append(asyncio.create_task(one(index, path, camera)))
        await asyncio.sleep(0)
    return list(await asyncio.gather(*tasks))
