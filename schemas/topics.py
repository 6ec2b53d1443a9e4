"""Which record travels on which topic. Names are the defaults; settings may rename them."""

from dataclasses import dataclass

from schemas.base import Record
from schemas.camera_event import CameraEvent
from schemas.dead_letter import DeadLetter
from schemas.verdict import Verdict


@dataclass(frozen=True)
class Topic:
    name: str
    record: type[Record]
    key: str
    description: str


TOPICS = (
    Topic("camera.events", CameraEvent, "camera_id", "One event per captured image (input)."),
    Topic("inspection.verdicts", Verdict, "camera_id", "One verdict per valid event."),
    Topic("camera.events.dlq", DeadLetter, "camera_id or none", "Bad input with its reason."),
)
