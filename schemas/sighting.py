"""latentline.novelty (internal): what the novelty agent learns from, one partition, in order.

The inspect agents send every unexplained anomaly here; the labels agent forwards operators'
labels here, so the one owner of the novelty state sees both in a single ordered stream.
"""

from typing import Literal, Self

from pydantic import AwareDatetime, Field, model_validator

from latentline.schemas.base import Identifier, Record
from latentline.schemas.label import Label


class Sighting(Record):
    event_id: Identifier
    camera_id: Identifier
    line_id: Identifier
    image_uri: str
    captured_at: AwareDatetime
    anomaly_score: float
    model_version: str
    direction: list[float] = Field(description="Unit vector: how the latent deviates from good parts.")


class NoveltyInput(Record):
    schema_version: Literal[1] = 1
    sighting: Sighting | None = None
    label: Label | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.sighting is None) == (self.label is None):
            raise ValueError("a novelty input carries either a sighting or a label")
        return self
