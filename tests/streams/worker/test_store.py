import time
import uuid
from urllib.parse import urlparse

import pytest

from latentline.streams.lab.embedded import s3_server
from latentline.streams.settings import Settings
from latentline.streams.worker.store import (
    BadLocation,
    MissingObject,
    ObjectStore,
    ObjectTooLarge,
    PolicyViolation,
    S3Location,
    SlowObject,
    StoreUnavailable,
    check_allow_list,
    is_allowed,
)
from tests.streams.faulty_proxy import FaultyProxy

BIG = bytes(range(256)) * 1024  # 256 KiB


@pytest.fixture(scope="module")
def s3_url():
    with s3_server() as url:
        yield url


@pytest.fixture(scope="module")
def store(s3_url):
    store = ObjectStore(Settings(store_url=s3_url))
    store.ensure_bucket("images")
    return store


@pytest.fixture
def proxy(s3_url):
    proxy = FaultyProxy(urlparse(s3_url).port)
    yield proxy
    proxy.close()


@pytest.fixture
def proxied(proxy):
    """A store client that reaches moto only through the proxy (deadline 0.4 s: read timeout 0.2 s)."""
    return ObjectStore(Settings(store_url=proxy.url, fetch_deadline_seconds=0.4))


def put(store, data: bytes) -> str:
    return store.put(f"s3://images/t/{uuid.uuid4()}.bin", data)


def test_s3_location_round_trip():
    location = S3Location.parse("s3://bucket/a/b.png")
    assert (location.bucket, location.key) == ("bucket", "a/b.png")
    assert str(location) == "s3://bucket/a/b.png"
    assert S3Location.prefix("s3://my.bucket-1/models/v1") == S3Location("my.bucket-1", "models/v1/")
    assert S3Location.parse("s3://images/a b/ü..png").key == "a b/ü..png"  # S3 allows these


@pytest.mark.parametrize(
    "uri",
    [
        "http://images/a.png", "S3://images/a.png", "s3:/images/a.png", "s3:images/a.png", "images/a.png",
        " s3://images/a.png", "", "s3://", "s3:///a.png", "s3://images", "s3://images/", "s3://images/   ",
        "s3://Images/a.png", "s3://ab/a.png", "s3://" + "a" * 64 + "/a.png", "s3://-images/a.png",
        "s3://images-/a.png", "s3://im..ages/a.png", "s3://im.-ages/a.png", "s3://192.168.1.1/a.png",
        "s3://xn--images/a.png", "s3://images--ol-s3/a.png", "s3://im_ages/a.png",
        "s3://images/a.png?versionId=1", "s3://images/?x", "s3://images/a.png#top", "s3://images/#",
        "s3://user@images/a.png", "s3://user:pw@images/a.png", "s3://images:9000/a.png",
        "s3://images/../secret.png", "s3://images/a/../../b.png", "s3://images/a/..", "s3://images/./a.png",
        "s3://images//a.png", "s3://images/a//b.png",
        "s3://images/a\nb.png", "s3://images/a\tb.png", "s3://images/a\x00b.png", "s3://images/a\x7fb.png",
        "s3://images/a\x85b.png", "s3://ima\nges/a.png", "s3://images/a.png\r\n",
        "s3://images/" + "k" * 1025,
        None, b"s3://images/a.png",
    ],
)
def test_malformed_locations_are_bad(uri):
    with pytest.raises(BadLocation):
        S3Location.parse(uri)
    assert issubclass(BadLocation, ValueError)  # callers that caught ValueError still do


@pytest.mark.parametrize(
    "entries, uri, allowed",
    [
        ({"images"}, "s3://images/any/thing.png", True),
        ({"images"}, "s3://images-evil/a.png", False),
        ({"images"}, "s3://imagesx/a.png", False),
        ({"images"}, "s3://other/a.png", False),
        ({"images/line-1"}, "s3://images/line-1/a.png", True),
        ({"images/line-1/"}, "s3://images/line-1/deep/a.png", True),
        ({"images/line-1"}, "s3://images/line-10/a.png", False),
        ({"images/line-1"}, "s3://images/line-1../a.png", False),
        ({"images/line-1"}, "s3://images/line-1", False),
        ({"images/line-1"}, "s3://images/a.png", False),
        ({"images/line-1"}, "s3://images-evil/line-1/a.png", False),
        ({"images/a/b"}, "s3://images/a/bc/x.png", False),
        ({"images/line-1", "other"}, "s3://other/a.png", True),
        (set(), "s3://images/a.png", False),
    ],
)
def test_allow_list(entries, uri, allowed):
    assert is_allowed(S3Location.parse(uri), entries) is allowed


@pytest.mark.parametrize("entry", ["s3://images", "Images", "images/../x", "images//x", "im"])
def test_malformed_allow_list_entries_are_refused(entry):
    with pytest.raises(ValueError):
        check_allow_list({"images", entry})


def test_policy_violation_sends_nothing(proxy, proxied):
    allowed = frozenset({"images/line-1"})
    for uri in ("s3://images-evil/line-1/a.png", "s3://images/line-10/a.png", "s3://images/line-1../a.png"):
        with pytest.raises(PolicyViolation):
            proxied.fetch(uri, 1024, 5, allowed)
    assert proxy.requests == []


