"""Transient faults (object store down, device out of memory) are waited out, never dead-lettered.

The agent holds its batch and sleeps with capped exponential backoff: consumption pauses (Faust
stops fetching once its buffer is full), the consumer keeps heartbeating and so stays in its
group, lag grows and ``latentline_paused`` says why. When the fault clears, the same events get
their verdicts.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from latentline.streams.worker.metrics import WorkerMetrics

log = logging.getLogger(__name__)
T = TypeVar("T")


class Backoff:
    """Delays ``initial``, 2 x ``initial``, ... capped at ``maximum`` seconds.

    >>> b = Backoff(0.5, 2.0)
    >>> [b.next_delay() for _ in range(4)]
    [0.5, 1.0, 2.0, 2.0]
    """

    def __init__(self, initial: float, maximum: float):
        self.initial, self.maximum = initial, maximum
        self.attempts = 0

    def next_delay(self) -> float:
        delay = min(self.maximum, self.initial * 2**self.attempts)
        self.attempts += 1
        return delay


async def until_clear(attempt: Callable[[], Awaitable[T]], is_transient: Callable[[BaseException], bool],
                      backoff: Backoff, metrics: WorkerMetrics, cause: str) -> T:
    """``attempt()`` again and again while it fails transiently; other errors propagate."""
    while True:
        try:
            result = await attempt()
        except Exception as exc:
            if not is_transient(exc):
                raise
            await pause(backoff, metrics, cause, exc)
            continue
        metrics.paused.labels(cause).set(0)
        return result


async def pause(backoff: Backoff, metrics: WorkerMetrics, cause: str, reason: object) -> None:
    delay = backoff.next_delay()
    metrics.paused.labels(cause).set(1)
    metrics.retries.labels(cause).inc()
    log.warning("%s: %s; pausing %.1fs before retrying the same events", cause, reason, delay)
    await asyncio.sleep(delay)


def wait_at_start(attempt: Callable[[], T], is_transient: Callable[[BaseException], bool],
                  backoff: Backoff, what: str) -> T:
    """``attempt()`` until it stops failing transiently, before the worker consumes anything:
    a worker (re)started while the object store is down waits for it instead of exiting."""
    while True:
        try:
            return attempt()
        except Exception as exc:
            if not is_transient(exc):
                raise
            delay = backoff.next_delay()
            log.warning("%s: %s; retrying in %.1fs", what, exc, delay)
            time.sleep(delay)
