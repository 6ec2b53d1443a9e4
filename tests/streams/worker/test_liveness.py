"""The watchdog's judgements: a stalled partition (reported), an agent idle with work and a
partition whose commit is blocked (both exit)."""

import asyncio
import time
from types import SimpleNamespace

from faust.types import TP

from latentline.streams.worker.app import _lag
from latentline.streams.worker.liveness import Progress


def aged(progress: Progress, seconds: float) -> Progress:
    """As if every clock the progress holds was read ``seconds`` ago."""
    progress.active_at -= seconds
    progress.inflight = {k: (parts, t - seconds) for k, (parts, t) in progress.inflight.items()}
    progress.moved_at = {p: t - seconds for p, t in progress.moved_at.items()}
    progress.committed_at = {p: t - seconds for p, t in progress.committed_at.items()}
    return progress


def test_an_agent_idle_while_events_wait_gives_up_after_the_limit():
    progress = Progress()
    progress.assigned([0, 1])
    assert not progress.idle_with_work(lag=5, after=30)
    assert aged(progress, 31).idle_with_work(lag=5, after=30)


def test_no_waiting_events_or_a_zero_limit_never_gives_up():
    progress = aged(Progress(), 600)
    assert not progress.idle_with_work(lag=0, after=30)
    assert not progress.idle_with_work(lag=5, after=0)


def test_a_batch_in_flight_is_not_idle_however_long_it_retries():
    """A batch paused on a store outage is retried until it clears (docs/delivery.md): only reported."""
    progress = Progress()
    progress.begin(1, frozenset({0}))
    aged(progress, 600)
    assert not progress.idle_with_work(lag=50, after=30)
    assert progress.stalled(0, lag=50, after=60)


def test_answering_a_batch_moves_its_partitions_and_resets_the_clock():
    progress = Progress()
    progress.begin(1, frozenset({0, 1}))
    progress.begin(2, frozenset({1}))
    progress.answered(1, [(0, 7), (1, 3), (0, 5)])
    assert set(progress.inflight) == {2}
    progress.answered(2, [(1, 4)])
    assert progress.next_offsets == {0: 8, 1: 5}
    assert not progress.inflight
    assert time.monotonic() - progress.active_at < 1
    assert not progress.stalled(0, lag=2, after=60)


def test_a_partition_that_comes_back_forgets_what_was_answered_before_it_left():
    """Another worker answered it meanwhile: the old offset would show a lag that is not there."""
    progress = Progress()
    progress.assigned([0, 1])
    progress.answered(1, [(0, 99), (1, 5)])
    progress.assigned([1])
    progress.assigned([0, 1])
    assert progress.next_offsets == {1: 6}


def test_rebalancing_or_restoring_tables_is_not_idleness():
    progress = aged(Progress(), 600)
    progress.busy_elsewhere()
    assert not progress.idle_with_work(lag=5, after=30)


def test_a_partition_with_lag_and_no_answer_is_stalled_after_the_limit():
    progress = Progress()
    progress.assigned([3])
    assert not progress.stalled(3, lag=4, after=60)
    aged(progress, 61)
    assert progress.stalled(3, lag=4, after=60)
    assert not progress.stalled(3, lag=0, after=60)


class IdleConsumer:
    """A consumer that stopped fetching: it knows no highwater; the broker does."""

    def __init__(self, position: int | None, end: int, committed: int | None = None):
        self._position, self._end, self._committed = position, end, committed

    def committed_offset(self, tp):
        return self._committed

    def highwater(self, tp):
        return None

    async def position(self, tp):
        return self._position

    async def highwaters(self, *tps):
        return {tp: self._end for tp in tps}


def lag_of(consumer, progress: Progress) -> int | None:
    return asyncio.run(_lag(SimpleNamespace(consumer=consumer), TP("camera.events", 2), progress))


def test_the_lag_of_a_consumer_that_stopped_fetching_comes_from_the_broker():
    assert lag_of(IdleConsumer(position=5, end=12), Progress()) == 7
    answered = Progress(next_offsets={2: 10})
    assert lag_of(IdleConsumer(position=5, end=12), answered) == 2
    assert lag_of(IdleConsumer(position=None, end=12), Progress()) is None


def test_events_fetched_and_not_answered_count_as_lag():
    """The position counts them as read; the committed offset does not."""
    assert lag_of(IdleConsumer(position=12, end=12, committed=9), Progress()) == 3


def test_answers_beyond_a_committed_offset_that_does_not_move_block_the_partition():
    """An event below the answered ones never reached the agent (faust-streaming 596)."""
    progress = Progress()
    progress.assigned([0])
    progress.saw_committed(0, 40)
    progress.answered(1, [(0, 45)])
    assert not progress.blocked(0, after=30)
    assert aged(progress, 31).blocked(0, after=30)
    assert not progress.blocked(0, after=0)


def test_a_commit_that_moves_or_a_rebalance_restarts_the_clock():
    progress = Progress()
    progress.assigned([0])
    progress.saw_committed(0, 40)
    progress.answered(1, [(0, 45)])
    aged(progress, 31).saw_committed(0, 46)
    assert not progress.blocked(0, after=30)
    aged(progress, 31).busy_elsewhere()
    progress.answered(2, [(0, 50)])
    assert not progress.blocked(0, after=30)


def test_a_batch_retried_through_an_outage_does_not_block_its_partition():
    """Its events are not answered yet: nothing beyond the committed offset."""
    progress = Progress()
    progress.assigned([0])
    progress.answered(1, [(0, 39)])
    progress.saw_committed(0, 40)
    progress.begin(2, frozenset({0}))
    assert not aged(progress, 600).blocked(0, after=30)


def test_a_broker_that_does_not_answer_leaves_the_lag_unknown():
    class Away(IdleConsumer):
        async def highwaters(self, *tps):
            raise ConnectionError("broker away")

    assert lag_of(Away(position=5, end=12), Progress()) is None
