"""Which record travels on which topic. Names are the defaults; settings may rename them."""

from dataclasses import dataclass

from latentline.schemas.alert import Alert
from latentline.schemas.base import Record
from latentline.schemas.camera_event import CameraEvent
from latentline.schemas.dead_letter import DeadLetter
from latentline.schemas.label import Label
from latentline.schemas.review import ReviewRequest
from latentline.schemas.sighting import NoveltyInput
from latentline.schemas.verdict import Verdict


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
    Topic("inspection.alerts", Alert, "line_id", "Drift and new-defect-type candidates, open and closed."),
    Topic("inspection.review", ReviewRequest, "camera_id", "Events an operator should look at, with why."),
    Topic("inspection.labels", Label, "event_id", "Operators' labels for events (input)."),
    Topic("latentline.novelty", NoveltyInput, "none (one partition)", "Internal: the novelty agent's input."),
)
