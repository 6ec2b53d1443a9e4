"""Object-store access through the official MinIO client (MinIO in production, any S3 in tests).

Camera images come from events, i.e. from outside: ``ObjectStore.fetch`` checks the URI, the
allow-list, the size and the time a download takes, and reports every failure as one of the
exceptions below. Each says in its docstring what the worker does about it: retry (transient) or
dead-letter the event (permanent).
"""

import contextlib
import functools
import hashlib
import http.client
import io
import math
import re
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.error import MinioException, S3Error

from latentline.streams.settings import Settings

_MISSING_CODES = {"NoSuchKey", "NoSuchBucket", "NoSuchObject"}
# Small enough that the deadline and the size limit are checked often, large enough to be cheap.
_CHUNK_BYTES = 64 * 1024


class MissingObject(LookupError):
    """Permanent: no such object or bucket. The worker dead-letters the event (missing_object)."""


class StoreUnavailable(ConnectionError):
    """Transient: the store is down, refuses, fails (5xx, access denied: credentials can be fixed),
    times out before answering, or drops the connection mid-download. The worker retries the event
    until this clears; it never dead-letters it for this."""


class BadLocation(ValueError):
    """Permanent: not a valid ``s3://bucket/key`` (wrong scheme, empty or invalid bucket, empty key,
    query, fragment, userinfo or port, ``.``/``..`` or empty segments, control characters). The
    worker dead-letters the event (invalid_uri)."""


class PolicyViolation(Exception):
    """Permanent: a valid location outside the allow-list. The worker dead-letters the event
    (policy_violation); nothing was sent to the store."""


class ObjectTooLarge(Exception):
    """Permanent: the object's size (by stat, or by the bytes that arrived) is over the limit. The
    worker dead-letters the event (image_too_large); at most limit + 1 bytes were read."""


class SlowObject(Exception):
    """Permanent: bytes were flowing, but the whole download ran past its deadline. The worker
    dead-letters the event (slow_object) instead of letting one object hold a fetch thread."""


# S3 bucket naming rules (docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IPV4 = re.compile(r"\d+\.\d+\.\d+\.\d+")
_RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
# C0, DEL and C1: urlparse silently drops some of them, logs and proxies mangle the rest.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MAX_KEY_BYTES = 1024


def _bucket_problem(bucket: str) -> str | None:
    if not _BUCKET.fullmatch(bucket):
        return "3-63 lower-case letters, digits, dots and hyphens, starting and ending alphanumeric"
    if any(pair in bucket for pair in ("..", ".-", "-.")):
        return "no '..', '.-' or '-.'"
    if _IPV4.fullmatch(bucket):
        return "not an IP address"
    if bucket.startswith(_RESERVED_BUCKET_PREFIXES) or bucket.endswith(_RESERVED_BUCKET_SUFFIXES):
        return "a reserved prefix or suffix"
    return None


def _key_problem(key: str) -> str | None:
    if not key.strip():
        return "empty key"
    if "?" in key or "#" in key:
        return "a query or fragment"
    if len(key.encode()) > _MAX_KEY_BYTES:
        return f"a key over {_MAX_KEY_BYTES} bytes"
    # A trailing slash stays legal (folder prefixes); empty, '.' and '..' segments elsewhere are
    # what path normalisation in a proxy or gateway would turn into a different object.
    segments = key.split("/")
    if segments[-1] == "":
        segments.pop()
    if any(segment in ("", ".", "..") for segment in segments):
        return "an empty, '.' or '..' segment"
    return None


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> "S3Location":
        """``s3://bucket/key`` exactly; anything else raises BadLocation (never urlparse's guesses)."""
        if not isinstance(uri, str) or not uri.startswith("s3://"):
            raise BadLocation(f"not an s3://bucket/key URI: {uri!r}")
        if _CONTROL.search(uri):
            raise BadLocation(f"control characters in {uri!r}")
        bucket, slash, key = uri[len("s3://") :].partition("/")
        if not slash:
            raise BadLocation(f"no key in {uri!r}")
        # '@' (userinfo) and ':' (port) fail the bucket rules too.
        if problem := _bucket_problem(bucket):
            raise BadLocation(f"invalid bucket {bucket!r} in {uri!r}: {problem}")
        if problem := _key_problem(key):
            raise BadLocation(f"invalid key in {uri!r}: {problem}")
        return cls(bucket, key)

    @classmethod
    def prefix(cls, uri: str) -> "S3Location":
        """A folder-like prefix: the key always ends with one slash."""
        return cls.parse(uri.rstrip("/") + "/")

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@functools.lru_cache(maxsize=256)  # the same few entries, for every fetch
def _allow_entry(entry: str) -> tuple[str, str]:
    """``bucket`` or ``bucket/prefix`` -> (bucket, key prefix ending in '/', or '' for all)."""
    bucket, _, prefix = entry.partition("/")
    prefix = prefix.rstrip("/")
    if _bucket_problem(bucket) or (prefix and _key_problem(prefix)):
        raise ValueError(f"invalid allow-list entry {entry!r}: expected bucket or bucket/prefix")
    return bucket, f"{prefix}/" if prefix else ""


