"""Object-store access through the official MinIO client (MinIO in production, any S3 in tests)."""

import contextlib
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.error import S3Error

from streams.settings import Settings

_MISSING_CODES = {"NoSuchKey", "NoSuchBucket", "NoSuchObject"}


class MissingObject(LookupError):
    pass


class StoreUnavailable(ConnectionError):
    pass


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> "S3Location":
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
            raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
        return cls(parsed.netloc, parsed.path.lstrip("/"))

    @classmethod
    def prefix(cls, uri: str) -> "S3Location":
        """A folder-like prefix: the key always ends with one slash."""
        return cls.parse(uri.rstrip("/") + "/")

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@contextlib.contextmanager
def _store_errors(uri: str) -> Iterator[None]:
    """S3 and transport errors as the two kinds callers act on: missing, or store down."""
    try:
        yield
    except S3Error as exc:
        if exc.code in _MISSING_CODES:
            raise MissingObject(f"{uri}: {exc.code}") from exc
        raise StoreUnavailable(f"{uri}: {exc.code}: {exc.message}") from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise StoreUnavailable(f"{uri}: {exc}") from exc


class ObjectStore:
    def __init__(self, settings: Settings):
        endpoint = urlparse(settings.store_url)
        # Few retries: a dead store should reach the dead-letter topic quickly, not hang a batch.
        http = urllib3.PoolManager(
            maxsize=max(settings.fetch_concurrency, 4),
            timeout=urllib3.Timeout(connect=3, read=15),
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
        if not self.client.bucket_exists(bucket):
            self.client.make_bucket(bucket)

    def get(self, uri: str) -> bytes:
        location = S3Location.parse(uri)
        with _store_errors(uri):
            response = self.client.get_object(location.bucket, location.key)
        try:
            return response.read()
        finally:
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
        objects = list(self.client.list_objects(location.bucket, prefix=location.key, recursive=True))
        if not objects:
            raise MissingObject(f"nothing under {prefix_uri}")
        for obj in objects:
            name = obj.object_name[len(location.key) :]
            self.client.fget_object(location.bucket, obj.object_name, str(directory / name))
        return directory


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
