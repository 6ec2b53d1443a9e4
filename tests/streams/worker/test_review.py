"""ReviewFeed: who goes to an operator and why; classification on the wire."""

import asyncio
from datetime import UTC, datetime

import numpy as np

from latentline.models.defect_types.open_set import TypeDecision
from latentline.schemas import CameraEvent, Decision, ReviewReason, ReviewRequest, TypeStatus
from latentline.streams.settings import Settings
from latentline.streams.worker.metrics import WorkerMetrics
from latentline.streams.worker.review import ReviewFeed, classification_of
from latentline.streams.worker.watch import Observation


def observation(i: int, decision: Decision, defect_type: TypeDecision | None) -> Observation:
    event = CameraEvent(event_id=f"e{i}", camera_id="cam-1", line_id="line-1", captured_at=datetime.now(UTC),
                        image_uri=f"s3://camera-images/e{i}.png")
    heatmap = None if decision is Decision.OK else f"s3://latentline-evidence/heatmaps/e{i}.png"
    return Observation(None, event, 0.4 + i / 100, decision, np.zeros(2), np.zeros(4), defect_type,
                       heatmap_uri=heatmap)


def type_decision(status: TypeStatus, label: str = "short") -> TypeDecision:
    reason = None if status is TypeStatus.KNOWN else f"{status.value} because"
    return TypeDecision(status, label, 0.8, {label: 0.8, "open": 0.2}, 0.3, reason)


def test_review_requests_for_uncertain_scores_and_unnamed_types(publisher):
    settings, metrics = Settings(metrics_port=0), WorkerMetrics()
    feed = ReviewFeed(settings, publisher, metrics, "v1")
    observations = [
        observation(0, Decision.OK, None),
        observation(1, Decision.DEFECT, type_decision(TypeStatus.KNOWN)),
        observation(2, Decision.REVIEW, None),  # a model without types
        observation(3, Decision.DEFECT, type_decision(TypeStatus.REVIEW)),
        observation(4, Decision.REVIEW, type_decision(TypeStatus.UNKNOWN)),
    ]
    deliveries = feed.observe(observations)

    async def deliver():
        await asyncio.gather(*deliveries)

    asyncio.run(deliver())
    requests = [ReviewRequest.from_bytes(v) for v in publisher.on(settings.review_topic)]
    assert [r.event_id for r in requests] == ["e2", "e3", "e4"]
    assert requests[0].reasons == [ReviewReason.UNCERTAIN_ANOMALY] and requests[0].classification is None
    assert requests[1].reasons == [ReviewReason.AMBIGUOUS_TYPE]
    assert requests[1].classification.best_guess == "short" and requests[1].classification.defect_type is None
    assert requests[2].reasons == [ReviewReason.UNCERTAIN_ANOMALY, ReviewReason.UNKNOWN_TYPE]
    assert "review band" in requests[2].message and "unknown because" in requests[2].message
    assert all(r.image_uri.endswith(f"{r.event_id}.png") and r.model_version == "v1" for r in requests)
    assert all(r.heatmap_uri.endswith(f"heatmaps/{r.event_id}.png") for r in requests)
    assert metrics.review_requests.labels("uncertain_anomaly")._value.get() == 2
    assert metrics.defect_types.labels("cam-1", "known", "short")._value.get() == 1


def test_classification_of_names_the_type_only_when_known():
    assert classification_of(None) is None
    known = classification_of(type_decision(TypeStatus.KNOWN, "copper"))
    assert known.status is TypeStatus.KNOWN and known.defect_type == "copper" and known.reason is None
    unknown = classification_of(type_decision(TypeStatus.UNKNOWN, "copper"))
    assert unknown.defect_type is None and unknown.best_guess == "copper" and unknown.reason