def check_allow_list(entries: Iterable[str]) -> None:
    """ValueError for a malformed entry: call at start-up, so a typo stops the worker instead of
    dead-lettering every event as a policy violation."""
    for entry in entries:
        _allow_entry(entry)


def is_allowed(location: S3Location, allowed: Iterable[str]) -> bool:
    """Whole buckets, or keys under a prefix at a '/' boundary ("images/line-1" admits
    "line-1/a.png", not "line-10/a.png" nor "line-1../a.png"); bucket names compare exactly."""
    for bucket, prefix in map(_allow_entry, allowed):
        if location.bucket == bucket and location.key.startswith(prefix):
            return True
    return False


# Transport failures as urllib3, http.client and the socket raise them (timeouts are OSErrors).
_TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)


@contextlib.contextmanager
def _store_errors(uri: str) -> Iterator[None]:
    """S3 and transport errors as the two kinds callers act on: missing, or store down."""
    try:
        yield
    except StoreUnavailable:
        raise  # already ours (a ConnectionError, which the OSError case below would wrap again)
    except S3Error as exc:
        if exc.code in _MISSING_CODES:
            raise MissingObject(f"{uri}: {exc.code}") from exc
        raise StoreUnavailable(f"{uri}: {exc.code}: {exc.message}") from exc
    except MinioException as exc:  # a 5xx, or an answer that is no S3 (a proxy's error page)
        raise StoreUnavailable(f"{uri}: {exc}") from exc
    except _TRANSPORT_ERRORS as exc:
        raise StoreUnavailable(f"{uri}: {exc!r}") from exc


class _Watchdog:
    """Interrupts a read still blocked at the deadline: the socket's timeout is per read, so a
    store that sends a byte now and then would otherwise hold the thread indefinitely.
    ``HTTPResponse.shutdown`` (urllib3 >= 2.3) exists for exactly this, from another thread."""

    def __init__(self, response: urllib3.BaseHTTPResponse, deadline: float):
        self.deadline = deadline
        self.fired = threading.Event()
        self._timer = threading.Timer(max(deadline - time.monotonic(), 0), self._fire, (response,))
        self._timer.daemon = True

    def _fire(self, response: urllib3.BaseHTTPResponse) -> None:
        self.fired.set()
        with contextlib.suppress(Exception):  # already finished and closed: nothing to interrupt
            response.shutdown()

    def expired(self) -> bool:
        return self.fired.is_set() or time.monotonic() >= self.deadline

    def __enter__(self) -> "_Watchdog":
        if math.isfinite(self.deadline):
            self._timer.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._timer.cancel()


def _past_deadline(uri: str, received: int) -> Exception:
    if received:
        return SlowObject(f"{uri}: still downloading at the deadline ({received} bytes so far)")
    return StoreUnavailable(f"{uri}: no body bytes before the deadline")


def _read_body(response: urllib3.BaseHTTPResponse, uri: str, max_bytes: int, deadline: float) -> bytes:
    """At most max_bytes + 1 bytes (enough to tell "too large"), within the deadline."""
    chunks: list[bytes] = []
    received = 0
    with _Watchdog(response, deadline) as watchdog:
        while True:
            try:
                # read1, not read/stream: those wait for a whole chunk, however slowly it comes.
                chunk = response.read1(min(_CHUNK_BYTES, max_bytes + 1 - received))
            except _TRANSPORT_ERRORS as exc:
                if watchdog.expired():
                    raise _past_deadline(uri, received) from exc
                raise  # a drop, or silence for a whole read timeout: StoreUnavailable
            if not chunk:
                if watchdog.fired.is_set():  # the interrupt, not the end of the body
                    raise _past_deadline(uri, received)
                return b"".join(chunks)
            received += len(chunk)
            if received > max_bytes:
                raise ObjectTooLarge(f"{uri}: more than {max_bytes} bytes arrived")
            if watchdog.expired():
                raise _past_deadline(uri, received)
            chunks.append(chunk)


