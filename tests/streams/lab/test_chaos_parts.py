"""The chaos harness's parts that need no worker: the restartable store, the plan, the counting."""

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from latentline.schemas import DeadLetter, ErrorKind
from latentline.streams.lab.chaos import ChaosOptions, duplicate_dead_letters, plan_chaos
from latentline.streams.lab.collector import Outcomes
from latentline.streams.lab.embedded import S3Server
from latentline.streams.settings import Settings
from latentline.streams.worker.store import ObjectStore, StoreUnavailable


def test_s3_server_outage_refuses_then_serves_the_same_objects_on_the_same_port():
    with S3Server() as server:
        store = ObjectStore(Settings(store_url=server.url))
        store.ensure_bucket("images")
        store.put("s3://images/a.bin", b"kept")
        port = server.port
        server.stop()
        assert not server.running
        with pytest.raises(StoreUnavailable):
            store.get("s3://images/a.bin")
        server.start()
        assert server.port == port
        assert store.get("s3://images/a.bin") == b"kept"  # the same client, its pool included


def test_plan_is_seeded_and_puts_one_kill_inside_the_outage():
    options = ChaosOptions(Path("."), kills=4, store_outage_seconds=5)
    plan = plan_chaos(options, random.Random(7))
    assert plan == plan_chaos(options, random.Random(7))
    assert plan.kill_in_outage and len(plan.kill_points) == 3
    assert plan.kill_points == sorted(plan.kill_points)
    assert all(0 < p < 1 for p in plan.kill_points) and 0 < plan.outage_point < 1


def test_plan_without_outage_kills_at_every_point():
    plan = plan_chaos(ChaosOptions(Path("."), kills=2, store_outage_seconds=0), random.Random(0))
    assert plan.outage_point is None and not plan.kill_in_outage and len(plan.kill_points) == 2


def letter(event_id: str) -> DeadLetter:
    return DeadLetter(error_kind=ErrorKind.CORRUPT_IMAGE, error_message="x", event_id=event_id,
                      payload=None, payload_base64="", source_topic="t", source_partition=0,
                      source_offset=0, failed_at=datetime.now(UTC))


def test_duplicate_dead_letters_counts_second_outcomes_only():
    outcomes = Outcomes(dead_letters=[letter("a"), letter("a"), letter("b"), letter("c")])
    outcomes.verdicts["c"] = object()  # a verdict and a dead letter for one event
    assert duplicate_dead_letters(outcomes) == 2
