"""The camera-side client: upload an image, then publish its ``CameraEvent``, synchronously.

For camera software (and ``latentline publish``): it imports only the contracts (schemas/),
kafka-python and the MinIO client, never the worker, Faust, aiokafka, torch or models/
(tests/test_layers.py proves it). One client per camera PC; it is thread-safe and may be shared.

    with CameraClient.from_settings(Settings()) as client:
        event = client.publish(Path("part-0042.png"), camera_id="cam-1", part_id="0042")

Decisions:

- **Order**: the image is uploaded first, then the event is sent, so a worker never reads an event
  whose image is not there yet. Events are keyed by ``camera_id``: one camera's events land on one
  partition, in publish order, also when a send is retried (one request in flight per broker).
- **Waiting**: ``publish(wait=True)`` (the default) returns only once the broker has acknowledged
  the event (``acks="all"``), so camera software knows a part is in the pipeline. ``wait=False``
  queues the event and returns at once (faster for bulk uploads); a failed send is then raised by
  the next ``flush()`` or ``close()``, never dropped in silence.
- **Retries**: transient broker errors are retried (``retries``) within ``delivery_timeout``; the
  producer is not idempotent (Tansu has no idempotent producer), so a retry can write an event
  twice: the worker answers each ``event_id`` once (docs/delivery.md).
- **Timeouts**: nothing waits forever. ``connect_timeout`` bounds connecting to the broker and
  waiting for a topic's metadata, ``delivery_timeout`` the wait for an acknowledgement.
- **Objects** are named ``s3://<bucket>/<camera_id>/<YYYY-MM-DD>/<event_id>.<ext>`` (the UTC date
  of ``captured_at``; :func:`object_key`), so retention and clean-up can work per camera and day.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import urllib3
from kafka import KafkaProducer
from kafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from minio import Minio
from minio.error import MinioException

from latentline.schemas import CameraEvent

if TYPE_CHECKING:  # for the annotation only: the client never loads the settings (nor models/)
    from latentline.streams.settings import Settings

log = logging.getLogger(__name__)

CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
_SUFFIXES = {"image/png": ".png", "image/jpeg": ".jpg"}
_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}


class PublishError(Exception):
    """An image or its event did not reach its destination; the message says which and why."""


class UploadError(PublishError):
    """The object store refused the image or could not be reached; no event was sent."""


class BrokerUnavailable(PublishError, ConnectionError):
    """No Kafka broker answered within ``connect_timeout``; nothing was uploaded or sent."""


class SendError(PublishError):
    """The broker did not acknowledge an event within ``delivery_timeout`` (after retries), or
    refused it. Its image is in the store: ``events`` holds the events, which ``send`` may send
    again (the same ``event_id``: the worker answers it once)."""

    def __init__(self, message: str, events: list[CameraEvent]):
        super().__init__(message)
        self.events = events


@dataclass(frozen=True)
class KafkaSecurity:
    """TLS and SASL, as the LATENTLINE_KAFKA_* settings name them (streams/settings.py)."""

    protocol: str = "PLAINTEXT"  # PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL
    sasl_mechanism: str = "PLAIN"  # PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
    sasl_username: str = ""
    sasl_password: str = ""
    ssl_cafile: str | None = None  # CA bundle that signs the brokers' certificates

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaSecurity:
        """The LATENTLINE_KAFKA_* settings (any object with those attributes)."""
        return cls(
            protocol=settings.kafka_security_protocol,
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_username=settings.kafka_sasl_username,
            sasl_password=settings.kafka_sasl_password.get_secret_value(),
            ssl_cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None,
        )

    def kafka_python_options(self) -> dict:
        options: dict = {"security_protocol": self.protocol}
        if "SSL" in self.protocol and self.ssl_cafile:
            options["ssl_cafile"] = self.ssl_cafile
        if self.protocol.startswith("SASL"):
            options |= {"sasl_mechanism": self.sasl_mechanism, "sasl_plain_username": self.sasl_username,
                        "sasl_plain_password": self.sasl_password}
        return options


def object_key(camera_id: str, captured_at: datetime, event_id: str, suffix: str) -> str:
    """``<camera_id>/<YYYY-MM-DD>/<event_id><suffix>``, the date of ``captured_at`` in UTC."""
    return f"{camera_id}/{captured_at.astimezone(UTC).date().isoformat()}/{event_id}{suffix.lower()}"


def new_event(bucket: str, data: bytes, suffix: str, camera_id: str, line_id: str,
              part_id: str | None = None, captured_at: datetime | None = None,
              metadata: Mapping | None = None) -> CameraEvent:
    """The event of one image: a fresh id, its object's name in ``bucket`` and its sha256."""
    event_id = str(uuid.uuid4())
    captured_at = captured_at or datetime.now(UTC)
    return CameraEvent(
        event_id=event_id,
        camera_id=camera_id,
        line_id=line_id,
        captured_at=captured_at,
        image_uri=f"s3://{bucket}/{object_key(camera_id, captured_at, event_id, suffix)}",
        part_id=part_id,
        sha256=hashlib.sha256(data).hexdigest(),
        metadata=dict(metadata or {}),
    )


