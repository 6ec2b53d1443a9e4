"""The base of every wire record: strict, immutable, JSON with a schema version."""

from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, StringConstraints

# Identifiers travel as Kafka keys and object-store key parts: keep them printable and short.
Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")
]


class Record(BaseModel):
    """A message on a topic. Unknown fields are rejected so producer typos surface at once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, data: bytes | str) -> Self:
        return cls.model_validate_json(data)
