"""The camera-side client's parts that need no broker or store (the round trip with both:
tests/integration/test_camera_client.py)."""

import time
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from latentline.streams.client import CameraClient, KafkaSecurity, content_type_of, object_key
from latentline.streams.lab.embedded import free_port
from latentline.streams.settings import Settings

PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)
JPEG = b"\xff\xd8\xff\xe0" + bytes(16)


def test_objects_are_named_by_camera_utc_day_and_event():
    taken = datetime(2025, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))  # 28 Feb in UTC
    assert object_key("cam-1", taken, "e-1", ".PNG") == "cam-1/2025-02-28/e-1.png"


def test_the_content_type_comes_from_the_name_else_the_signature():
    assert content_type_of(b"", "a/b.JPEG") == "image/jpeg"
    assert content_type_of(PNG) == "image/png" and content_type_of(JPEG, "x.raw") == "image/jpeg"
    assert content_type_of(b"GIF89a") == "application/octet-stream"


def test_kafka_security_as_kafka_python_options():
    assert KafkaSecurity().kafka_python_options() == {"security_protocol": "PLAINTEXT"}
    options = KafkaSecurity("SASL_SSL", "SCRAM-SHA-512", "cam", "pw", "/ca.pem").kafka_python_options()
    assert options == {"security_protocol": "SASL_SSL", "ssl_cafile": "/ca.pem",
                       "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "cam",
                       "sasl_plain_password": "pw"}


def test_from_settings_reads_the_broker_topic_store_and_security():
    settings = Settings(broker_url="kafka://k1:9092;k2:9092", events_topic="ev", image_bucket="imgs",
                        store_url="https://s3.example:9000", kafka_security_protocol="SASL_PLAINTEXT",
                        kafka_sasl_username="u", kafka_sasl_password="p")
    client = CameraClient.from_settings(settings, line_id="line-7")
    assert (client.bootstrap_servers, client.topic, client.bucket, client.line_id) == (
        "k1:9092,k2:9092", "ev", "imgs", "line-7")
    assert client.security == KafkaSecurity("SASL_PLAINTEXT", "PLAIN", "u", "p", None)


def test_an_invalid_event_fails_before_anything_is_sent():
    dead = f"127.0.0.1:{free_port()}"  # neither broker nor store answers there: never asked
    client = CameraClient(dead, store_url=f"http://{dead}", store_access_key="a", store_secret_key="b")
    started = time.monotonic()
    for bad in ({"camera_id": "cam 1"}, {"camera_id": "c", "part_id": "a/b"},
                {"camera_id": "c", "captured_at": datetime(2025, 1, 1)},  # no time zone
                {"camera_id": "c", "metadata": {"k": [1]}}):
        with pytest.raises(ValidationError):
            client.publish(PNG, **bad)
    assert time.monotonic() - started < 1 and client._producer is None
    client.close()


def test_a_store_url_must_be_http():
    with pytest.raises(ValueError, match="http"):
        CameraClient("k:9092", store_url="s3://bucket", store_access_key="a", store_secret_key="b")

