"""Transient faults are waited out: at start (the object store down while a worker starts) as
while consuming."""

import pytest

from latentline.streams.worker.retry import Backoff, wait_at_start
from latentline.streams.worker.store import StoreUnavailable


def flaky(failures: int, error: Exception):
    calls = []

    def attempt():
        calls.append(1)
        if len(calls) <= failures:
            raise error
        return "bundle"

    return attempt, calls


def test_a_worker_starting_while_the_store_is_down_waits_for_it():
    attempt, calls = flaky(3, StoreUnavailable("connection refused"))
    backoff = Backoff(0.001, 0.002)
    assert wait_at_start(attempt, lambda e: isinstance(e, StoreUnavailable), backoff, "store") == "bundle"
    assert len(calls) == 4 and backoff.attempts == 3


def test_a_permanent_error_at_start_is_not_retried():
    attempt, calls = flaky(3, ValueError("not a bundle"))
    with pytest.raises(ValueError):
        wait_at_start(attempt, lambda e: isinstance(e, StoreUnavailable), Backoff(0.001, 0.002), "store")
    assert len(calls) == 1
