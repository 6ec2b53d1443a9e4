"""camera.events.dlq: input that could not be inspected, with the reason and the original bytes."""

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, Field

from latentline.schemas.base import Record


class ErrorKind(StrEnum):
    """Why an event could not be inspected. Every kind is permanent for that message: transient
    faults (store down, device out of memory) are retried by the worker, never dead-lettered.
    ``store_unavailable`` remains for dead letters written by earlier versions."""

    EMPTY_MESSAGE = "empty_message"  # a tombstone (null value) or zero bytes
    INVALID_JSON = "invalid_json"
    SCHEMA_VIOLATION = "schema_violation"
    MISSING_OBJECT = "missing_object"
    STORE_UNAVAILABLE = "store_unavailable"
    INVALID_URI = "invalid_uri"  # image_uri is no s3://bucket/key
    POLICY_VIOLATION = "policy_violation"  # image_uri outside the allowed buckets and prefixes
    SLOW_OBJECT = "slow_object"  # the download ran past its deadline while bytes were flowing
    CHECKSUM_MISMATCH = "checksum_mismatch"
    IMAGE_TOO_LARGE = "image_too_large"
    UNSUPPORTED_FORMAT = "unsupported_format"
    CORRUPT_IMAGE = "corrupt_image"
    PROCESSING_ERROR = "processing_error"  # the model failed on this event alone (or its score was NaN)
    POISON = "poison"  # its batch stopped workers ``poison_attempts`` times: quarantined unprocessed


class DeadLetter(Record):
    schema_version: Literal[1] = 1
    error_kind: ErrorKind
    error_message: str
    event_id: str | None = Field(default=None, description="Set when the payload had one.")
    camera_id: str | None = None
    payload: str | None = Field(description="The original payload as UTF-8, if it was text (and kept whole).")
    payload_base64: str = Field(description="The original payload, byte for byte (its head, if truncated).")
    payload_size: int = Field(0, description="Bytes of the original payload (0 for a tombstone).")
    payload_sha256: str | None = Field(None, description="Hex digest of the original payload.")
    payload_truncated: bool = Field(False, description="Only the head is kept here (see payload_uri).")
    payload_uri: str | None = Field(
        None, description="The whole payload in the object store, when truncated here and the store took it."
    )
    source_topic: str
    source_partition: int
    source_offset: int
    failed_at: AwareDatetime
