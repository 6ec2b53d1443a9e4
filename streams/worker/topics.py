"""Create latentline's topics explicitly (auto-created topics get the broker's defaults)."""

import asyncio

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from latentline.streams.settings import Settings
from latentline.streams.worker.kafka_security import aiokafka_options


def topic_partitions(settings: Settings) -> dict[str, int]:
    """Every topic latentline reads or writes (Faust creates its changelogs itself)."""
    shared = (settings.events_topic, settings.verdicts_topic, settings.dlq_topic,
              settings.alerts_topic, settings.labels_topic, settings.review_topic)
    # one partition: a single owner sees all anomalies and labels in order (streams/worker/watch.py)
    return {name: settings.partitions for name in shared} | {settings.novelty_topic: 1}


async def ensure_topics(settings: Settings, attempts: int = 20) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers(), **aiokafka_options(settings))
    for attempt in range(attempts):
        try:
            await admin.start()
            break
        except KafkaConnectionError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.5)
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, partitions, settings.replication_factor)
            for name, partitions in topic_partitions(settings).items()
            if name not in existing
        ]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass  # another worker won the race
    finally:
        await admin.close()
