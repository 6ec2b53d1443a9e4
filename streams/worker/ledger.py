"""The idempotency ledger: which event ids already have a verdict, for a bounded window.

A redelivered event (a worker died after publishing its verdict but before its offset was
committed, or a producer retried) is answered again only if its first verdict is older than
``retention_seconds``: entries older than that are deleted (tombstones in the changelog), so
the table, and the replay of its changelog on every start, stay bounded by the window.
"""

import time

from latentline.streams.worker.ports import StateTable


class TableLedger:
    """event_id -> [partition, answered_at]; a partitioned table, so it follows rebalances."""

    def __init__(self, state: StateTable, retention_seconds: float, clock=time.time):
        self.state, self.retention, self.clock = state, retention_seconds, clock
        self.last_purge = clock()

    def answered(self, event_id: str) -> bool:
        entry = self.state.get(event_id)
        return isinstance(entry, list) and entry[1] > self.clock() - self.retention

    def record(self, handle, partition: int, event_id: str) -> None:
        self.state.put(handle, event_id, [partition, self.clock()])

    def purge(self, handles: dict[int, object]) -> int:
        """Delete expired entries of the partitions in ``handles`` (partition -> a message of it,
        for the changelog partition); at most every tenth of the window. Returns how many."""
        now = self.clock()
        if now - self.last_purge < self.retention / 10:
            return 0
        self.last_purge = now
        expired = [(key, entry[0]) for key, entry in self.state.items()
                   if isinstance(entry, list) and entry[1] <= now - self.retention]
        deleted = 0
        for key, partition in expired:
            if partition in handles:
                self.state.delete(handles[partition], key)
                deleted += 1
        return deleted
