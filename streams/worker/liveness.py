"""What the watchdog knows about the inspect agent's progress, and when it gives up on itself.

Three judgements, read by the lag timer in streams/worker/app.py:

- ``stalled`` (a metric and an alert): an owned partition has a batch in flight, or waiting
  events, and nothing of it was answered for ``stall_seconds``. It covers a batch paused on a long
  store outage, which is retried and must not be cut short, so it only reports.
- ``idle_with_work`` (the worker exits): no batch is in flight, owned partitions have waiting
  events, and the agent has neither started nor finished a batch, nor the group rebalanced or
  restored a table, for ``stall_exit_seconds``. That is a consumer that stopped fetching: seen
  after several rebalances in quick succession (Faust's fetcher left idle with partitions
  assigned; faust-streaming issues 471 and 629), and cured only by a new consumer. Exiting
  uncommitted hands the partitions to the group and the restarted worker, as a batch failure does.
- ``blocked`` (the worker exits): the agent answered events of a partition beyond its committed
  offset, and that offset has not moved for ``stall_exit_seconds``. Batches are acked in order, so
  an event below was fetched and never reached the agent: Faust's stream drops messages it reads
  across a rebalance (faust-streaming issue 596), and the commit guard (streams/worker/transport.py)
  holds the commit there instead of stepping over it. This consumer will not read that event
  again; a new one starts at the committed offset and answers it (the ledger drops the repeats).
"""

import time
from dataclasses import dataclass, field


@dataclass
class Progress:
    """Per partition, the next offset to answer and when it moved; when the agent last acted."""

    next_offsets: dict[int, int] = field(default_factory=dict)
    moved_at: dict[int, float] = field(default_factory=dict)
    # batch key -> (its partitions, since when); several overlap (streams/worker/pipeline.py)
    inflight: dict[int, tuple[frozenset[int], float]] = field(default_factory=dict)
    owned: set[int] = field(default_factory=set)  # partitions of the last rebalance
    active_at: float = field(default_factory=time.monotonic)
    committed: dict[int, int | None] = field(default_factory=dict)  # as last seen, and since when
    committed_at: dict[int, float] = field(default_factory=dict)

    def begin(self, key: int, partitions: frozenset[int]) -> None:
        self.active_at = time.monotonic()
        self.inflight[key] = (partitions, self.active_at)

    def answered(self, key: int, offsets: list[tuple[int, int]]) -> None:
        """``offsets``: (partition, offset) of every message of the batch, answered or dropped."""
        now = time.monotonic()
        for partition, offset in offsets:
            self.next_offsets[partition] = max(self.next_offsets.get(partition, 0), offset + 1)
            self.moved_at[partition] = now
        self.inflight.pop(key, None)
        self.active_at = now

    def assigned(self, partitions: list[int]) -> None:
        """After a rebalance: a newly owned partition's clock starts now, and what this worker
        answered of it before it moved away is forgotten (its next owner went on meanwhile)."""
        now = time.monotonic()
        for partition in set(partitions) - self.owned:
            self.next_offsets.pop(partition, None)
            self.committed.pop(partition, None)
            self.moved_at[partition] = now
        self.owned, self.active_at = set(partitions), now

    def busy_elsewhere(self) -> None:
        """The app rebalances or restores tables: not the agent's fault that it waits."""
        self.active_at = time.monotonic()
        self.committed_at = dict.fromkeys(self.committed_at, self.active_at)

    def saw_committed(self, partition: int, offset: int | None) -> None:
        if partition not in self.committed or self.committed[partition] != offset:
            self.committed[partition], self.committed_at[partition] = offset, time.monotonic()

    def blocked(self, partition: int, after: float) -> bool:
        """Answered beyond a committed offset that has not moved for ``after`` seconds (> 0)."""
        committed, answered = self.committed.get(partition), self.next_offsets.get(partition)
        if after <= 0 or answered is None or answered <= (committed or 0):
            return False
        return time.monotonic() - self.committed_at.get(partition, time.monotonic()) > after

    def stalled(self, partition: int, lag: int, after: float) -> bool:
        now = time.monotonic()
        stuck_batch = any(partition in partitions and now - since > after
                          for partitions, since in self.inflight.values())
        idle_with_lag = lag > 0 and now - self.moved_at.get(partition, now) > after
        return stuck_batch or idle_with_lag

    def idle_with_work(self, lag: int, after: float) -> bool:
        """``lag``: waiting events summed over owned partitions; ``after`` <= 0 never gives up."""
        idle = time.monotonic() - self.active_at
        return after > 0 and not self.inflight and lag > 0 and idle > after
