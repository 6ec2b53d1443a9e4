"""Faust's Kafka transport with the worker consumer's fetch wait as a setting.

Faust's aiokafka driver creates the worker's consumer with ``fetch_max_wait_ms=1500`` and offers
no setting for it. A broker may hold a fetch that long when no partition of the request has data
(Kafka answers once ``fetch.min.bytes`` arrive; the embedded Tansu broker waits the whole time on
a consumer of many partitions): measured on the embedded stack, an event reached the worker 0.48 s
after it was sent (median of 12) at 1,500 ms, against 0.024 s at 50 ms (docs/speed.md). The cost
of a short wait is an empty fetch per wait per broker while the line is idle.
"""

import faust
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer, Transport


class _ConsumerThread(AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: "FetchWaitTransport"):
        consumer = super()._create_worker_consumer(transport)
        # read by aiokafka when the consumer starts (its Fetcher), so setting it here is enough
        consumer._fetch_max_wait_ms = transport.app.fetch_max_wait_ms
        return consumer


class _Consumer(Consumer):
    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class FetchWaitTransport(Transport):
    Consumer = _Consumer


class InspectionApp(faust.App):
    """A Faust app whose worker consumer waits at most ``fetch_max_wait_ms`` per fetch."""

    def __init__(self, *args, fetch_max_wait_ms: int = 1500, **kwargs):
        super().__init__(*args, **kwargs)
        self.fetch_max_wait_ms = fetch_max_wait_ms

    def _new_transport(self):
        return FetchWaitTransport(self.conf.broker_consumer, self)
