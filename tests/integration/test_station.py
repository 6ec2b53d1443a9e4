"""The review station end to end: the embedded broker and object store, a worker, the station in
child processes, and a real headless Chromium driven by Playwright. An operator answers review
requests with key presses and later events of that type come out named by the worker; another
names a new-type candidate from its gallery and the worker closes it.

Screenshots go to STATION_SCREENSHOTS when set (docs/img is where the documentation's come from),
else to the test's temporary folder."""

import asyncio
import concurrent.futures
import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from latentline.schemas import AlertKind, AlertStatus, Label, TypeStatus
from latentline.streams.lab.embedded import TANSU_SETTINGS, free_port, stop_process
from latentline.streams.settings import Settings, settings_env
from latentline.streams.station.auth import add_user
from latentline.streams.station.db import StationDB
from latentline.streams.station.feed import Feed
from latentline.streams.station.outbox import Outbox
from latentline.streams.worker.topics import ensure_topics
from tests.integration.conftest import make_stack
from tests.integration.test_label_learning import N_LABELS, assert_named_spur, publisher_of, wait_for_metric
from tests.streams.station.records import candidate, label, request

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")  # Debian's (make test installs it), not a downloaded build
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OPERATORS = {"op-1": "first-password", "op-2": "second-password"}
UNDO_SECONDS = 3.0


