"""What the watchdog knows about the inspect agent's progress, and when it gives up on itself.

Two judgements, read by the lag timer in streams/worker/app.py:

- ``stalled`` (a metric and an alert): an owned partition has a batch in flight, or waiting
  events, and nothing of it was answered for ``stall_seconds``. It covers a batch paused on a long
  store outage, which is retried and must not be cut short, so it only reports.
- ``idle_with_work`` (the worker exits): no batch is in flight, owned partitions have waiting
  events, and the agent has neither started nor finished a batch, nor the group rebalanced or
  restored a table, for ``stall_exit_seconds``. That is a consumer that stopped fetching: seen
  after several rebalances in quick succession (Faust's fetcher left idle with partitions
  assigned; faust-streaming issues 471 and 629), and cured only by a new consumer. Exiting
  uncommitted hands the partitions to the group and the restarted worker, as a batch failure does.
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
            self.moved_at[partition] = now
        self.owned, self.active_at = set(partitions), now

    def busy_elsewhere(self) -> None:
        """The app rebalances or restores tables: not the agent's fault that it waits."""
        self.active_at = time.monotonic()

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
