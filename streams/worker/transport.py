"""Faust's Kafka transport, with the changes the worker needs: the consumer's fetch wait as a
setting, and offsets never committed past an event that was fetched and not answered (the commit
guard below, and no acks of an earlier generation: ``_Consumer.ack``).

The fetch wait: Faust's aiokafka driver creates the worker's consumer with
``fetch_max_wait_ms=1500`` and offers no setting for it. A broker may hold a fetch that long when
no partition of the request has data (Kafka answers once ``fetch.min.bytes`` arrive; the embedded
Tansu broker waits the whole time on a consumer of many partitions): measured on the embedded
stack, an event reached the worker 0.48 s after it was sent (median of 12) at 1,500 ms, against
0.024 s at 50 ms (docs/speed.md). The cost of a short wait is an empty fetch per wait per broker
while the line is idle.

The commit guard: Faust commits the first run of consecutive acked offsets, and treats a single
missing offset at its head as a gap of the log (a compacted record, a transaction marker). When
the missing offset is an event that was fetched and is still in flight, or that the stream
dropped after a rebalance without acking it, that commit steps over the event: a SIGKILL then
loses it for good (faust-streaming issues 606 and 596; seen here in CI as one event of 160 never
answered after two kills). The guard remembers the offsets this consumer fetched since its last
commit and withholds a commit while one of them below the acked run is unacked. Offsets it never
fetched (real gaps) do not hold it back. A message the framework dropped holds the commit until
the watchdog (streams/worker/liveness.py) sees answers beyond a committed offset that does not
move, and exits so a new consumer reads from that offset again.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable

import faust
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer, Transport
from faust.types import TP

log = logging.getLogger(__name__)


class _ConsumerThread(AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: "FetchWaitTransport"):
        consumer = super()._create_worker_consumer(transport)
        # read by aiokafka when the consumer starts (its Fetcher), so setting it here is enough
        consumer._fetch_max_wait_ms = transport.app.fetch_max_wait_ms
        return consumer


def unanswered_below(fetched: Iterable[int], acked: set[int], head: int, committed: int | None) -> bool:
    """Whether an offset fetched at or after ``committed`` and below ``head`` (the smallest acked
    offset) is not acked: committing the acked run would step over it."""
    floor = committed or 0
    return any(floor <= offset < head and offset not in acked for offset in fetched)


class _Consumer(Consumer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._fetched: dict[TP, set[int]] = defaultdict(set)  # since the partition's last commit

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _getmany(self, active_partitions, timeout: float):
        """Every record the broker returned counts as fetched, also the ones Faust then drops
        (read while a rebalance stops the flow, or of a generation that just ended)."""
        records = await super()._getmany(active_partitions, timeout)
        for tp, batch in (records or {}).items():
            if self.app.topics.acks_enabled_for(tp.topic):
                self._fetched[tp].update(record.offset for record in batch)
        return records

    def _new_offset(self, tp: TP) -> int | None:
        acked = self._acked[tp]
        if acked and unanswered_below(self._fetched[tp], self._acked_index[tp], min(acked),
                                      self._committed_offset[tp]):
            return None
        offset = super()._new_offset(tp)
        if offset is not None:
            self._fetched[tp] = {o for o in self._fetched[tp] if o >= offset}
        return offset

    def ack(self, message) -> bool:
        """Faust's stream acks a message unprocessed when it drops it: one of an earlier generation
        arriving after a rebalance, and any arriving while a rebalance has suspended the flow,
        which still carries the generation that is ending (the new one is set only once
        partitions are assigned). The pipeline may also ack an answered one then. Either way the
        offset belongs to acks Faust forgets at the rebalance, and counted now it lets the next
        commit step over an event the new generation has not answered yet (measured: 7 of 800
        events lost after 10 kills for the first, 13 of 800 for the second, whose acks land in
        the new generation's books). Not counting is always safe: the seek back to the committed
        offset reads the event again, and the ledger keeps an answered one from a second verdict."""
        if message.generation_id != self.app.consumer_generation_id or not self.app.flow_control.is_active():
            message.acked = True
            self._unacked_messages.discard(message)
            return False
        return super().ack(message)

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        """Faust takes a jump in the offsets it reads for a gap of the log and later counts the
        skipped offsets as acked: the one path by which it commits offsets nobody acked.
        latentline's topics have no gaps (not compacted; a single transaction marker is still
        stepped over, a run of aborted records is not), so a jump means records were skipped:
        seen 0.2 s after a rebalance's seek to the committed offset 9, the next record read was
        52, the fetch going on from where it had been. ``latentline chaos --seed 6`` lost 72 of
        800 events that no worker answered, in runs of 30 and 42 offsets, every partition
        committed to its end; with this, the same run answered all 800 after jumps of 43 on
        three partitions. Not counted, the commit waits below them until the next seek reads
        them, or the blocked-commit exit (streams/worker/liveness.py) has a new consumer do so."""
        log.warning("read offset of %s jumped from %d to %d: not taken as a gap of the log",
                    tp, offset_from - 1, offset_to)

    async def on_partitions_revoked(self, revoked) -> None:
        for tp in revoked:  # Faust forgets their acks here too; the next owner starts afresh
            self._fetched.pop(tp, None)
        await super().on_partitions_revoked(revoked)

    def committed_offset(self, tp: TP) -> int | None:
        """The next offset of ``tp`` the group resumes from, as this consumer last committed or
        read it (None before either, or at 0)."""
        return self._committed_offset.get(tp)


class FetchWaitTransport(Transport):
    Consumer = _Consumer


class InspectionApp(faust.App):
    """A Faust app whose worker consumer waits at most ``fetch_max_wait_ms`` per fetch and never
    commits past an event it fetched and did not answer."""

    def __init__(self, *args, fetch_max_wait_ms: int = 1500, **kwargs):
        super().__init__(*args, **kwargs)
        self.fetch_max_wait_ms = fetch_max_wait_ms

    def _new_transport(self):
        return FetchWaitTransport(self.conf.broker_consumer, self)
