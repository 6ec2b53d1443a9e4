"""Drift and novelty on the real broker: detector state survives a restart; a new kind of
defect becomes a candidate with evidence, and an operator's label closes it."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image, ImageEnhance

from latentline.schemas import AlertKind, AlertStatus, Label
from latentline.streams.worker.store import ObjectStore
from tests.integration.conftest import make_stack, send_raw

pytestmark = pytest.mark.integration


def relit(paths: list[Path], folder: Path, brightness: float) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for path in paths:
        image = ImageEnhance.Brightness(Image.open(path).convert("RGB")).enhance(brightness)
        image.save(folder / path.name)
        out.append(folder / path.name)
    return out


def publisher_of(paths: list[Path], camera: str):
    async def scenario(producer, simulator):
        return [(await simulator.publish(path, camera)).event_id for path in paths]

    return scenario


def drift_alerts(outcomes, camera: str) -> list:
    return [a for a in outcomes.alerts if a.kind is AlertKind.DRIFT and a.cameras == [camera]]


def test_drift_detectors_continue_across_a_restart(broker_url, store_url, bundle_dir, tmp_path, pcb_dir):
    stack = make_stack(broker_url, store_url, bundle_dir, tmp_path)
    goods = sorted((pcb_dir / "test" / "good").iterdir())
    with stack.worker("before"):
        outcomes = stack.run(publisher_of(goods[:160], "cam-d"))
        assert stack.metrics()["latentline_drift_history_events"] == 160
    assert drift_alerts(outcomes, "cam-d") == []
    tenth_last_good = sorted(v.captured_at for v in outcomes.verdicts.values())[-10]
    # A fresh detector would take these dim images as its normal: only the 160 good ones
    # remembered from before the restart make them a change.
    # 200 of them: with PatchCore half the dimmed parts score as anomalous, so fewer good-looking
    # parts feed the latent summaries and the change takes longer to be sure of than it did
    dim = relit(goods[160:360], tmp_path / "dim", brightness=0.5)
    with stack.worker("after"):
        outcomes = stack.run(publisher_of(dim, "cam-d"), until=lambda o: drift_alerts(o, "cam-d"))
        assert stack.metrics()["latentline_drift_history_events"] == 360
    alert = drift_alerts(outcomes, "cam-d")[0]
    assert alert.status is AlertStatus.OPEN and alert.line_id == "line-1"
    assert alert.drift.started_at >= tenth_last_good, "dated at the change, give or take a few events"
    assert alert.drift.events_since_start <= 210


def test_new_defect_type_candidate_and_closing_label(broker_url, store_url, bundle_dir, tmp_path, pcb_dir):
    stack = make_stack(broker_url, store_url, bundle_dir, tmp_path, novelty_min_weight=4.0,
                       novelty_min_members=4)
    spurs = sorted((pcb_dir / "test" / "spur").iterdir())[:90]

    def candidate(status):
        return lambda o: any(a.kind is AlertKind.NEW_DEFECT_TYPE and a.status is status for a in o.alerts)

    async def two_cameras(producer, simulator):
        return [(await simulator.publish(p, f"cam-{i % 2}")).event_id for i, p in enumerate(spurs)]

    with stack.worker():
        outcomes = stack.run(two_cameras, until=candidate(AlertStatus.OPEN))
        opened = next(a for a in outcomes.alerts if a.kind is AlertKind.NEW_DEFECT_TYPE)
        store = ObjectStore(stack.settings)
        for uri in opened.novelty.exemplar_uris:
            assert uri.startswith(f"s3://{stack.settings.evidence_bucket}/novelty/{opened.alert_id}/")
            assert store.get(uri)[:4] == b"\x89PNG"
        label = Label(event_id=opened.novelty.exemplar_event_ids[0], label="spur", labelled_by="op-1",
                      labelled_at=datetime.now(UTC))

        async def label_it(producer, simulator):
            await send_raw(producer, stack.settings.labels_topic, b"{not json", key=None)  # must not stop it
            await send_raw(producer, stack.settings.labels_topic, label.to_bytes(), key=label.event_id)
            return []

        outcomes = stack.run(label_it, until=candidate(AlertStatus.CLOSED))
    closed = [a for a in outcomes.alerts if a.status is AlertStatus.CLOSED]
    assert closed[0].alert_id == opened.alert_id and closed[0].novelty.label == "spur"
    assert any(d.source_topic == stack.settings.labels_topic for d in outcomes.dead_letters)
