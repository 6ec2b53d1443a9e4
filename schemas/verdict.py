"""inspection.verdicts: exactly one per valid camera event, keyed by camera_id."""

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, Field, NonNegativeFloat

from latentline.schemas.base import Identifier, Record


class Decision(StrEnum):
    OK = "ok"
    DEFECT = "defect"
    REVIEW = "review"


class TypeStatus(StrEnum):
    KNOWN = "known"  # a known defect type, named automatically
    REVIEW = "review"  # ambiguous between known types: an operator decides
    UNKNOWN = "unknown"  # unlike every known type: perhaps a new one


class Classification(Record):
    """What kind of defect an anomalous part shows (absent on ok parts and for models without
    labelled defect types)."""

    status: TypeStatus
    defect_type: Identifier | None = Field(description="The type, when status is known.")
    best_guess: Identifier = Field(description="The most probable known type, whatever the status.")
    confidence: float = Field(ge=0, le=1, description="Probability of best_guess.")
    probabilities: dict[str, float] = Field(description="The most probable types, best first.")
    distance: NonNegativeFloat = Field(description="Cosine distance to the nearest labelled examples.")
    reason: str | None = Field(description="Why an operator should look (review and unknown).")


class Measurement(Record):
    """A quality characteristic measured from the latent space (``latentline calibrate``)."""

    value: float = Field(description="In unit.")
    unit: str
    uncertainty: NonNegativeFloat = Field(
        description="Expanded uncertainty U: the true value lies within value +- U with probability "
        "coverage, as estimated from out-of-fold calibration residuals.")
    coverage: float = Field(gt=0, lt=1, description="The coverage probability of U (0.95).")
    coverage_factor: float = Field(gt=0, description="k in U = k u, u the standard uncertainty.")
    in_range: bool = Field(
        description="Inside the calibrated range widened by U; outside it the calibration extrapolates "
        "and U does not hold (a defect size measured on a part without the defect, for one).")


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
    anomaly_score: float = Field(
        ge=0, le=1, description="Normalised: 0.5 is the defect threshold whatever the model, the median "
        "good part about 0.1; higher is more anomalous.")
    threshold: float = Field(description="Scores at or above this are defects (0.5).")
    review_threshold: float = Field(description="Scores from here up to threshold go to review.")
    decision: Decision
    heatmap_uri: str | None = Field(
        default=None, description="Anomaly-map overlay (PNG) in the evidence bucket; anomalous parts only.")
    classification: Classification | None = None
    measurements: dict[Identifier, Measurement] = Field(
        default_factory=dict, description="Every calibrated quantity of the model, by name.")
    batch_size: int = Field(ge=1, description="Events encoded together with this one.")
    timings: StageTimings
    processed_at: AwareDatetime
