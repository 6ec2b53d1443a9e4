"""inspection.labels: an operator names what an event shows."""

from typing import Literal

from pydantic import AwareDatetime, Field

from latentline.schemas.base import Identifier, Record


class Label(Record):
    schema_version: Literal[1] = 1
    event_id: Identifier = Field(description="The camera event the label is about.")
    label: Identifier = Field(description="A defect type (new ones welcome) or 'good'.")
    labelled_by: str = Field(min_length=1, max_length=128, description="Who: operator id or system.")
    labelled_at: AwareDatetime
