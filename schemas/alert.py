"""inspection.alerts: the line changed (drift) or a defect nobody has named keeps appearing."""

from enum import StrEnum
from typing import Literal, Self

from pydantic import AwareDatetime, Field, NonNegativeInt, model_validator

from latentline.schemas.base import Identifier, Record


class AlertKind(StrEnum):
    DRIFT = "drift"
    NEW_DEFECT_TYPE = "new_defect_type"


class AlertStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class DriftDetails(Record):
    statistic: str = Field(description="What drifted: anomaly_score, a latent summary (latent_abs_z, ...) or "
                                       "a pixel statistic (pixel_mean, pixel_sharpness, ...).")
    detector: str = Field(description="The river detector and its parameters, e.g. ADWIN(delta=1e-05).")
    started_at: AwareDatetime = Field(description="Capture time of the first event after the change.")
    events_since_start: NonNegativeInt = Field(description="Events of this camera since the change.")
    before: float = Field(description="Mean of the statistic before the change (its own units).")
    after: float = Field(description="Mean of the statistic since the change (its own units).")
    direction: Literal["up", "down"] | None = Field(default=None, description="Which way it moved.")
    change_in_std: float | None = Field(
        default=None, description="after - before in standard deviations of the camera's reference "
                                  "(statistics standardised per camera: the pixel statistics)."
    )
    meaning: str | None = Field(default=None, description="What such a change usually means on a line.")


class NoveltyDetails(Record):
    candidate_id: Identifier
    size: NonNegativeInt = Field(description="Unexplained anomalies assigned to the candidate.")
    radius: float = Field(description="Mean distance of its members to their centre (latent units).")
    first_seen: AwareDatetime
    last_seen: AwareDatetime
    exemplar_event_ids: list[Identifier]
    exemplar_uris: list[str] = Field(description="Copies of the exemplar images in the evidence store.")
    label: str | None = Field(default=None, description="The operator's label that closed it.")
    labelled_by: str | None = None


class Alert(Record):
    schema_version: Literal[1] = 1
    alert_id: Identifier = Field(description="Stable per alert; a closing message repeats it.")
    kind: AlertKind
    status: AlertStatus
    line_id: Identifier
    cameras: list[Identifier] = Field(min_length=1)
    raised_at: AwareDatetime
    model_version: str
    message: str = Field(description="One line for a person on the shop floor.")
    drift: DriftDetails | None = None
    novelty: NoveltyDetails | None = None

    @model_validator(mode="after")
    def _details_match_kind(self) -> Self:
        wanted = {AlertKind.DRIFT: self.drift, AlertKind.NEW_DEFECT_TYPE: self.novelty}
        if wanted[self.kind] is None or sum(d is not None for d in wanted.values()) != 1:
            raise ValueError(f"a {self.kind} alert carries exactly its own details section")
        return self
