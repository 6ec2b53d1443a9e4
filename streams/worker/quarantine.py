"""Poison quarantine: a message that keeps stopping workers is dead-lettered, not retried forever.

Before a batch is processed, each of its partitions records which offsets are in flight and how
often they have been attempted (a table keyed by partition, flushed to its changelog first, so
the record survives a SIGKILL and follows the partition to another worker). A batch that comes
back while its offsets are still recorded as in flight stopped a worker last time: its suspect
messages are then processed one at a time, each recorded alone before it runs, so the one that
stops the worker again is the only one whose count grows. At ``limit`` attempts it is
dead-lettered as ``poison`` without being processed. Errors raised inside the worker never get
this far (every exception on an event becomes that event's dead letter); this catches what kills
the process: a crash in native code, the kernel's OOM killer, a hang that a supervisor kills.

A worker killed for another reason (a deploy, a chaos test) costs its in-flight messages one
attempt each: with ``limit`` 3, three unrelated kills would have to hit the same message.

The worker overlaps batches (streams/worker/pipeline.py: the next one is fetched while the model
works on this one), so a partition's record covers every batch of it still in flight: all of
them are suspects when the worker stops.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from latentline.streams.worker.dead_letters import Incoming
from latentline.streams.worker.ports import StateTable


@dataclass
class Plan:
    """How to run one consumed batch: ``poison`` unprocessed, ``singles`` one by one, then ``rest``."""

    poison: list[Incoming] = field(default_factory=list)
    singles: list[Incoming] = field(default_factory=list)
    rest: list[Incoming] = field(default_factory=list)
    attempts: dict[int, int] = field(default_factory=dict)  # offset -> earlier attempts (suspects)


class Quarantine:
    def __init__(self, state: StateTable, flush: Callable[[], Awaitable], limit: int = 3):
        self.state, self.flush, self.limit = state, flush, limit
        self._inflight: dict[int, list[dict]] = {}  # partition -> records of its batches in flight

    def plan(self, batch: list[Incoming]) -> Plan:
        plan = Plan()
        for message in batch:
            earlier = self._earlier_attempts(message)
            if earlier >= self.limit:
                plan.poison.append(message)
            elif earlier:
                plan.attempts[message.offset] = earlier
                plan.singles.append(message)
            else:
                plan.rest.append(message)
        if plan.singles:  # keep partition order: every message after a suspect runs after it
            last = max(batch.index(m) for m in plan.singles)
            plan.singles = [m for m in batch[: last + 1] if m not in plan.poison]
            plan.rest = [m for m in batch[last + 1 :] if m not in plan.poison]
        return plan

    async def begin(self, messages: list[Incoming], plan: Plan | None = None) -> None:
        """Record ``messages`` as in flight (one more attempt each), durably, before they run."""
        for partition in {m.partition for m in messages}:
            own = [m for m in messages if m.partition == partition]
            attempts = 1 + max((plan.attempts.get(m.offset, 0) if plan else 0) for m in own)
            batch = {"from": min(m.offset for m in own), "to": max(m.offset for m in own),
                     "attempts": attempts}
            self._inflight.setdefault(partition, []).append(batch)
            self.state.put(own[-1].handle, str(partition), _union(self._inflight[partition]))
        await self.flush()

    def end(self, messages: list[Incoming]) -> None:
        """``messages`` were answered: later records no longer cover them (the durable record
        keeps them until then, which costs them an attempt only if they come back)."""
        for partition in {m.partition for m in messages}:
            first = min(m.offset for m in messages if m.partition == partition)
            self._inflight[partition] = [r for r in self._inflight.get(partition, []) if r["from"] != first]

    def _earlier_attempts(self, message: Incoming) -> int:
        record = self.state.get(str(message.partition))
        if not isinstance(record, dict):
            return 0
        inside = record.get("from", -1) <= message.offset <= record.get("to", -1)
        return int(record.get("attempts", 0)) if inside else 0


def _union(records: list[dict]) -> dict:
    return {"from": min(r["from"] for r in records), "to": max(r["to"] for r in records),
            "attempts": max(r["attempts"] for r in records)}
