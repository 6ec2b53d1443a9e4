"""The station's routes through Starlette's TestClient, on a real SQLite file and a real S3
server (moto): sign-in, CSRF, answers and undo, candidates, images and bad input."""

import io
import re

import pytest
from fastapi.testclient import TestClient
from minio import Minio
from PIL import Image

from latentline.streams.lab.embedded import s3_server
from latentline.streams.settings import Settings
from latentline.streams.station.app import create_app
from latentline.streams.station.auth import Auth, add_user
from latentline.streams.station.db import StationDB
from latentline.streams.station.images import ImageStore
from latentline.streams.station.web import StationConfig
from tests.streams.station.records import candidate, drift, label, request, verdict
from tests.streams.station.test_station_db import replay

BUCKET, EVIDENCE = "camera-images", "latentline-evidence"


def png(colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def store_settings() -> Settings:
    with s3_server() as url:
        settings = Settings(store_url=url)
        client = Minio(url.split("://")[1], "minioadmin", "minioadmin", secure=False)
        for bucket in (BUCKET, EVIDENCE):
            client.make_bucket(bucket)
        exemplar = "novelty/novelty-line-1-0/e-1.png"
        for key, bucket in (("a.png", BUCKET), ("maps/a.png", BUCKET), (exemplar, EVIDENCE)):
            data = png("red")
            client.put_object(bucket, key, io.BytesIO(data), len(data), content_type="image/png")
        yield settings


@pytest.fixture(scope="module")
def users_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("users") / "users"
    add_user(path, "op-1", "first-password")
    add_user(path, "op-2", "second-password")
    return path


@pytest.fixture
def db(tmp_path) -> StationDB:
    db = StationDB(tmp_path / "station.sqlite")
    replay(db, request("a", minutes=2), request("b", minutes=1), request("c", minutes=0), verdict("a"),
           label("c", "short", by="op-3"), candidate(), drift())
    return db


def station(db, store_settings, users_file, mode="password") -> TestClient:
    config = StationConfig(auth=Auth(mode, users_file, "X-Forwarded-User"), undo_seconds=60,
                           grafana_url="http://grafana.local")
    return TestClient(create_app(db, ImageStore(store_settings), config), follow_redirects=False)


def token(client: TestClient, path: str = "/login") -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', client.get(path).text).group(1)


def signed_in(db, store_settings, users_file, name="op-1", password="first-password") -> TestClient:
    client = station(db, store_settings, users_file)
    response = client.post("/login", data={"operator": name, "password": password, "next": "/queue",
                                           "csrf": token(client)})
    assert response.status_code == 303 and response.headers["location"] == "/queue"
    return client


@pytest.fixture
def client(db, store_settings, users_file) -> TestClient:
    return signed_in(db, store_settings, users_file)


def held_rows(db) -> list[tuple]:
    return [tuple(r) for r in db.conn.execute("SELECT event_id, label, labelled_by, state FROM outbox")]


def test_pages_need_a_sign_in(db, store_settings, users_file):
    client = station(db, store_settings, users_file)
    response = client.get("/requests/a")
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/requests/a"
    assert client.get("/images/requests/a/image").status_code == 401
    assert client.post("/requests/a/label", data={"label": "spur"}).status_code == 401
    assert client.get("/healthz").json() == {"ready": True, "open_requests": 2}


def test_wrong_password_or_operator_is_refused(db, store_settings, users_file):
    client = station(db, store_settings, users_file)
    for name, password in (("op-1", "second-password"), ("nobody", "first-password")):
        response = client.post("/login", data={"operator": name, "password": password, "csrf": token(client)})
        assert response.status_code == 401 and "unknown operator or wrong password" in response.text
    assert client.get("/queue").status_code == 303


def test_a_sign_in_without_the_token_is_refused(db, store_settings, users_file):
    client = station(db, store_settings, users_file)
    client.get("/login")
    response = client.post("/login", data={"operator": "op-1", "password": "first-password"})
    assert response.status_code == 403 and "cross-site request refused" in response.text


def test_a_sign_in_link_never_leads_off_the_station(db, store_settings, users_file):
    client = station(db, store_settings, users_file)
    response = client.post("/login", data={"operator": "op-1", "password": "first-password",
                                           "next": "//evil.example/x", "csrf": token(client)})
    assert response.headers["location"] == "/queue"


def test_the_queue_shows_open_requests_only(client):
    page = client.get("/queue").text
    assert 'data-event="a"' in page and 'data-event="b"' in page and 'data-event="c"' not in page
    assert client.get("/queue?camera=cam-9").text.count('class="item"') == 0


def test_a_request_shows_its_image_guess_measurements_and_answer_keys(client):
    page = client.get("/requests/a").text
    assert "/images/requests/a/image" in page and "/images/requests/a/heatmap" in page
    assert "Best guess: short" in page and "spot diameter" in page and "0.42 ± 0.05 mm" in page
    keys = dict(re.findall(r'value="([^"]+)" data-key="(\w)"', page))
    assert keys == {"copper": "1", "open": "2", "short": "3", "good": "g"}


def test_an_answer_is_held_for_its_operator_and_the_next_request_follows(client, db):
    response = client.post("/requests/a/label", data={"label": "short", "csrf": token(client, "/queue")})
    assert response.status_code == 303 and response.headers["location"] == "/requests/b"
    assert held_rows(db) == [("a", "short", "op-1", "held")]
    page = client.get("/requests/b").text
    assert "answered &#39;short&#39;" in page and "/undo" in page  # the flash offers an undo
    assert 'data-event="a"' not in client.get("/queue").text


def test_a_new_type_name_becomes_a_label(client, db):
    client.post("/requests/a/label", data={"label": "  Solder Bridge ", "csrf": token(client, "/queue")})
    assert held_rows(db) == [("a", "solder_bridge", "op-1", "held")]


@pytest.mark.parametrize("sent", [None, "forged-token"])
def test_a_forged_answer_is_refused_and_changes_nothing(client, db, sent):
    data = {"label": "short"} | ({"csrf": sent} if sent else {})
    response = client.post("/requests/a/label", data=data)
    assert response.status_code == 403 and "cross-site request refused" in response.text
    assert held_rows(db) == []


def test_another_sessions_token_is_refused(client, db, store_settings, users_file):
    other = signed_in(db, store_settings, users_file, "op-2", "second-password")
    response = client.post("/requests/a/label", data={"label": "short", "csrf": token(other, "/queue")})
    assert response.status_code == 403 and held_rows(db) == []


def test_an_unknown_request_is_a_clear_404(client, db):
    response = client.post("/requests/nope/label", data={"label": "short", "csrf": token(client, "/queue")})
    assert response.status_code == 404 and "no review request for event &#39;nope&#39;" in response.text
    assert client.get("/requests/nope", headers={"Accept": "application/json"}).json() == {
        "error": "no review request for event 'nope'"}
    assert held_rows(db) == []


def test_a_label_for_an_answered_request_is_a_409(client, db, store_settings, users_file):
    response = client.post("/requests/c/label", data={"label": "spur", "csrf": token(client, "/queue")})
    assert response.status_code == 409 and "answered already: &#39;short&#39; by op-3" in response.text
    client.post("/requests/a/label", data={"label": "spur", "csrf": token(client, "/queue")})
    other = signed_in(db, store_settings, users_file, "op-2", "second-password")
    response = other.post("/requests/a/label", data={"label": "open", "csrf": token(other, "/queue")})
    assert response.status_code == 409 and "held for undo" in response.text
    assert held_rows(db) == [("a", "spur", "op-1", "held")]


@pytest.mark.parametrize("name", ["", "   ", "bad/name", "x" * 65, "good?"])
def test_an_unusable_type_name_is_a_422(client, db, name):
    response = client.post("/requests/a/label", data={"label": name, "csrf": token(client, "/queue")})
    assert response.status_code == 422 and "not a usable type name" in response.text
    assert held_rows(db) == []


def test_undo_returns_the_request_to_the_queue(client, db, store_settings, users_file):
    client.post("/requests/a/label", data={"label": "short", "csrf": token(client, "/queue")})
    answer_id = db.conn.execute("SELECT answer_id FROM outbox").fetchone()[0]
    other = signed_in(db, store_settings, users_file, "op-2", "second-password")
    response = other.post(f"/answers/{answer_id}/undo", data={"csrf": token(other, "/queue")})
    assert response.status_code == 409 and "op-1&#39;s, not yours" in response.text
    response = client.post(f"/answers/{answer_id}/undo", data={"csrf": token(client, "/queue")})
    assert response.status_code == 303 and response.headers["location"] == "/requests/a"
    assert held_rows(db) == [("a", "short", "op-1", "undone")]
    assert 'data-event="a"' in client.get("/queue").text
    assert client.post("/answers/nope/undo", data={"csrf": token(client, "/queue")}).status_code == 404


def name(client: TestClient, alert_id: str, label: str):
    data = {"label": label, "csrf": token(client, "/queue")}
    return client.post(f"/candidates/{alert_id}/label", data=data)


def test_naming_a_candidate_labels_its_exemplars(client, db):
    page = client.get("/candidates").text
    assert "/candidates/novelty-line-1-0" in page and "anomaly_score" in page  # and the drift alert
    assert client.get("/candidates/novelty-line-1-0").text.count("/images/candidates/novelty-line-1-0/") == 3
    response = name(client, "novelty-line-1-0", "spur")
    assert response.status_code == 303
    assert held_rows(db) == [(e, "spur", "op-1", "held") for e in ("e-1", "e-2", "e-3")]
    assert "waiting for the worker to close it" in client.get("/candidates/novelty-line-1-0").text
    again = name(client, "novelty-line-1-0", "x")
    assert again.status_code == 409 and "named &#39;spur&#39; by op-1 already" in again.text


def test_a_closed_or_unknown_candidate_cannot_be_named(client, db):
    replay(db, candidate(status="closed"))
    response = name(client, "novelty-line-1-0", "spur")
    assert response.status_code == 409 and "is closed" in response.text
    for alert_id in ("nope", "drift:cam-2:anomaly_score:e-9"):
        assert name(client, alert_id, "spur").status_code == 404
    assert held_rows(db) == []


def test_images_come_through_the_station(client):
    response = client.get("/images/requests/a/heatmap")
    assert response.status_code == 200 and response.content[:4] == b"\x89PNG"
    assert response.headers["content-type"] == "image/png" and "private" in response.headers["cache-control"]
    assert client.get("/images/candidates/novelty-line-1-0/0").content[:4] == b"\x89PNG"


def test_missing_images_are_clear_404s(client):
    assert client.get("/images/requests/b/image").json() == {"error": "s3://camera-images/b.png: NoSuchKey"}
    assert client.get("/images/requests/nope/image").status_code == 404
    assert client.get("/images/requests/a/thumbnail").json() == {"error": "request a has no thumbnail"}
    assert client.get("/images/candidates/novelty-line-1-0/7").json() == {
        "error": "candidate novelty-line-1-0 has 3 exemplars, not 8"}


def test_the_line_view_counts_verdicts_per_camera(client, db):
    replay(db, verdict("x", decision="ok", minutes=3), verdict("y", camera="cam-2", decision="defect",
                                                               defect_type="short"))
    page = client.get("/line").text
    assert 'data-camera="cam-1"' in page and 'data-camera="cam-2"' in page
    assert "http://grafana.local/dashboards" in page


def test_behind_a_proxy_the_header_names_the_operator(db, store_settings, users_file):
    client = station(db, store_settings, users_file, mode="header")
    assert client.get("/queue").status_code == 401
    assert client.get("/queue", headers={"X-Forwarded-User": "op 9"}).status_code == 401
    headers = {"X-Forwarded-User": "op-9"}
    assert "op-9" in client.get("/queue", headers=headers).text
    page = client.get("/queue", headers=headers).text
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    response = client.post("/requests/b/label", data={"label": "open", "csrf": csrf}, headers=headers)
    assert response.status_code == 303 and held_rows(db) == [("b", "open", "op-9", "held")]


def test_sign_out_ends_the_session(client):
    response = client.post("/logout", data={"csrf": token(client, "/queue")})
    assert response.status_code == 303 and client.get("/queue").status_code == 303
