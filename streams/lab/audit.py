"""Why a part counted lost by ``latentline chaos`` is lost: read the log again after the run.

The live collector (streams/lab/collector.py) may miss a record the broker holds; the worker may
have answered a part whose verdict the broker then dropped; or no worker answered it and an
offset commit stepped over it. The three call for different fixes, so each lost part is put in
one of them by reading, from the beginning and up to their end offsets, the output topics and
the workers' answered-events ledger (its changelog: a worker records an event there only after
the broker acknowledged its verdict, streams/worker/inspect.py):

- ``verdict_on_reread``: a verdict or dead letter is in the log after all (the collector missed it);
- ``answered_not_in_log``: the ledger has it, the output topics do not (an acknowledged write lost);
- ``never_answered``: neither (a commit stepped over it, or the ledger and its verdict both went).
"""

import json

from aiokafka import AIOKafkaConsumer, TopicPartition

from latentline.schemas import DeadLetter, Verdict
from latentline.streams.settings import Settings
from latentline.streams.worker.kafka_security import aiokafka_options

LEDGER_TABLE = "answered-events"  # streams/worker/app.py: install_inspect_agent


Record = tuple[bytes | None, bytes | None]  # key, value


async def read_topic(settings: Settings, topic: str, partitions: int) -> list[Record]:
    """(key, value) of every record of ``topic`` now, from the beginning to the end offsets."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers(), enable_auto_commit=False,
                                fetch_max_wait_ms=50, **aiokafka_options(settings))
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records, remaining = [], {tp for tp in tps if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=2000)
            if not batches:
                break  # the broker serves no more than this: what was read is the answer
            for tp, batch in batches.items():
                records.extend((r.key, r.value) for r in batch)
                if batch[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        return records
    finally:
        await consumer.stop()


async def audit_lost(settings: Settings, lost: list[str]) -> dict[str, str]:
    """event id -> ``verdict_on_reread``, ``answered_not_in_log`` or ``never_answered``."""
    if not lost:
        return {}
    async def read(topic: str) -> list[Record]:
        return await read_topic(settings, topic, settings.partitions)

    in_log = {Verdict.from_bytes(v).event_id for _, v in await read(settings.verdicts_topic)}
    in_log |= {DeadLetter.from_bytes(v).event_id for _, v in await read(settings.dlq_topic)}
    changelog = f"{settings.app_id}-{LEDGER_TABLE}-changelog"
    ledger = {k.decode() for k, v in await read(changelog) if k and v and json.loads(v)}
    return {event_id: "verdict_on_reread" if event_id in in_log
            else "answered_not_in_log" if event_id in ledger else "never_answered" for event_id in lost}
