"""Defect types on verdicts, and review requests for what an operator should decide."""

from collections.abc import Awaitable
from datetime import UTC, datetime

from latentline.models.defect_types.open_set import TypeDecision
from latentline.schemas import Classification, Decision, ReviewReason, ReviewRequest, TypeStatus
from latentline.streams.settings import Settings
from latentline.streams.worker.metrics import WorkerMetrics
from latentline.streams.worker.ports import Publisher
from latentline.streams.worker.watch import Observation

REASON_OF_STATUS = {
    TypeStatus.REVIEW: ReviewReason.AMBIGUOUS_TYPE,
    TypeStatus.UNKNOWN: ReviewReason.UNKNOWN_TYPE,
}


def classification_of(decision: TypeDecision | None) -> Classification | None:
    if decision is None:
        return None
    return Classification(
        status=decision.status,
        defect_type=decision.label if decision.status is TypeStatus.KNOWN else None,
        best_guess=decision.label,
        confidence=min(1.0, max(0.0, decision.confidence)),
        probabilities=decision.probabilities,
        distance=max(0.0, decision.distance),
        reason=decision.reason,
    )


def review_reasons(o: Observation) -> list[tuple[ReviewReason, str]]:
    reasons = []
    if o.decision is Decision.REVIEW:
        reasons.append((ReviewReason.UNCERTAIN_ANOMALY, f"anomaly score {o.score:.3g} is in the review band"))
    if o.defect_type is not None and o.defect_type.status in REASON_OF_STATUS:
        reasons.append((REASON_OF_STATUS[o.defect_type.status], o.defect_type.reason or ""))
    return reasons


class ReviewFeed:
    """Counts defect types and sends every event an operator should decide to the review topic."""

    def __init__(self, settings: Settings, publisher: Publisher, metrics: WorkerMetrics, model_version: str):
        self.settings, self.publisher, self.metrics = settings, publisher, metrics
        self.model_version = model_version

    def observe(self, observations: list[Observation]) -> list[Awaitable]:
        deliveries = []
        for o in observations:
            if o.defect_type is not None:
                self.metrics.defect_types.labels(o.event.camera_id, o.defect_type.status.value,
                                                 o.defect_type.label).inc()
            if reasons := review_reasons(o):
                deliveries.append(self._request(o, reasons))
        return deliveries

    def _request(self, o: Observation, reasons: list[tuple[ReviewReason, str]]) -> Awaitable:
        for reason, _ in reasons:
            self.metrics.review_requests.labels(reason.value).inc()
        event = o.event
        request = ReviewRequest(
            event_id=event.event_id, camera_id=event.camera_id, line_id=event.line_id,
            part_id=event.part_id, image_uri=event.image_uri, heatmap_uri=o.heatmap_uri,
            captured_at=event.captured_at, model_version=self.model_version, anomaly_score=o.score,
            decision=o.decision,
            reasons=[reason for reason, _ in reasons], message="; ".join(text for _, text in reasons),
            classification=classification_of(o.defect_type), requested_at=datetime.now(UTC),
        )
        return self.publisher.send(self.settings.review_topic, event.camera_id, request.to_bytes())
