"""Alerts, labels and the novelty agent's input: round trips and the one-section rules."""

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from latentline.schemas import (
    Alert,
    AlertKind,
    AlertStatus,
    DriftDetails,
    Label,
    NoveltyDetails,
    NoveltyInput,
    Sighting,
)

AT = datetime(2024, 5, 17, 8, 30, tzinfo=UTC)
DRIFT = DriftDetails(
    statistic="anomaly_score", detector="ADWIN(delta=0.002)", started_at=AT,
    events_since_start=40, before=46.2, after=68.1,
)
NOVELTY = NoveltyDetails(
    candidate_id="novelty-line-1-1", size=9, radius=0.4, first_seen=AT, last_seen=AT,
    exemplar_event_ids=["e1", "e2"], exemplar_uris=["s3://evidence/novelty/e1.png", "s3://evidence/novelty/e2.png"],
)


def alert(**overrides) -> Alert:
    fields = dict(
        alert_id="drift-cam-1-40", kind=AlertKind.DRIFT, status=AlertStatus.OPEN, line_id="line-1",
        cameras=["cam-1"], raised_at=AT, model_version="v1", message="anomaly_score rose", drift=DRIFT,
    )
    return Alert(**(fields | overrides))


def test_alerts_round_trip():
    for original in (alert(), alert(kind=AlertKind.NEW_DEFECT_TYPE, drift=None, novelty=NOVELTY)):
        assert Alert.from_bytes(original.to_bytes()) == original


@pytest.mark.parametrize(
    "overrides",
    [
        {"drift": None},  # a drift alert without its details
        {"novelty": NOVELTY},  # both sections
        {"kind": AlertKind.NEW_DEFECT_TYPE},  # details of the other kind
        {"cameras": []},
    ],
)
def test_alert_details_must_match_kind(overrides):
    with pytest.raises(ValidationError):
        alert(**overrides)


def test_label_and_novelty_input():
    label = Label(event_id="e1", label="spur", labelled_by="operator-7", labelled_at=AT)
    assert Label.from_bytes(label.to_bytes()) == label
    sighting = Sighting(
        event_id="e1", camera_id="cam-1", line_id="line-1", image_uri="s3://images/e1.png",
        captured_at=AT, anomaly_score=120.0, model_version="v1", direction=[0.6, 0.8],
    )
    for wrapped in (NoveltyInput(label=label), NoveltyInput(sighting=sighting)):
        assert NoveltyInput.from_bytes(wrapped.to_bytes()) == wrapped
    with pytest.raises(ValidationError, match="either"):
        NoveltyInput()
    with pytest.raises(ValidationError, match="either"):
        NoveltyInput(label=label, sighting=sighting)
    with pytest.raises(ValidationError, match="label"):
        Label(event_id="e1", label="has space", labelled_by="x", labelled_at=AT)