def content_type_of(data: bytes, name: str | None = None) -> str:
    """By the file name's suffix, else by the bytes' signature (PNG, JPEG), else octet-stream."""
    if name and (known := CONTENT_TYPES.get(Path(name).suffix.lower())):
        return known
    return next((kind for magic, kind in _SIGNATURES.items() if data.startswith(magic)),
                "application/octet-stream")


def _describe(exc: BaseException) -> str:
    """kafka-python's errors name their class already."""
    return str(exc) if isinstance(exc, KafkaError) else f"{type(exc).__name__}: {exc}"


class CameraClient:
    """Publishes a camera's images: each one uploaded to the object store, then its
    ``CameraEvent`` sent to the events topic keyed by camera. Use as a context manager, or call
    ``close()``: it flushes what is queued and raises what failed."""

    def __init__(
        self,
        bootstrap_servers: str | list[str],
        *,
        store_url: str,
        store_access_key: str,
        store_secret_key: str,
        topic: str = "camera.events",
        bucket: str = "camera-images",
        store_region: str = "us-east-1",
        line_id: str = "line-1",
        security: KafkaSecurity = KafkaSecurity(),
        connect_timeout: float = 10.0,
        delivery_timeout: float = 30.0,
        retries: int = 10,
    ):
        """``bootstrap_servers``: ``host:port`` entries (a list or comma-separated); ``store_url``:
        the S3 endpoint, ``http://`` or ``https://``; ``line_id``: the line of this camera, unless a
        publish names another (drift and new-type alerts are per line). The broker is connected
        on the first publish (or ``connect()``), so a camera may start before it."""
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.bucket = bucket
        self.line_id = line_id
        self.security = security
        self.connect_timeout = connect_timeout
        self.delivery_timeout = delivery_timeout
        self.retries = retries
        endpoint = urlparse(store_url)
        if endpoint.scheme not in ("http", "https") or not endpoint.netloc:
            raise ValueError(f"store_url must be http(s)://host[:port], not {store_url!r}")
        # Short timeouts and few retries: a dead store surfaces as UploadError within seconds.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=3, read=15),
            retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)),
        )
        self.store = Minio(endpoint.netloc, access_key=store_access_key, secret_key=store_secret_key,
                           secure=endpoint.scheme == "https", region=store_region, http_client=http)
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()
        self._failed: list[tuple[CameraEvent, BaseException]] = []  # sends of wait=False that failed
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> CameraClient:
        """The broker, topic, store, bucket and Kafka security of the LATENTLINE_* settings."""
        security = KafkaSecurity.from_settings(settings)
        config = dict(
            bootstrap_servers=settings.bootstrap_servers(), topic=settings.events_topic,
            store_url=settings.store_url, store_access_key=settings.store_access_key.get_secret_value(),
            store_secret_key=settings.store_secret_key.get_secret_value(), store_region=settings.store_region,
            bucket=settings.image_bucket, security=security,
        )
        return cls(**config | overrides)

    # -- publishing ---------------------------------------------------------------------------

    def publish(
        self,
        image: bytes | Path | str,
        camera_id: str,
        part_id: str | None = None,
        line_id: str | None = None,
        captured_at: datetime | None = None,
        metadata: Mapping[str, str | int | float | bool] | None = None,
        content_type: str | None = None,
        wait: bool = True,
    ) -> CameraEvent:
        """Upload ``image`` (its bytes, or a file's path) and send its event; returns the event.

        ``captured_at``: when the camera took the image, with a time zone (default: now, UTC).
        ``content_type``: default from the file's suffix or the bytes' signature (PNG, JPEG).
        ``wait``: return only once the broker has acknowledged the event (the default); with
        False, failures come from ``flush()`` or ``close()``.

        Raises ``pydantic.ValidationError`` for an invalid id, time or metadata (before anything
        is uploaded), ``BrokerUnavailable`` (nothing uploaded), ``UploadError`` (nothing sent),
        ``SendError`` (the image is stored, the event not acknowledged), ``OSError`` for an
        unreadable file."""
        name = None
        if isinstance(image, Path | str):
            name, image = str(image), Path(image).read_bytes()
        content_type = content_type or content_type_of(image, name)
        suffix = _SUFFIXES.get(content_type) or (Path(name).suffix.lower() if name else "")
        # Validated in full before anything is uploaded: a typo in an id costs no orphan object.
        event = new_event(self.bucket, image, suffix, camera_id, line_id or self.line_id, part_id,
                          captured_at, metadata)
        self.connect()  # a broker that is down is found before the upload, not after
        self._upload(event, image, content_type)
        return self.send(event, wait=wait)

    def send(self, event: CameraEvent, wait: bool = True) -> CameraEvent:
        """Send an event whose image is already in the store (or again, after a ``SendError``)."""
        producer = self.connect()
        try:
            future = producer.send(self.topic, event.to_bytes(), key=event.camera_id.encode())
        except KafkaTimeoutError as exc:
            raise SendError(f"no metadata for topic {self.topic!r} within {self.connect_timeout:g} s "
                            f"(is the broker reachable, does the topic exist?): {exc}", [event]) from exc
        except KafkaError as exc:
            raise SendError(f"event {event.event_id} not sent to {self.topic!r}: {exc}", [event]) from exc
        if not wait:
            future.add_errback(lambda exc: self._failed.append((event, exc)))
            return event
        try:
            future.get(timeout=self.delivery_timeout + 5)  # the producer's own expiry comes first
        except Exception as exc:  # whatever failed the record (a KafkaError, as a rule)
            raise SendError(f"event {event.event_id} not acknowledged by the broker on {self.topic!r}: "
                            f"{_describe(exc)}", [event]) from exc
        return event

    def ensure_bucket(self) -> None:
        """Create the image bucket when missing (needs the right to; cameras usually lack it)."""
        try:
            if not self.store.bucket_exists(self.bucket):
                self.store.make_bucket(self.bucket)
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise UploadError(f"cannot check or create bucket {self.bucket!r}: {exc}") from exc

    def _upload(self, event: CameraEvent, data: bytes, content_type: str) -> None:
        key = event.image_uri.removeprefix(f"s3://{self.bucket}/")
        try:
            self.store.put_object(self.bucket, key, io.BytesIO(data), len(data), content_type=content_type)
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise UploadError(f"{event.image_uri} not uploaded, no event sent: {exc}") from exc

    # -- the connection -----------------------------------------------------------------------

    def connect(self) -> KafkaProducer:
        """The producer, connected on first use (call at start-up to find a dead broker early)."""
        with self._lock:
            if self._closed:
                raise PublishError("the camera client is closed")
            if self._producer is None:
                self._producer = self._new_producer()
            return self._producer

    def _new_producer(self) -> KafkaProducer:
        delivery_ms = int(self.delivery_timeout * 1000)
        connect_ms = int(self.connect_timeout * 1000)
        try:
            return KafkaProducer(
                bootstrap_servers=self.bootstrap_servers,
                acks="all",
                retries=self.retries,
                # Not idempotent (Tansu has no idempotent producer): one request in flight per
                # broker is what keeps a camera's events in order when a send is retried.
                enable_idempotence=False,
                max_in_flight_requests_per_connection=1,
                delivery_timeout_ms=delivery_ms,
                request_timeout_ms=min(30_000, delivery_ms),
                bootstrap_timeout_ms=connect_ms,
                max_block_ms=connect_ms,
                **self.security.kafka_python_options(),
            )
        except (KafkaTimeoutError, KafkaConnectionError) as exc:
            raise BrokerUnavailable(f"no Kafka broker at {self.bootstrap_servers} answered within "
                                    f"{self.connect_timeout:g} s: {exc}") from exc
        except KafkaError as exc:  # authentication, TLS, an unsupported broker
            raise PublishError(f"cannot connect to Kafka at {self.bootstrap_servers}: {exc}") from exc

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every queued event is acknowledged or has failed; ``SendError`` names the
        events that failed (default timeout: ``delivery_timeout`` and a margin)."""
        if self._producer is not None:
            try:
                self._producer.flush(timeout=self.delivery_timeout + 5 if timeout is None else timeout)
            except KafkaTimeoutError as exc:
                raise SendError(f"events still unacknowledged after the flush timeout: {exc}", []) from exc
        failed = []
        while self._failed:  # appended by the producer's thread: take them one by one
            failed.append(self._failed.pop(0))
        if failed:
            event, exc = failed[0]
            raise SendError(f"{len(failed)} event(s) not acknowledged by the broker on {self.topic!r}, the "
                            f"first {event.event_id}: {_describe(exc)}", [e for e, _ in failed])

    def close(self) -> None:
        """Flush, then close the connection (also when the flush raises, which it passes on)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self.flush()
        finally:
            if self._producer is not None:
                self._producer.close(timeout=self.delivery_timeout)
                self._producer = None

    def __enter__(self) -> CameraClient:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # an error is on its way out already: report a failed flush, do not replace it
            self.close()
        except PublishError as failure:
            log.error("closing the camera client: %s", failure)
