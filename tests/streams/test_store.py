import pytest

from streams.embedded import s3_server
from streams.settings import Settings
from streams.store import MissingObject, ObjectStore, S3Location, StoreUnavailable


@pytest.fixture(scope="module")
def store():
    with s3_server() as url:
        store = ObjectStore(Settings(store_url=url))
        store.ensure_bucket("images")
        yield store


def test_s3_location_round_trip():
    location = S3Location.parse("s3://bucket/a/b.png")
    assert (location.bucket, location.key) == ("bucket", "a/b.png")
    assert str(location) == "s3://bucket/a/b.png"
    with pytest.raises(ValueError):
        S3Location.parse("http://bucket/a.png")


def test_put_get_and_missing(store):
    store.put("s3://images/x/y.bin", b"\x00\x01")
    assert store.get("s3://images/x/y.bin") == b"\x00\x01"
    with pytest.raises(MissingObject):
        store.get("s3://images/x/absent.bin")
    with pytest.raises(MissingObject):
        store.get("s3://no-such-bucket/y.bin")


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
