"""inspection.verdicts: exactly one per valid camera event, keyed by camera_id."""

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, Field, NonNegativeFloat

from schemas.base import Identifier, Record


class Decision(StrEnum):
    OK = "ok"
    DEFECT = "defect"
    REVIEW = "review"


class StageTimings(Record):
    """Seconds spent per stage for this event (batch stages are the batch's wall time)."""

    queue_seconds: NonNegativeFloat = Field(description="From captured_at until the batch started.")
    fetch_seconds: NonNegativeFloat
    decode_seconds: NonNegativeFloat
    encode_seconds: NonNegativeFloat
    score_seconds: NonNegativeFloat


class Verdict(Record):
    schema_version: Literal[1] = 1
    event_id: Identifier
    camera_id: Identifier
    line_id: Identifier
    part_id: Identifier | None = None
    image_uri: str
    captured_at: AwareDatetime
    model_version: str
    anomaly_score: float = Field(description="Higher is more anomalous; compare with threshold.")
    threshold: float = Field(description="Scores at or above this are defects.")
    review_threshold: float = Field(description="Scores from here up to threshold go to review.")
    decision: Decision
    batch_size: int = Field(ge=1, description="Events encoded together with this one.")
    timings: StageTimings
    processed_at: AwareDatetime
