"""A real Prometheus scrapes a real worker while events flow; every dashboard panel and every
alert signal must return data through Prometheus' HTTP API."""

import asyncio
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from latentline.streams.lab.embedded import free_port, stop_process, wait_for_port
from monitoring import dashboards, queries, rules
from tests.integration.conftest import make_stack

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("prometheus") is None, reason="prometheus (Debian package) not installed"
    ),
]
WINDOW = "30s"


@pytest.fixture(scope="module")
def stack(broker_url, store_url, bundle_dir, tmp_path_factory):
    stack = make_stack(broker_url, store_url, bundle_dir, tmp_path_factory.mktemp("prom"),
                       lag_interval_seconds=1.0)
    with stack.worker():
        yield stack


@pytest.fixture(scope="module")
def prometheus(stack, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("prometheus")
    shutil.copy(rules.RULES_FILE, workdir / "alerts.yml")
    (workdir / "prometheus.yml").write_text(json.dumps({  # JSON is YAML
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["alerts.yml"],
        "scrape_configs": [{"job_name": "latentline", "static_configs": [
            {"targets": [f"127.0.0.1:{stack.settings.metrics_port}"]}]}],
    }))
    port = free_port()
    process = subprocess.Popen(
        ["prometheus", f"--config.file={workdir / 'prometheus.yml'}",
         f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=open(workdir / "prometheus.log", "wb"),
    )
    try:
        wait_for_port(port, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


def query(prometheus: str, expr: str) -> list:
    url = f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]


def stream_events(stack, pcb_dir, seconds: float) -> None:
    """Good and defective images from two cameras, and one bad event, for ``seconds``."""
    images = [path for label in ("good", "short")
              for path in sorted((pcb_dir / "test" / label).iterdir())[:20]]

    async def scenario(producer, simulator):
        ids, deadline, index = [], time.monotonic() + seconds, 0
        await producer.send_and_wait(stack.settings.events_topic, b"not json", key=b"cam-1")
        while time.monotonic() < deadline:
            event = await simulator.publish(images[index % len(images)], f"cam-{index % 2 + 1}")
            ids.append(event.event_id)
            index += 1
            await asyncio.sleep(0.1)
        return ids

    stack.run(scenario)


def test_every_panel_and_alert_signal_returns_data(stack, prometheus, pcb_dir):
    stream_events(stack, pcb_dir, seconds=25)
    signals = {f"panel {spec.title}": spec.expr for spec in dashboards.all_panels()
               if spec.expr not in queries.GPU_ONLY}  # this worker has no GPU
    signals |= {f"alert {rule.name}": rule.signal for rule in rules.alert_rules(stack.settings)}
    empty = [name for name, expr in signals.items()
             if not query(prometheus, queries.with_window(expr, WINDOW))]
    assert not empty, f"no data for: {empty}"
    assert not query(prometheus, "latentline_no_such_metric"), "the check itself must see emptiness"


def test_alert_rules_are_loaded_and_healthy(prometheus):
    with urllib.request.urlopen(f"{prometheus}/api/v1/rules", timeout=10) as response:
        groups = json.load(response)["data"]["groups"]
    loaded = {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}
    assert set(loaded) == {rule.name for rule in rules.alert_rules(rules.Settings())}
    assert set(loaded.values()) == {"ok"}