def in_thread(function, *args, **kwargs):
    """Runs asyncio code (the stack's producer and collector) beside Playwright's own loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(function, *args, **kwargs).result()


@contextlib.contextmanager
def station(settings: Settings, workdir: Path, name: str = "station") -> Iterator[str]:
    """``latentline station`` in a child process on the stack's topics; yields its URL once it
    has caught up with the topics."""
    users = workdir / "users"
    if not users.exists():
        for operator, password in OPERATORS.items():
            add_user(users, operator, password)
    port = free_port()
    env = os.environ | settings_env(settings) | {
        "LATENTLINE_STATION_PORT": str(port), "LATENTLINE_STATION_DIR": str(workdir / name),
        "LATENTLINE_STATION_USERS_FILE": str(users), "LATENTLINE_STATION_UNDO_SECONDS": str(UNDO_SECONDS),
    }
    with open(workdir / f"{name}.log", "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "latentline.streams.cli.main", "station"], env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, url, workdir / f"{name}.log")
        yield url
    finally:
        stop_process(process)


def wait_until_ready(process: subprocess.Popen, url: str, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the station exited with {process.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if json.load(response)["ready"]:
                    return
        time.sleep(0.3)
    raise TimeoutError(f"the station did not catch up within {timeout}s; see {log}")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed (apt-get install chromium; make test installs it as root)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("STATION_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sign_in(browser, url: str, operator: str):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(30_000)
    page.goto(f"{url}/queue")  # not signed in: the sign-in form, then back here
    page.fill("input[name=operator]", operator)
    page.fill("input[name=password]", OPERATORS[operator])
    page.keyboard.press("Enter")
    page.wait_for_url(f"{url}/queue")
    return page


def reload_until(page, url: str, selector: str, timeout: float = 60.0):
    """The station learns from the topics: a page shows what it has consumed so far."""
    deadline = time.monotonic() + timeout
    while True:
        page.goto(url)
        if page.locator(selector).count():
            return page.locator(selector).first
        if time.monotonic() > deadline:
            raise AssertionError(f"{selector} never appeared on {url}")
        time.sleep(0.5)


def images_loaded(page) -> bool:
    """Every image on the page arrived through the station and decoded (none broken)."""
    return page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")


def wait_until(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def answer_with_key(page, url: str, event_id: str, label: str) -> None:
    """Opens a request and presses the key the page shows for ``label``."""
    button = reload_until(page, f"{url}/requests/{event_id}", f'button[value="{label}"]')
    key = button.get_attribute("data-key")
    with page.expect_navigation():
        page.keyboard.press(key)
    assert f"answered '{label}'" in page.inner_text("#flash")


def test_an_operator_answers_with_keys_and_the_worker_names_that_type_later(
    broker_url, store_url, bundle_dir, tmp_path, pcb_dir, browser, shots
):
    stack = in_thread(make_stack, broker_url, store_url, bundle_dir, tmp_path, examples_sync_seconds=0.5)
    spurs = sorted((pcb_dir / "test" / "spur").iterdir())[:40]
    with stack.worker(), station(stack.settings, tmp_path, "a") as url, \
            station(stack.settings, tmp_path, "b") as other_url:
        sent: dict = {}
        before = in_thread(stack.run, publisher_of(spurs, "cam-s", sent))
        unnamed = {r.event_id for r in before.reviews
                   if r.classification is not None and r.classification.status is not TypeStatus.KNOWN}
        chosen = sorted(unnamed, key=lambda i: sent[i].name)[:N_LABELS]  # the same images every run
        assert len(chosen) == N_LABELS, "enough spur parts must reach review"
        mapped = {r.event_id for r in before.reviews if r.heatmap_uri}
        chosen.sort(key=lambda i: i not in mapped)  # the first one shown with its anomaly map
        examples = stack.metrics()["latentline_classifier_examples"]

        page = sign_in(browser, url, "op-1")
        reload_until(page, f"{url}/queue", f'[data-event="{chosen[0]}"]')
        assert page.locator(".queue .item").count() >= N_LABELS
        page.keyboard.press("j")  # the keyboard moves through the queue
        assert page.locator(".queue .item.selected").count() == 1
        page.screenshot(path=shots / "station-queue.png")

        page.goto(f"{url}/requests/{chosen[0]}")
        page.wait_for_function("Array.from(document.images).every(i => i.complete)")
        assert images_loaded(page) and page.locator(".images img").count() == 1 + (chosen[0] in mapped)
        page.screenshot(path=shots / "station-request.png")
        page.keyboard.press("n")  # a type the model does not know: its name
        page.keyboard.type("spur")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        for event_id in chosen[1:]:  # spur is a known type now: one key
            answer_with_key(page, url, event_id, "spur")

        undone = next(r.event_id for r in before.reviews if r.event_id not in chosen)
        answer_with_key(page, url, undone, "good")
        with page.expect_navigation():
            page.keyboard.press("u")  # undo, inside the window
        assert "undone" in page.inner_text("#flash")

        assert wait_for_metric(stack, "latentline_classifier_examples", examples + N_LABELS)
        assert wait_for_metric(stack, "latentline_classifier_types", 6.0)
        # Every answer reached the topic as op-1's, and left the queue of another station too.
        reload_until(page, f"{url}/requests/{chosen[-1]}", "#answered:not(:has-text('held'))")
        assert "Answered spur by op-1." in page.inner_text("#answered")
        colleague = sign_in(browser, other_url, "op-2")

        def all_gone() -> bool:
            colleague.reload()
            return not any(colleague.locator(f'[data-event="{i}"]').count() for i in chosen)

        assert wait_until(all_gone), "answered requests still in another station's queue"
        assert colleague.locator(f'[data-event="{undone}"]').count() == 1  # the undone one is still open
        assert stack.metrics()["latentline_labels_total"] == N_LABELS  # the undone one never went out

        taught = [sent[i] for i in chosen]
        resent: dict = {}
        after = in_thread(stack.run, publisher_of(taught, "cam-s", resent))
        assert_named_spur(after, resent)
        # The live line view shows them too, named by the worker.
        reload_until(page, f"{url}/line", '[data-camera="cam-s"] .dot:text-is("spur")')
        page.screenshot(path=shots / "station-line.png")


def test_an_operator_names_a_new_type_candidate_from_its_gallery(
    broker_url, store_url, bundle_dir, tmp_path, pcb_dir, browser, shots
):
    stack = in_thread(make_stack, broker_url, store_url, bundle_dir, tmp_path, novelty_min_weight=4.0,
                      novelty_min_members=4)
    spurs = sorted((pcb_dir / "test" / "spur").iterdir())[:90]

    def opened(outcomes):
        return any(a.kind is AlertKind.NEW_DEFECT_TYPE and a.status is AlertStatus.OPEN
                   for a in outcomes.alerts)

    async def two_cameras(producer, simulator):
        return [(await simulator.publish(p, f"cam-{i % 2}")).event_id for i, p in enumerate(spurs)]

    with stack.worker(), station(stack.settings, tmp_path) as url:
        outcomes = in_thread(stack.run, two_cameras, until=opened)
        alert = next(a for a in outcomes.alerts if a.kind is AlertKind.NEW_DEFECT_TYPE)
        page = sign_in(browser, url, "op-1")
        card = reload_until(page, f"{url}/candidates", f'[data-alert="{alert.alert_id}"] a')
        with page.expect_navigation():
            card.click()
        page.wait_for_function("Array.from(document.images).every(i => i.complete)")
        assert images_loaded(page)
        assert page.locator("#gallery img").count() == len(alert.novelty.exemplar_uris) > 0
        page.screenshot(path=shots / "station-candidate.png", full_page=True)
        page.keyboard.press("n")
        page.keyboard.type("spur")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert "Named spur by op-1" in page.inner_text("#named")
        # The worker closes the candidate on the first label; the station shows its closing alert.
        closed = reload_until(page, f"{url}/candidates/{alert.alert_id}", "#closed")
        assert "named 'spur' by op-1" in closed.inner_text()


def test_stations_replay_the_topics_alike_and_publish_held_answers(broker_url, tmp_path):
    """The feed and the outbox on the real broker, without a browser: two stations rebuild the
    same queue from the topics, an answer goes out once its window has passed, with its operator,
    and a restarted station arrives at the same state again."""
    tag = uuid.uuid4().hex[:8]
    settings = Settings(broker_url=broker_url, review_topic=f"inspection.review.{tag}",
                        verdicts_topic=f"inspection.verdicts.{tag}", alerts_topic=f"inspection.alerts.{tag}",
                        labels_topic=f"inspection.labels.{tag}", **TANSU_SETTINGS)
    in_thread(asyncio.run, ensure_topics(settings))
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers(), acks="all")
    for record, topic in ((request("a", minutes=2), settings.review_topic),
                          (request("b", minutes=1), settings.review_topic),
                          (request("c"), settings.review_topic), (label("c", "short"), settings.labels_topic),
                          (candidate(), settings.alerts_topic)):
        producer.send(topic, record.to_bytes(), key=b"k").get(timeout=30)
    producer.send(settings.review_topic, b"{not json").get(timeout=30)  # skipped, never fatal
    producer.close()

    with running(settings, tmp_path / "one.sqlite") as (one, feed):
        assert [r.event_id for r in one.open_requests()] == ["a", "b"] and feed.invalid == 1
        one.hold(["a"], "spur", "op-1", undo_seconds=0.5)
        outbox = Outbox(settings, one).start()
        try:
            assert wait_until(lambda: one.request("a").label == "spur" and not one.request("a").held)
        finally:
            outbox.stop()
        with running(settings, tmp_path / "two.sqlite") as (two, _):
            assert [r.event_id for r in two.open_requests()] == ["b"]
            assert two.request("a").labelled_by == "op-1" and two.stats() == one.stats()
    with running(settings, tmp_path / "one.sqlite") as (again, _):  # a restart rebuilds it alike
        assert [r.event_id for r in again.open_requests()] == ["b"]
        assert again.alert("novelty-line-1-0").status is AlertStatus.OPEN
    assert published_labels(settings) == [("a", "spur", "op-1"), ("c", "short", "op-1")]  # a once


@contextlib.contextmanager
def running(settings: Settings, path: Path):
    db = StationDB(path)
    feed = Feed(settings, db).start()
    try:
        assert wait_until(feed.ready), "the station never caught up with the topics"
        yield db, feed
    finally:
        feed.stop()
        db.close()


def published_labels(settings: Settings) -> list[tuple[str, str, str]]:
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers(), consumer_timeout_ms=3000)
    partitions = [TopicPartition(settings.labels_topic, p)
                  for p in consumer.partitions_for_topic(settings.labels_topic)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    labels = [Label.from_bytes(m.value) for m in consumer]
    consumer.close()
    return sorted((x.event_id, x.label, x.labelled_by) for x in labels)
