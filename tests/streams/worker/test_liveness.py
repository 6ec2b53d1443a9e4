"""The watchdog's two judgements: a stalled partition (reported) and an agent idle with work (exits)."""

import time

from streams.worker.liveness import Progress


def aged(progress: Progress, seconds: float) -> Progress:
    """As if every clock the progress holds was read ``seconds`` ago."""
    progress.active_at -= seconds
    progress.inflight = {k: (parts, t - seconds) for k, (parts, t) in progress.inflight.items()}
    progress.moved_at = {p: t - seconds for p, t in progress.moved_at.items()}
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
