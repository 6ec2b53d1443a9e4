"""Records as the worker writes them to the station's topics, for the station's tests."""

from datetime import UTC, datetime, timedelta

from latentline.schemas import (
    Alert,
    AlertKind,
    AlertStatus,
    Classification,
    Decision,
    DriftDetails,
    Label,
    Measurement,
    NoveltyDetails,
    ReviewReason,
    ReviewRequest,
    StageTimings,
    TypeStatus,
    Verdict,
)

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def classification(best: str = "short", status: TypeStatus = TypeStatus.REVIEW) -> Classification:
    known = status is TypeStatus.KNOWN
    return Classification(status=status, defect_type=best if known else None, best_guess=best,
                          confidence=0.55, probabilities={best: 0.55, "copper": 0.3, "open": 0.15},
                          distance=0.2, reason=None if known else "two types are close")


def request(event_id: str, camera: str = "cam-1", score: float = 0.45, minutes: int = 0,
            reasons=(ReviewReason.AMBIGUOUS_TYPE,), line: str = "line-1", bucket: str = "camera-images",
            heatmap: bool = True) -> ReviewRequest:
    at = T0 + timedelta(minutes=minutes)
    return ReviewRequest(
        event_id=event_id, camera_id=camera, line_id=line, part_id="p-7", image_uri=f"s3://{bucket}/{event_id}.png",
        heatmap_uri=f"s3://{bucket}/maps/{event_id}.png" if heatmap else None, captured_at=at,
        model_version="m-1", anomaly_score=score, decision=Decision.REVIEW, reasons=list(reasons),
        message="two types are close", classification=classification(), requested_at=at,
    )


def verdict(event_id: str, camera: str = "cam-1", decision: Decision = Decision.REVIEW, minutes: int = 0,
            defect_type: str | None = None) -> Verdict:
    at = T0 + timedelta(minutes=minutes)
    typed = classification(defect_type, TypeStatus.KNOWN) if defect_type else None
    return Verdict(
        event_id=event_id, camera_id=camera, line_id="line-1", image_uri=f"s3://camera-images/{event_id}.png",
        captured_at=at, model_version="m-1", anomaly_score=0.45, threshold=0.5, review_threshold=0.35,
        decision=decision, classification=typed,
        measurements={"spot_diameter": Measurement(value=0.42, unit="mm", uncertainty=0.05, coverage=0.95,
                                                   coverage_factor=2.0, in_range=True)},
        batch_size=1, processed_at=at,
        timings=StageTimings(queue_seconds=0, fetch_seconds=0, decode_seconds=0, encode_seconds=0,
                             score_seconds=0),
    )


def label(event_id: str, name: str = "spur", by: str = "op-1") -> Label:
    return Label(event_id=event_id, label=name, labelled_by=by, labelled_at=T0)


def candidate(alert_id: str = "novelty-line-1-0", status: AlertStatus = AlertStatus.OPEN,
              members=("e-1", "e-2", "e-3"), bucket: str = "latentline-evidence") -> Alert:
    return Alert(
        alert_id=alert_id, kind=AlertKind.NEW_DEFECT_TYPE, status=status, line_id="line-1", cameras=["cam-1"],
        raised_at=T0, model_version="m-1",
        message="anomalies of one unnamed kind" if status is AlertStatus.OPEN else "named 'spur' by op-1",
        novelty=NoveltyDetails(candidate_id=alert_id, size=len(members), radius=0.4, first_seen=T0,
                               last_seen=T0,
                               exemplar_event_ids=list(members),
                               exemplar_uris=[f"s3://{bucket}/novelty/{alert_id}/{m}.png" for m in members],
                               label="spur" if status is AlertStatus.CLOSED else None,
                               labelled_by="op-1" if status is AlertStatus.CLOSED else None),
    )


def drift(camera: str = "cam-2") -> Alert:
    return Alert(
        alert_id=f"drift:{camera}:anomaly_score:e-9", kind=AlertKind.DRIFT, status=AlertStatus.OPEN,
        line_id="line-1", cameras=[camera], raised_at=T0, model_version="m-1", message="drift",
        drift=DriftDetails(statistic="anomaly_score", detector="ADWIN(delta=0.002)", started_at=T0,
                           events_since_start=12, before=0.1, after=0.3),
    )
