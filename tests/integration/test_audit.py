"""The chaos audit tells apart why a part is lost, reading the real broker (streams/lab/audit.py)."""

import asyncio
import json
import uuid

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from latentline.schemas import ErrorKind
from latentline.streams.lab.audit import LEDGER_TABLE, audit_lost
from latentline.streams.lab.embedded import TANSU_SETTINGS
from latentline.streams.settings import Settings
from latentline.streams.worker.producer import kafka_producer
from latentline.streams.worker.topics import ensure_topics
from tests.schemas.test_records import make_dead_letter, make_verdict


async def _scene(settings: Settings) -> dict[str, str]:
    await ensure_topics(settings)
    changelog = f"{settings.app_id}-{LEDGER_TABLE}-changelog"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(changelog, settings.partitions, 1)])
    finally:
        await admin.close()
    producer = kafka_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(settings.verdicts_topic, make_verdict(event_id="in-log").to_bytes())
        letter = make_dead_letter(event_id="dead-lettered", error_kind=ErrorKind.POISON)
        await producer.send_and_wait(settings.dlq_topic, letter.to_bytes())
        await producer.send_and_wait(changelog, json.dumps([0, 1.0]).encode(), key=b"in-ledger")
    finally:
        await producer.stop()
    return await audit_lost(settings, ["in-log", "dead-lettered", "in-ledger", "nowhere"])


def test_each_lost_part_gets_the_cause_the_log_shows(broker_url):
    tag = uuid.uuid4().hex[:8]
    topics = {f"{name}_topic": f"{name}.{tag}" for name in
              ("events", "verdicts", "dlq", "alerts", "labels", "novelty", "review")}
    settings = Settings(broker_url=broker_url, app_id=f"audit-{tag}", **topics, **TANSU_SETTINGS)
    assert asyncio.run(_scene(settings)) == {
        "in-log": "verdict_on_reread", "dead-lettered": "verdict_on_reread",
        "in-ledger": "answered_not_in_log", "nowhere": "never_answered",
    }
