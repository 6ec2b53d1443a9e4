"""SIGKILLed workers and an object-store outage mid-stream: no part lost, none given up.

The short form of ``latentline chaos`` (streams/lab/chaos.py), the same harness function."""

import uuid

import pytest

from latentline.streams.lab.chaos import ChaosOptions, ChaosReport, notable_log_lines, run_chaos
from latentline.streams.settings import Settings

pytestmark = pytest.mark.integration

KILLS = 2
EVENTS = 160


def isolated_settings() -> Settings:
    """Own topics and consumer group on the shared session broker."""
    tag = uuid.uuid4().hex[:8]
    return Settings(
        app_id=f"latentline-chaos-{tag}", events_topic=f"camera.events.{tag}",
        verdicts_topic=f"inspection.verdicts.{tag}", dlq_topic=f"camera.events.dlq.{tag}",
        alerts_topic=f"inspection.alerts.{tag}", labels_topic=f"inspection.labels.{tag}",
        novelty_topic=f"latentline.novelty.{tag}", review_topic=f"inspection.review.{tag}",
        log_level="info",
        # a consumer left idle after quick rebalances exits and is restarted (liveness.py); the
        # default 120 s would spend the test's time waiting
        stall_exit_seconds=30,
    )


def duplicate_bound(settings: Settings, deaths: int) -> int:
    """Each death of a worker (a kill, or a crash the harness restarted) can double at most the
    batch it had in flight: its verdicts out, its ledger entries not yet in the changelog.
    Earlier batches are in the ledger, which the partition's next owner restores before it
    consumes, so their redelivery is dropped as duplicates. (Measured: 13 second verdicts for
    5 deaths on 2 cores; the bound is 80.)"""
    return settings.batch_max_size * deaths


def evidence(report: ChaosReport, logs) -> str:
    """What a failed run leaves for whoever reads it where the logs are gone (a CI machine)."""
    workers = "\n".join(f"{path.name}:\n  " + "\n  ".join(notable_log_lines(path))
                        for path in sorted(logs.glob("worker-*.log")))
    return (f"lost {report.lost_events[:10]}; group offsets {report.group_offsets}; "
            f"chaos log {report.chaos_log}\n{workers}")


# The drain's own limit stays inside pytest's, so a failure reports what it saw, not a timeout.
@pytest.mark.timeout(900)
def test_no_part_is_lost_when_workers_are_killed_and_the_store_goes_away(
        broker_url, bundle_dir, pcb_dir, tmp_path):
    settings = isolated_settings()
    options = ChaosOptions(pcb_dir, workers=2, kills=KILLS, events=EVENTS, store_outage_seconds=5,
                           rate=20, pool_size=32, timeout=420, logs=tmp_path)
    report = run_chaos(options, settings, bundle_dir=bundle_dir, broker_url=broker_url)
    logs = evidence(report, tmp_path)
    assert report.events_published == EVENTS and report.publish_failures == 0
    assert report.kills == KILLS and report.store_outage_seconds >= 5, logs
    assert report.lost == 0, logs
    assert not report.dead_letters_by_kind.get("store_unavailable"), report.dead_letters_by_kind
    assert report.drained, f"the group never committed every event; {logs}"
    deaths = report.kills + report.worker_exits
    assert report.duplicate_verdicts <= duplicate_bound(settings, deaths), logs
