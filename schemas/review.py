"""inspection.review: what an operator should look at, and why.

One request per event that needs a person: the anomaly score sits in the review band, or the
defect is anomalous but its type is ambiguous or unlike every known type. The operator answers
on inspection.labels with the same event_id.
"""

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, Field

from latentline.schemas.base import Identifier, Record
from latentline.schemas.verdict import Classification, Decision


class ReviewReason(StrEnum):
    UNCERTAIN_ANOMALY = "uncertain_anomaly"  # score between review_threshold and threshold
    AMBIGUOUS_TYPE = "ambiguous_type"
    UNKNOWN_TYPE = "unknown_type"


class ReviewRequest(Record):
    schema_version: Literal[1] = 1
    event_id: Identifier
    camera_id: Identifier
    line_id: Identifier
    part_id: Identifier | None = None
    image_uri: str = Field(description="The image as the camera took it.")
    heatmap_uri: str | None = Field(default=None, description="Anomaly map overlay, if the model makes one.")
    captured_at: AwareDatetime
    model_version: str
    anomaly_score: float = Field(ge=0, le=1, description="Normalised as in verdicts: 0.5 is the threshold.")
    decision: Decision
    reasons: list[ReviewReason] = Field(min_length=1)
    message: str = Field(description="The reasons in words, for the operator's screen.")
    classification: Classification | None = None
    requested_at: AwareDatetime
