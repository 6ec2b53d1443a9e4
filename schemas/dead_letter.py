"""camera.events.dlq: input that could not be inspected, with the reason and the original bytes."""

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, Field

from schemas.base import Record


class ErrorKind(StrEnum):
    INVALID_JSON = "invalid_json"
    SCHEMA_VIOLATION = "schema_violation"
    MISSING_OBJECT = "missing_object"
    STORE_UNAVAILABLE = "store_unavailable"
    CHECKSUM_MISMATCH = "checksum_mismatch"
    IMAGE_TOO_LARGE = "image_too_large"
    UNSUPPORTED_FORMAT = "unsupported_format"
    CORRUPT_IMAGE = "corrupt_image"
    PROCESSING_ERROR = "processing_error"


class DeadLetter(Record):
    schema_version: Literal[1] = 1
    error_kind: ErrorKind
    error_message: str
    event_id: str | None = Field(default=None, description="Set when the payload had one.")
    camera_id: str | None = None
    payload: str | None = Field(description="The original payload as UTF-8, if it was text.")
    payload_base64: str = Field(description="The original payload, byte for byte.")
    source_topic: str
    source_partition: int
    source_offset: int
    failed_at: AwareDatetime
