"""Images through the station: the browser never talks to the object store, and the bucket stays
private. The station reads only what its records name (a request's image and anomaly map, a
candidate's exemplars), never a URI a browser sends."""

import re
from dataclasses import dataclass
from urllib.parse import urlparse

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error

from latentline.streams.settings import Settings

MAX_BYTES = 32 * 2**20  # a camera image or an overlay; anything larger is not for a browser
TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
_URI = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/([^?#\x00-\x1f]+)")


class ImageMissing(LookupError):
    """No such object (expired from the camera bucket, or never uploaded)."""


class StoreDown(ConnectionError):
    """The object store did not answer."""


@dataclass(frozen=True)
class Image:
    data: bytes
    content_type: str


class ImageStore:
    def __init__(self, settings: Settings):
        endpoint = urlparse(settings.store_url)
        http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=3, read=10),
                                   retries=urllib3.Retry(total=1, backoff_factor=0.2))
        self.client = Minio(endpoint.netloc, access_key=settings.store_access_key.get_secret_value(),
                            secret_key=settings.store_secret_key.get_secret_value(),
                            secure=endpoint.scheme == "https", region=settings.store_region, http_client=http)

    def get(self, uri: str) -> Image:
        match = _URI.fullmatch(uri or "")
        if not match:
            raise ImageMissing(f"not an s3://bucket/key URI: {uri!r}")
        bucket, key = match.groups()
        try:
            response = self.client.get_object(bucket, key)
            try:
                data = response.read(MAX_BYTES + 1)
            finally:
                response.close()
                response.release_conn()
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchBucket"):
                raise ImageMissing(f"{uri}: {exc.code}") from exc
            raise StoreDown(f"{uri}: {exc.code}") from exc
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise StoreDown(f"{uri}: {exc}") from exc
        suffix = "." + key.rsplit(".", 1)[-1].lower() if "." in key else ""
        return Image(data[:MAX_BYTES], TYPES.get(suffix, "application/octet-stream"))