class ObjectStore:
    def __init__(self, settings: Settings):
        endpoint = urlparse(settings.store_url)
        # Connect: a few seconds, a live store on the network answers a SYN in milliseconds. Read
        # (per socket read, so a long download is fine): well below the fetch deadline, so a store
        # that stalls is StoreUnavailable (retried) before the deadline would call it SlowObject,
        # and it alone bounds the stat and the wait for an answer, which the deadline cannot cut.
        # Few retries: a dead store should surface quickly to the worker's own retry, not hang a batch.
        http = urllib3.PoolManager(
            maxsize=max(settings.fetch_concurrency, 4),
            timeout=urllib3.Timeout(connect=3, read=min(15.0, settings.fetch_deadline_seconds / 2)),
            retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)),
        )
        self.client = Minio(
            endpoint.netloc,
            access_key=settings.store_access_key.get_secret_value(),
            secret_key=settings.store_secret_key.get_secret_value(),
            secure=endpoint.scheme == "https",
            region=settings.store_region,
            http_client=http,
        )

    def ensure_bucket(self, bucket: str) -> None:
        with _store_errors(f"s3://{bucket}"):
            if not self.client.bucket_exists(bucket):
                self.client.make_bucket(bucket)

    def fetch(
        self, uri: str, max_bytes: int, deadline_seconds: float, allowed: frozenset[str] = frozenset()
    ) -> bytes:
        """An untrusted object (a camera image named by an event), checked in order: BadLocation,
        PolicyViolation (``allowed`` entries are "bucket" or "bucket/prefix"; empty means no check,
        so callers pass ``Settings.image_locations()``), then stat: MissingObject, ObjectTooLarge,
        then the body: ObjectTooLarge, SlowObject. StoreUnavailable for any store or transport
        fault. The deadline runs from the call; the body read is cut at it, while the stat and the
        wait for the answer are bounded by the client's timeouts and retries instead."""
        location = S3Location.parse(uri)
        if allowed and not is_allowed(location, allowed):
            raise PolicyViolation(f"{uri}: outside the allowed locations {sorted(allowed)}")
        deadline = time.monotonic() + deadline_seconds
        with _store_errors(uri):
            size = self.client.stat_object(location.bucket, location.key).size
        if size is not None and size > max_bytes:
            raise ObjectTooLarge(f"{uri}: {size} bytes, the limit is {max_bytes}")
        if time.monotonic() >= deadline:  # a store this slow to answer is unwell, not the object
            raise StoreUnavailable(f"{uri}: the stat alone took the whole deadline")
        return self._download(location, uri, max_bytes, deadline)

    def get(self, uri: str) -> bytes:
        """A trusted object (latents, evidence): no size, deadline or allow-list checks, but the
        same errors (BadLocation, MissingObject, StoreUnavailable) as ``fetch``."""
        return self._download(S3Location.parse(uri), uri, sys.maxsize, math.inf)

    def _download(self, location: S3Location, uri: str, max_bytes: int, deadline: float) -> bytes:
        with _store_errors(uri):
            response = self.client.get_object(location.bucket, location.key)
        try:
            with _store_errors(uri):
                return _read_body(response, uri, max_bytes, deadline)
        finally:
            # close() drops the connection: a half-read body must never go back to the pool.
            with contextlib.suppress(OSError, urllib3.exceptions.HTTPError):
                response.close()
                response.release_conn()

    def put(self, uri: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        location = S3Location.parse(uri)
        self.client.put_object(
            location.bucket, location.key, io.BytesIO(data), len(data), content_type=content_type
        )
        return uri

    def copy(self, source_uri: str, target_uri: str) -> str:
        """Server-side copy (evidence outlives the camera images' retention)."""
        source, target = S3Location.parse(source_uri), S3Location.parse(target_uri)
        with _store_errors(source_uri):
            self.client.copy_object(target.bucket, target.key, CopySource(source.bucket, source.key))
        return target_uri

    def list(self, prefix_uri: str) -> dict[str, str]:
        """uri -> etag of every object under ``prefix_uri``."""
        location = S3Location.prefix(prefix_uri)
        with _store_errors(prefix_uri):
            objects = self.client.list_objects(location.bucket, prefix=location.key, recursive=True)
            return {f"s3://{location.bucket}/{o.object_name}": o.etag for o in objects}

    def upload_dir(self, directory: Path, prefix_uri: str) -> str:
        """Files of ``directory`` under ``prefix_uri`` (bucket created if missing); a bundle's
        manifest is written last, so a reader never sees a manifest without its arrays."""
        self.ensure_bucket(S3Location.prefix(prefix_uri).bucket)
        files = sorted(Path(directory).iterdir(), key=lambda p: p.name == "manifest.json")
        for path in files:
            if path.is_file():
                self.put(f"{prefix_uri.rstrip('/')}/{path.name}", path.read_bytes())
        return prefix_uri

    def download_dir(self, prefix_uri: str, directory: Path) -> Path:
        location = S3Location.prefix(prefix_uri)
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with _store_errors(prefix_uri):
            objects = list(self.client.list_objects(location.bucket, prefix=location.key, recursive=True))
            if not objects:
                raise MissingObject(f"nothing under {prefix_uri}")
            for obj in objects:
                name = obj.object_name[len(location.key) :]
                self.client.fget_object(location.bucket, obj.object_name, str(directory / name))
        return directory


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