def test_fetch_within_limits(store, proxy, proxied):
    uri = put(store, BIG)
    assert proxied.fetch(uri, len(BIG), 5, frozenset({"images/t"})) == BIG
    assert proxy.methods() == ["HEAD", "GET"]


def test_oversized_object_is_refused_by_stat(store, proxy, proxied):
    uri = put(store, BIG)
    with pytest.raises(ObjectTooLarge, match="262144 bytes"):
        proxied.fetch(uri, len(BIG) - 1, 5)
    assert proxy.methods() == ["HEAD"]
    assert proxy.body_bytes == 0


def test_body_longer_than_the_limit_is_too_large(store, proxied, monkeypatch):
    uri = put(store, b"small")
    stat = proxied.client.stat_object

    def stat_then_replace(bucket, key, *args, **kwargs):
        result = stat(bucket, key, *args, **kwargs)
        store.put(uri, BIG)  # the object changes between the stat and the download
        return result

    monkeypatch.setattr(proxied.client, "stat_object", stat_then_replace)
    with pytest.raises(ObjectTooLarge, match="more than 4096 bytes arrived"):
        proxied.fetch(uri, 4096, 5)


def test_connection_dropped_mid_body_is_unavailable(store, proxy, proxied):
    uri = put(store, BIG)
    proxy.cut_after = 10_000
    with pytest.raises(StoreUnavailable, match="IncompleteRead"):
        proxied.fetch(uri, len(BIG), 5)
    assert proxy.methods() == ["HEAD", "GET"]
    assert proxy.body_bytes == 10_000
    with pytest.raises(StoreUnavailable, match="IncompleteRead"):  # get (trusted objects) too
        proxied.get(uri)


def test_slow_body_past_the_deadline_is_slow(store, proxy, proxied):
    uri = put(store, BIG)
    proxy.dribble = (1024, 0.05)  # 20 KiB/s: the 256 KiB would take 12.8 s
    started = time.monotonic()
    with pytest.raises(SlowObject):
        proxied.fetch(uri, len(BIG), 0.5)
    assert 0.45 < time.monotonic() - started < 1.0
    assert 0 < proxy.body_bytes < len(BIG)


def test_deadline_holds_while_one_read_would_block_past_it(store, s3_url, proxy):
    """Read timeout 15 s (default deadline), pieces 1 s apart: the deadline still ends it at 0.5 s."""
    uri = put(store, BIG)
    proxy.dribble = (1024, 1.0)
    started = time.monotonic()
    with pytest.raises(SlowObject):
        ObjectStore(Settings(store_url=proxy.url)).fetch(uri, len(BIG), 0.5)
    assert 0.45 < time.monotonic() - started < 0.9


def test_stalled_body_is_unavailable(store, proxy, proxied):
    """No bytes for a whole read timeout (0.2 s) before the deadline: the store stalled, retry."""
    uri = put(store, BIG)
    proxy.dribble = (1024, 3.0)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="Read timed out"):
        proxied.fetch(uri, len(BIG), 2.0)
    assert time.monotonic() - started < 1.0


def test_refused_connection_is_unavailable(store, proxy, proxied):
    uri = put(store, b"data")
    proxy.refuse()
    with pytest.raises(StoreUnavailable, match="Connection refused"):
        proxied.fetch(uri, 1024, 5)


@pytest.mark.parametrize("status, reason", [(403, "AccessDenied"), (503, "too many 503")])
def test_access_denied_and_server_errors_are_unavailable(store, proxy, proxied, status, reason):
    """Expired credentials or a failing store are fixable: transient, never a dead letter."""
    uri = put(store, b"data")
    proxy.status = status
    with pytest.raises(StoreUnavailable, match=reason):
        proxied.fetch(uri, 1024, 5)


def test_missing_object_or_bucket(store, proxied):
    for uri in ("s3://images/t/absent.bin", "s3://no-such-bucket/y.bin"):
        with pytest.raises(MissingObject):
            proxied.fetch(uri, 1024, 5)
        with pytest.raises(MissingObject):
            store.get(uri)


def test_put_and_get(store):
    store.put("s3://images/x/y.bin", b"\x00\x01")
    assert store.get("s3://images/x/y.bin") == b"\x00\x01"
    store.put("s3://images/x/empty.bin", b"")
    assert store.fetch("s3://images/x/empty.bin", 0, 5) == b""


def test_directory_round_trip(store, tmp_path):
    source = tmp_path / "bundle"
    source.mkdir()
    (source / "manifest.json").write_text("{}")
    (source / "scorer.npz").write_bytes(b"arrays")
    store.upload_dir(source, "s3://images/models/v1")
    copy = store.download_dir("s3://images/models/v1", tmp_path / "copy")
    assert sorted(p.name for p in copy.iterdir()) == ["manifest.json", "scorer.npz"]
    assert (copy / "scorer.npz").read_bytes() == b"arrays"


def test_unreachable_store_is_unavailable():
    dead = ObjectStore(Settings(store_url="http://127.0.0.1:9"))
    with pytest.raises(StoreUnavailable):
        dead.get("s3://images/x.png")
    with pytest.raises(StoreUnavailable):
        dead.fetch("s3://images/x.png", 1024, 5)
