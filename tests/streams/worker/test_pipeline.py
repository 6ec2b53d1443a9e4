"""Overlapped stages: the next batch loads while the model works on this one; batches complete
and are acked in the order they were consumed, each only after it is answered; a worker that
stops mid-way leaves the unanswered ones unacked, and the quarantine record covers every batch
in flight."""

import asyncio

from latentline.streams.worker.dead_letters import Incoming
from latentline.streams.worker.inspect import Loaded
from latentline.streams.worker.pipeline import Pipeline
from latentline.streams.worker.quarantine import Quarantine
from tests.streams.conftest import DictState


def batch(offsets, partition=0):
    return [Incoming(b"{}", "camera.events", partition, o) for o in offsets]


class SlowModel:
    """A processor whose model half takes ``model_seconds``; it logs what happens when."""

    def __init__(self, model_seconds=0.05, fail_on=None):
        self.model_seconds, self.fail_on, self.log = model_seconds, fail_on, []

    async def load(self, messages):
        self.log.append(("load", messages[0].offset))
        return Loaded(messages, [], [], 0.0)

    async def complete(self, loaded):
        first = loaded.batch[0].offset
        self.log.append(("model-start", first))
        await asyncio.sleep(self.model_seconds)
        if first == self.fail_on:
            raise RuntimeError("the broker refused the verdicts")
        self.log.append(("model-end", first))

    async def process(self, messages):
        await self.complete(await self.load(messages))


def make(processor, state=None):
    acked, answered, failed = [], [], []

    async def flush():
        pass

    async def ack(message):
        acked.append(message.offset)

    quarantine = Quarantine(state or DictState(), flush)
    pipeline = Pipeline(processor, quarantine, ack, answered.append, lambda: failed.append(True))
    return pipeline, quarantine, acked, answered, failed


def test_the_next_batch_loads_while_the_model_works_and_order_is_kept():
    model = SlowModel()
    pipeline, _, acked, answered, _ = make(model)

    async def run():
        for first in (0, 4, 8):
            await pipeline.submit(batch(range(first, first + 4)))
        await pipeline.drain()
        await pipeline.stop()

    asyncio.run(run())
    assert model.log.index(("load", 4)) < model.log.index(("model-end", 0))  # overlapped
    ends = [first for step, first in model.log if step == "model-end"]
    assert ends == [0, 4, 8] and acked == list(range(12))
    assert [b[0].offset for b in answered] == [0, 4, 8]


def test_a_batch_is_acked_only_once_answered():
    model = SlowModel(model_seconds=0.2)
    pipeline, _, acked, _, _ = make(model)

    async def run():
        await pipeline.submit(batch([0, 1]))
        await asyncio.sleep(0.05)
        seen_while_on_the_model = list(acked)
        await pipeline.stop()  # the worker stops before the model finished
        return seen_while_on_the_model

    assert asyncio.run(run()) == [] and acked == []


def test_a_failed_model_stage_fails_the_worker_without_acking():
    model = SlowModel(fail_on=4)
    pipeline, _, acked, _, failed = make(model)

    async def run():
        for first in (0, 4):
            await pipeline.submit(batch(range(first, first + 4)))
        await asyncio.sleep(0.3)
        await pipeline.stop()

    asyncio.run(run())
    assert failed == [True] and acked == [0, 1, 2, 3]


def test_the_quarantine_record_covers_every_batch_in_flight():
    state = DictState()
    model = SlowModel(model_seconds=0.2)
    pipeline, quarantine, _, _, _ = make(model, state)

    async def run():
        await pipeline.submit(batch([0, 1]))
        await pipeline.submit(batch([2, 3]))
        covered = state.get("0")
        await pipeline.stop()
        return covered

    assert asyncio.run(run()) == {"from": 0, "to": 3, "attempts": 1}
    # a restarted worker that gets them back runs every one of them alone
    state.restart()
    plan = Quarantine(state, None).plan(batch([0, 1, 2, 3]))
    assert [m.offset for m in plan.singles] == [0, 1, 2, 3]


def test_suspects_run_alone_after_the_pipeline_drains():
    state = DictState()
    state.put(None, "0", {"from": 2, "to": 3, "attempts": 1})
    model = SlowModel()
    pipeline, _, acked, _, _ = make(model, state)

    async def run():
        await pipeline.submit(batch([0, 1], partition=1))
        await pipeline.submit(batch([2, 3, 4]))  # 2 and 3 of partition 0 stopped a worker before
        await pipeline.drain()
        await pipeline.stop()

    asyncio.run(run())
    starts = [first for step, first in model.log if step == "model-start"]
    assert starts == [0, 2, 3, 4] and acked == [0, 1, 2, 3, 4]
