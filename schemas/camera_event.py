"""camera.events: one event per captured image. The image itself lives in the object store."""

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from latentline.schemas.base import Identifier, Record

S3Uri = Annotated[str, StringConstraints(pattern=r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]/.+$")]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
MetadataValue = str | int | float | bool


class CameraEvent(Record):
    schema_version: Literal[1] = 1
    event_id: Identifier = Field(description="Unique per image; redeliveries keep it.")
    camera_id: Identifier = Field(description="Also the Kafka message key.")
    line_id: Identifier
    captured_at: AwareDatetime = Field(description="When the camera took the image (ISO 8601 with zone).")
    image_uri: S3Uri = Field(description="s3://bucket/key of the encoded image (PNG or JPEG).")
    part_id: Identifier | None = None
    sha256: Sha256 | None = Field(
        default=None, description="Hex digest of the image bytes; verified when present."
    )
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)
