"""The event contracts: one typed record per topic. No logic beyond validation.

JSON on the wire, every record carries ``schema_version``. JSON Schema files for
producers and consumers in other languages are generated into ``schemas/json/``.
"""

from latentline.schemas.alert import Alert, AlertKind, AlertStatus, DriftDetails, NoveltyDetails
from latentline.schemas.base import Record
from latentline.schemas.camera_event import CameraEvent
from latentline.schemas.dead_letter import DeadLetter, ErrorKind
from latentline.schemas.label import Label
from latentline.schemas.review import ReviewReason, ReviewRequest
from latentline.schemas.sighting import NoveltyInput, Sighting
from latentline.schemas.topics import TOPICS, Topic
from latentline.schemas.verdict import (
    Classification,
    Decision,
    Measurement,
    StageTimings,
    TypeStatus,
    Verdict,
)

__all__ = [
    "Alert",
    "AlertKind",
    "AlertStatus",
    "DriftDetails",
    "Label",
    "NoveltyDetails",
    "NoveltyInput",
    "Sighting",
    "CameraEvent",
    "Classification",
    "Measurement",
    "DeadLetter",
    "Decision",
    "ErrorKind",
    "Record",
    "ReviewReason",
    "ReviewRequest",
    "StageTimings",
    "TOPICS",
    "Topic",
    "TypeStatus",
    "Verdict",
]
