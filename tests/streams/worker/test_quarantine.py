"""Poison quarantine: a message that keeps killing workers is dead-lettered after ``limit`` stops.

The worker's death is simulated by dropping the in-memory objects between deliveries while the
state table (the changelog) survives, exactly what a SIGKILL leaves behind.
"""

import asyncio

from latentline.streams.worker.dead_letters import Incoming
from latentline.streams.worker.quarantine import Quarantine
from tests.streams.conftest import DictState


class Killed(Exception):
    pass


def batch(offsets, partition=0):
    return [Incoming(b"{}", "camera.events", partition, o) for o in offsets]


def deliver(state: DictState, messages, killer: int | None, limit: int = 3) -> dict:
    """One delivery of ``messages`` to a fresh worker; ``killer``'s offset kills it."""
    state.restart()
    flushes = []

    async def flush():
        flushes.append(1)

    quarantine = Quarantine(state, flush, limit)
    plan = quarantine.plan(messages)
    outcome = {"poison": [m.offset for m in plan.poison], "answered": [], "killed": False}

    async def run():  # as streams/worker/pipeline.py run_plan does
        for message in plan.singles:
            await quarantine.begin([message], plan)
            process([message])
            quarantine.end([message])
        if plan.rest:
            await quarantine.begin(plan.rest)
            process(plan.rest)
            quarantine.end(plan.rest)

    def process(group):
        if any(m.offset == killer for m in group):
            raise Killed
        outcome["answered"] += [m.offset for m in group]

    try:
        asyncio.run(run())
    except Killed:
        outcome["killed"] = True
    outcome["flushes"] = len(flushes)
    return outcome


def test_a_healthy_batch_runs_whole_after_one_durable_record():
    state = DictState()
    outcome = deliver(state, batch(range(16)), killer=None)
    assert outcome == {"poison": [], "answered": list(range(16)), "killed": False, "flushes": 1}
    assert state.get("0") == {"from": 0, "to": 15, "attempts": 1}


def test_a_message_that_kills_every_worker_is_quarantined_after_three_stops():
    state = DictState()
    messages = batch(range(10, 26))
    stops = 0
    for _ in range(10):
        outcome = deliver(state, messages, killer=15)
        if not outcome["killed"]:
            break
        stops += 1
    assert stops == 3
    assert outcome["poison"] == [15]
    # the others all ran at some point; none was quarantined with it
    assert 15 not in outcome["answered"] and set(outcome["answered"]) == set(range(10, 26)) - {15}


def test_one_unlucky_kill_costs_no_message():
    """A worker SIGKILLed for another reason (a deploy, a chaos test): its batch runs again."""
    state = DictState()
    deliver(state, batch(range(8)), killer=3)
    outcome = deliver(state, batch(range(8)), killer=None)
    assert outcome["poison"] == [] and outcome["answered"] == list(range(8))


def test_partitions_keep_their_own_records():
    state = DictState()
    deliver(state, batch(range(4), partition=0) + batch(range(100, 104), partition=1), killer=None)
    assert state.get("0")["to"] == 3 and state.get("1") == {"from": 100, "to": 103, "attempts": 1}
    # a later batch of partition 1 is not a suspect because partition 0 has a record
    outcome = deliver(state, batch(range(104, 106), partition=1), killer=None)
    assert outcome["answered"] == [104, 105]
