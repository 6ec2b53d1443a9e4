"""The worker's consumer: its fetch wait is a setting, and it never commits past an event it
fetched and did not answer."""

import asyncio

from aiokafka.structs import ConsumerRecord
from faust.types import TP

from latentline.streams.settings import Settings
from latentline.streams.worker.app import create_app
from latentline.streams.worker.transport import unanswered_below


def test_the_worker_consumer_uses_the_fetch_wait_setting(tmp_path):
    async def created():
        app = create_app(Settings(fetch_max_wait_ms=40, state_dir=tmp_path))
        thread = app.consumer._thread
        return thread._create_worker_consumer(app.transport)

    consumer = asyncio.run(created())
    assert consumer._fetch_max_wait_ms == 40


async def acking_consumer(tmp_path, topic: str):
    """The worker app's real consumer, with ``topic`` subscribed by an acking channel, flowing
    (as between rebalances)."""
    app = create_app(Settings(state_dir=tmp_path))
    app.flow_control.resume()
    app.topics.add(app.topic(topic))
    await app.topics._update_indices()
    return app.consumer


class FetchedRecords:
    """Stands in for the consumer's network thread in a fetch: returns the records it holds, once."""

    def __init__(self, records: dict):
        self.records = records

    async def getmany(self, active_partitions, timeout):
        records, self.records = self.records, {}
        return records


async def fetched(consumer, tp: TP, offsets: list[int]) -> list:
    """Records of ``tp`` through the consumer's fetch path; the messages its stream would get."""
    records = [ConsumerRecord(tp.topic, tp.partition, o, 0, 0, b"k", b"v", None, 1, 1, []) for o in offsets]
    consumer._thread = FetchedRecords({tp: records})
    await consumer._getmany(None, 0.0)
    return [consumer._to_message(tp, record) for record in records]


def test_no_commit_steps_over_an_event_fetched_and_not_answered(tmp_path):
    """faust-streaming 606: with offset 10 in flight (or dropped by the stream after a rebalance,
    596) and 11, 12 acked, Faust alone commits 13, and a SIGKILL then loses offset 10."""
    tp = TP("camera.events", 0)

    async def run():
        consumer = await acking_consumer(tmp_path, tp.topic)
        consumer._committed_offset[tp] = 10
        in_flight, *later = await fetched(consumer, tp, [10, 11, 12])
        for message in later:
            consumer.ack(message)
        withheld = consumer._new_offset(tp)
        consumer.ack(in_flight)
        return withheld, consumer._new_offset(tp), consumer._fetched[tp]

    assert asyncio.run(run()) == (None, 13, set())


def test_acks_of_an_earlier_generation_do_not_count(tmp_path):
    """Faust's stream acks a message it drops for arriving after a rebalance; counted, offset 10
    would be committed with nobody having answered it."""
    tp = TP("camera.events", 0)

    async def run():
        consumer = await acking_consumer(tmp_path, tp.topic)
        consumer._committed_offset[tp] = 10
        (stale,) = await fetched(consumer, tp, [10])
        consumer.app.consumer_generation_id += 1
        counted = consumer.ack(stale)
        (again,) = await fetched(consumer, tp, [10])
        withheld = consumer._new_offset(tp)
        consumer.ack(again)
        return counted, withheld, consumer._new_offset(tp)

    assert asyncio.run(run()) == (False, None, 11)


def test_acks_while_a_rebalance_suspends_the_flow_do_not_count(tmp_path):
    """Revoked partitions suspend the flow; the stream then drops and acks the messages it still
    holds, with the ending generation's id. Counted, they enter the next generation's acks (the
    revocation cleared the old ones first) and its first commit steps over them unanswered."""
    tp = TP("camera.events", 0)

    async def run():
        consumer = await acking_consumer(tmp_path, tp.topic)
        consumer._committed_offset[tp] = 10
        (skipped,) = await fetched(consumer, tp, [10])
        consumer.app.flow_control.suspend()
        counted = consumer.ack(skipped)
        consumer.app.flow_control.resume()
        (again,) = await fetched(consumer, tp, [10])
        withheld = consumer._new_offset(tp)
        consumer.ack(again)
        return counted, withheld, consumer._new_offset(tp)

    assert asyncio.run(run()) == (False, None, 11)


def test_a_jump_in_read_offsets_is_not_taken_for_a_gap_of_the_log(tmp_path):
    """Faust records offsets 11-13 as a gap when its read offset jumps from 10 to 14, and counts
    them as acked at the next commit: 15 would be committed with 10-13 unanswered."""
    tp = TP("camera.events", 0)

    async def run():
        consumer = await acking_consumer(tmp_path, tp.topic)
        consumer._committed_offset[tp] = 10
        (later,) = await fetched(consumer, tp, [14])
        await consumer._add_gap(tp, 11, 14)
        consumer.ack(later)
        return consumer._new_offset(tp), len(consumer._gap[tp])

    assert asyncio.run(run()) == (None, 0)


def test_offsets_never_fetched_are_gaps_of_the_log_and_do_not_hold_the_commit(tmp_path):
    """A transaction marker or a compacted record at offset 10: 11 and 12 commit as before."""
    tp = TP("camera.events", 0)

    async def run():
        consumer = await acking_consumer(tmp_path, tp.topic)
        consumer._committed_offset[tp] = 10
        for message in await fetched(consumer, tp, [11, 12]):
            consumer.ack(message)
        return consumer._new_offset(tp)

    assert asyncio.run(run()) == 13


def test_unanswered_below_looks_only_between_the_commit_and_the_acked_run():
    assert unanswered_below({10, 11}, acked={11}, head=11, committed=10)
    assert not unanswered_below({8, 9, 11}, acked={11}, head=11, committed=10)
    assert not unanswered_below({12}, acked={11}, head=11, committed=10)
    assert unanswered_below({0}, acked={1}, head=1, committed=None)
