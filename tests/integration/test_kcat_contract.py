"""The wire contract seen by an external, non-Python Kafka client: Debian's kcat (librdkafka)."""

import json
import shutil
import subprocess
import uuid
from datetime import UTC, datetime

import pytest

from latentline.schemas import Decision, Verdict
from latentline.streams.lab.embedded import free_port, tansu_broker
from latentline.streams.worker.store import ObjectStore, sha256_hex
from tests.integration.apiversions_proxy import apiversions_proxy
from tests.integration.conftest import make_stack

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("kcat") is None, reason="kcat not installed (make test installs it as root)"
    ),
]


@pytest.fixture(scope="module")
def stack(store_url, bundle_dir, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("kcat")
    proxy_port = free_port()
    with tansu_broker(workdir / "tansu.log", advertised_port=proxy_port) as direct_url:
        upstream = int(direct_url.rsplit(":", 1)[1])
        with apiversions_proxy(proxy_port, upstream):
            stack = make_stack(f"kafka://127.0.0.1:{proxy_port}", store_url, bundle_dir, workdir)
            with stack.worker():
                yield stack


def kcat(*args: str, stdin: str | None = None) -> str:
    return subprocess.run(["kcat", *args], input=stdin, capture_output=True, text=True,
                          timeout=30, check=True).stdout


def test_hand_written_event_in_and_verdict_out_with_kcat(stack, pcb_dir):
    settings = stack.settings
    broker = settings.bootstrap_servers()
    data = next((pcb_dir / "test" / "good").iterdir()).read_bytes()
    uri = ObjectStore(settings).put(f"s3://{settings.image_bucket}/kcat/{uuid.uuid4()}.png", data)
    event_id = f"kcat-{uuid.uuid4().hex[:12]}"
    event = json.dumps({
        "event_id": event_id, "camera_id": "cam-kcat", "line_id": "line-k",
        "captured_at": datetime.now(UTC).isoformat(), "image_uri": uri,
        "sha256": sha256_hex(data), "metadata": {"exposure_ms": 4.5},
    })
    kcat("-P", "-b", broker, "-t", settings.events_topic, "-K", "\t", stdin=f"cam-kcat\t{event}\n")
    found = None
    for _ in range(60):
        out = kcat("-C", "-b", broker, "-t", settings.verdicts_topic, "-o", "beginning", "-e",
                   "-q", "-f", "%k\t%s\n")
        found = next((line for line in out.splitlines() if event_id in line), None)
        if found:
            break
    assert found, "no verdict read back with kcat"
    key, value = found.split("\t", 1)
    verdict = Verdict.from_bytes(value)  # the JSON kcat shows is a valid Verdict
    assert key == "cam-kcat"
    assert verdict.event_id == event_id and json.loads(value)["schema_version"] == 1
    assert verdict.decision in set(Decision)
