"""Overlapped stages: while the model works on one batch, the next is fetched and decoded.

Measured before this (issue "Keep up with the line", `latentline bench`): the model thread sat
idle about a quarter of the time, waiting for the object store and the decoder of the next batch.
Here the agent runs a batch's I/O half (``BatchProcessor.load``) and hands it to one model task,
which completes batches strictly in the order they were consumed: verdicts of a partition keep
its order. A batch is acked only after its verdicts are published and recorded, so a worker that
stops loses nothing: every unacked event comes back to the next owner, and the ledger keeps an
event answered twice from getting two verdicts. ``depth`` bounds the loaded batches waiting for
the model (back-pressure: the agent stops consuming while they wait), so at most ``depth + 2``
batches are in flight, and only theirs are the decoded images held in memory.

A batch with suspects of the poison quarantine (streams/worker/quarantine.py) runs alone, after
the pipeline has drained, one message at a time as before.
"""

import asyncio
from collections.abc import Awaitable, Callable

from latentline.streams.worker.dead_letters import Incoming
from latentline.streams.worker.inspect import BatchProcessor, Loaded
from latentline.streams.worker.quarantine import Plan, Quarantine


class Pipeline:
    """``ack(message)`` commits a message once answered; ``on_answered(batch)`` reports progress;
    ``fail()`` is called when the model stage fails as a whole (the worker exits unacked)."""

    def __init__(self, processor: BatchProcessor, quarantine: Quarantine,
                 ack: Callable[[Incoming], Awaitable], on_answered: Callable[[list[Incoming]], None],
                 fail: Callable[[], None], depth: int = 1):
        self.processor, self.quarantine = processor, quarantine
        self.ack, self.on_answered, self.fail = ack, on_answered, fail
        self._queue: asyncio.Queue[Loaded] = asyncio.Queue(maxsize=depth)
        self._model_stage: asyncio.Task | None = None

    async def submit(self, batch: list[Incoming]) -> None:
        """Load ``batch`` (while the model works on earlier ones) and queue it for the model."""
        plan = self.quarantine.plan(batch)
        if plan.poison or plan.singles:
            await self.drain()
            await run_plan(self.processor, self.quarantine, plan)
            await self._answered(batch)
            return
        await self.quarantine.begin(batch)
        loaded = await self.processor.load(batch)
        if self._model_stage is None:
            self._model_stage = asyncio.create_task(self._run_model_stage(), name="model-stage")
        await self._queue.put(loaded)

    async def drain(self) -> None:
        """Wait until every queued batch is answered."""
        await self._queue.join()

    async def stop(self) -> None:
        """Stop the model stage; batches not yet answered stay unacked (they come back)."""
        if self._model_stage is not None:
            self._model_stage.cancel()
            await asyncio.gather(self._model_stage, return_exceptions=True)

    async def _run_model_stage(self) -> None:
        while True:
            loaded = await self._queue.get()
            try:
                await self.processor.complete(loaded)
                await self._answered(loaded.batch)
            except Exception:
                self.fail()
                raise
            finally:
                self._queue.task_done()

    async def _answered(self, batch: list[Incoming]) -> None:
        self.quarantine.end(batch)
        for message in batch:
            await self.ack(message)
        self.on_answered(batch)


async def run_plan(processor: BatchProcessor, quarantine: Quarantine, plan: Plan) -> None:
    """Poison first, then suspects one at a time, then the rest as one batch."""
    for message in plan.poison:
        await processor.quarantine(message, quarantine.limit)
    for message in plan.singles:
        await quarantine.begin([message], plan)
        await processor.process([message])
        quarantine.end([message])
    if plan.rest:
        await quarantine.begin(plan.rest)
        await processor.process(plan.rest)
        quarantine.end(plan.rest)
