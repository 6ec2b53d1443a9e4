"""Dead letters: a permanent input error becomes one bounded record on the dead-letter topic.

Bounded because a dead letter carries the original payload: an event with a 5 MB ``metadata``
field once produced a letter larger than the broker accepts, the send failed and the whole
partition stopped. Above ``dead_letter_max_payload_bytes`` only the head travels, with the whole
payload's size and sha256, and the whole payload is kept in the evidence bucket (best effort)
so that ``latentline redrive`` can still re-publish it.
"""

import asyncio
import base64
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from latentline.schemas import CameraEvent, DeadLetter, ErrorKind
from latentline.streams.settings import Settings
from latentline.streams.worker.metrics import WorkerMetrics
from latentline.streams.worker.ports import Publisher
from latentline.streams.worker.store import sha256_hex

log = logging.getLogger(__name__)


@dataclass
class Incoming:
    """A consumed message; ``handle`` is the framework's event (for table writes)."""

    value: bytes | None  # None: a tombstone
    topic: str
    partition: int
    offset: int
    handle: Any = None


class Rejected(Exception):
    """A permanent reason why one event cannot be inspected."""

    def __init__(self, kind: ErrorKind, message: str):
        super().__init__(message)
        self.kind = kind


def rejection(exc: ValidationError) -> Rejected:
    """A payload that failed validation: not JSON at all, or JSON breaking the contract."""
    kind = ErrorKind.INVALID_JSON if _is_json_error(exc) else ErrorKind.SCHEMA_VIOLATION
    return Rejected(kind, _summary(exc))


def parse_event(incoming: Incoming) -> CameraEvent:
    """The event of a message, or Rejected: tombstones and empty values included."""
    if not incoming.value:
        raise Rejected(ErrorKind.EMPTY_MESSAGE, "empty message (a tombstone or zero bytes)")
    try:
        return CameraEvent.from_bytes(incoming.value)
    except ValidationError as exc:
        raise rejection(exc) from None


class DeadLetterWriter:
    """Counts, logs and publishes dead letters; ``store`` keeps oversized payloads whole."""

    def __init__(self, publisher: Publisher, settings: Settings, metrics: WorkerMetrics, store=None):
        self.publisher, self.settings, self.metrics, self.store = publisher, settings, metrics, store

    async def send(self, incoming: Incoming, error: Rejected, event: CameraEvent | None = None) -> Any:
        self.metrics.dead_letters.labels(error.kind.value).inc()
        log.warning("dead letter %s at %s[%d]@%d: %s", error.kind, incoming.topic,
                    incoming.partition, incoming.offset, error)
        payload = incoming.value or b""
        letter = DeadLetter(
            error_kind=error.kind,
            error_message=str(error)[:4096],
            event_id=event.event_id if event else None,
            camera_id=event.camera_id if event else None,
            source_topic=incoming.topic,
            source_partition=incoming.partition,
            source_offset=incoming.offset,
            failed_at=datetime.now(UTC),
            **await self._payload_fields(payload),
        )
        key = event.camera_id if event else None
        return await self.publisher.send(self.settings.dlq_topic, key, letter.to_bytes())

    async def _payload_fields(self, payload: bytes) -> dict:
        limit = self.settings.dead_letter_max_payload_bytes
        digest = sha256_hex(payload)
        fields = {"payload_size": len(payload), "payload_sha256": digest}
        if len(payload) <= limit:
            return fields | {"payload": _as_text(payload), "payload_base64": _b64(payload)}
        uri = await self._keep_whole(payload, digest)
        return fields | {"payload": None, "payload_base64": _b64(payload[:limit]),
                         "payload_truncated": True, "payload_uri": uri}

    async def _keep_whole(self, payload: bytes, digest: str) -> str | None:
        if self.store is None:
            return None
        uri = f"s3://{self.settings.evidence_bucket}/dead-letters/{digest}.bin"
        try:
            await asyncio.to_thread(self.store.put, uri, payload)
        except Exception as exc:  # the store is down: the letter goes out truncated, unlinked
            log.warning("oversized dead-letter payload not stored: %s", exc)
            return None
        return uri


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _as_text(value: bytes) -> str | None:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _is_json_error(exc: ValidationError) -> bool:
    return any(error["type"] == "json_invalid" for error in exc.errors())


def _summary(exc: ValidationError) -> str:
    parts = [
        f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}" for e in exc.errors()[:5]
    ]
    return "; ".join(parts)
