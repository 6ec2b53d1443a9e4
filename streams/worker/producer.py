"""The worker's asynchronous producer and the camera simulator of the demo and the tests: image to
the object store, event to Kafka, named as the camera-side client names them (streams/client.py)."""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaProducer

from latentline.schemas import CameraEvent
from latentline.streams.client import content_type_of, new_event
from latentline.streams.settings import Settings
from latentline.streams.worker.kafka_security import aiokafka_options
from latentline.streams.worker.store import ObjectStore


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
        return await self.send(await self.stage(path, camera_id, line_id, part_id, metadata))

    async def stage(
        self, path: Path, camera_id: str, line_id: str = "line-1", part_id: str | None = None,
        metadata: dict | None = None,
    ) -> CameraEvent:
        """Upload the image; the event that names it, not yet sent."""
        data = await asyncio.to_thread(path.read_bytes)
        event = new_event(self.settings.image_bucket, data, path.suffix, camera_id, line_id, part_id,
                          metadata=metadata)
        await asyncio.to_thread(self.store.put, event.image_uri, data, content_type_of(data, path.name))
        return event

    async def send(self, event: CameraEvent, recapture: bool = False) -> CameraEvent:
        """``recapture``: the event says it was captured now (an image staged earlier)."""
        if recapture:
            event = event.model_copy(update={"captured_at": datetime.now(UTC)})
        await self.producer.send_and_wait(
            self.settings.events_topic, event.to_bytes(), key=event.camera_id.encode()
        )
        return event


async def publish_paths(
    simulator: CameraSimulator,
    jobs: list[tuple[Path, str]],
    rate: float | None = None,
    on_published: Callable[[CameraEvent, Path], None] | None = None,
    concurrency: int = 8,
    staged: list[CameraEvent] | None = None,
) -> list[CameraEvent]:
    """Publish (path, camera_id) jobs in order, at most ``rate`` events per second.

    ``staged``: the jobs' events from ``stage_paths``, images already uploaded; each is sent
    saying it was captured when it is sent."""
    interval = 1.0 / rate if rate else 0.0
    slots = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def one(index: int, path: Path, camera: str) -> CameraEvent:
        async with slots:
            if staged is None:
                event = await simulator.publish(path, camera)
            else:
                event = await simulator.send(staged[index], recapture=True)
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


async def stage_paths(simulator: CameraSimulator, jobs: list[tuple[Path, str]],
                      concurrency: int = 8) -> list[CameraEvent]:
    """Upload every job's image first, so that what is measured next is the inspection alone,
    not the cameras' uploads sharing its machine (``latentline bench``)."""
    slots = asyncio.Semaphore(concurrency)

    async def one(path: Path, camera: str) -> CameraEvent:
        async with slots:
            return await simulator.stage(path, camera)

    return list(await asyncio.gather(*(one(path, camera) for path, camera in jobs)))
