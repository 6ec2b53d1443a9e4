"""The idempotency ledger remembers answered events for its retention window, then forgets them."""

from latentline.streams.worker.ledger import TableLedger
from tests.streams.conftest import DictState


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def test_an_answered_event_is_known_within_the_window_and_forgotten_after_it():
    clock, state = Clock(), DictState()
    ledger = TableLedger(state, retention_seconds=100, clock=clock)
    ledger.record("handle-0", 0, "e1")
    assert ledger.answered("e1") and not ledger.answered("e2")
    clock.now += 101
    assert not ledger.answered("e1"), "a duplicate older than the window is answered again"


def test_purge_deletes_expired_entries_of_the_partitions_at_hand_at_most_every_tenth_of_the_window():
    clock, state = Clock(), DictState()
    ledger = TableLedger(state, retention_seconds=100, clock=clock)
    ledger.record("h0", 0, "old-0")
    ledger.record("h1", 1, "old-1")
    clock.now += 50
    ledger.record("h0", 0, "new-0")
    clock.now += 55  # old ones are 105 s old, the new one 55 s
    assert ledger.purge({0: "h0"}) == 1, "only partition 0's expired entry: partition 1 is not at hand"
    assert set(state.data) == {"old-1", "new-0"}
    assert ledger.purge({1: "h1"}) == 0, "within a tenth of the window of the last purge"
    clock.now += 11
    assert ledger.purge({1: "h1"}) == 1 and set(state.data) == {"new-0"}
