"""The station's SQLite state and its replay of the topics (streams/station/db.py, feed.py)."""

import time

import pytest

from latentline.schemas import AlertKind, AlertStatus, ReviewReason
from latentline.streams.settings import Settings
from latentline.streams.station.db import Conflict, NotFound, StationDB
from latentline.streams.station.feed import apply_records, sources
from tests.streams.station.records import candidate, drift, label, request, verdict

SETTINGS = Settings()


def replay(db: StationDB, *records) -> int:
    """Applies records as the feed does, each on its topic; returns how many were invalid."""
    topic_of = {"ReviewRequest": SETTINGS.review_topic, "Verdict": SETTINGS.verdicts_topic,
                "Alert": SETTINGS.alerts_topic, "Label": SETTINGS.labels_topic}
    pairs = [r if isinstance(r, tuple) else (topic_of[type(r).__name__], r.to_bytes()) for r in records]
    return apply_records(db, sources(SETTINGS, db), pairs)


@pytest.fixture
def db(tmp_path) -> StationDB:
    return StationDB(tmp_path / "station.sqlite")


def ids(requests) -> list[str]:
    return [r.event_id for r in requests]


def test_requests_queue_newest_or_most_uncertain_first(db):
    replay(db, request("a", score=0.36, minutes=1), request("b", score=0.49, minutes=0),
           request("c", score=0.40, minutes=2))
    assert ids(db.open_requests()) == ["c", "a", "b"]
    assert ids(db.open_requests(order="uncertain")) == ["b", "c", "a"]


def test_queue_filters_by_line_camera_and_reason(db):
    replay(db, request("a", camera="cam-1"), request("b", camera="cam-2", line="line-2"),
           request("c", camera="cam-2", minutes=1,
                   reasons=[ReviewReason.UNCERTAIN_ANOMALY, ReviewReason.UNKNOWN_TYPE]))
    assert ids(db.open_requests(camera="cam-2")) == ["c", "b"]
    assert ids(db.open_requests(line="line-2")) == ["b"]
    assert ids(db.open_requests(reason="unknown_type")) == ["c"]
    assert ids(db.open_requests(reason="unknown")) == []  # whole reasons only
    assert db.facets() == {"line": ["line-1", "line-2"], "camera": ["cam-1", "cam-2"],
                           "reason": ["ambiguous_type", "uncertain_anomaly", "unknown_type"]}


def test_a_label_on_the_topic_closes_the_request_and_names_a_type(db):
    replay(db, request("a"), request("b"), label("a", "spur", by="op-2"))
    assert ids(db.open_requests()) == ["b"]
    view = db.request("a")
    assert (view.label, view.labelled_by, view.held) == ("spur", "op-2", False)
    assert "spur" in db.known_types() and "short" in db.known_types()  # labels and probabilities
    replay(db, label("b", "good"))
    assert db.open_requests() == [] and "good" not in db.known_types()


def test_a_redelivered_request_is_one_request(db):
    replay(db, request("a", score=0.4), request("a", score=0.4))
    assert db.open_count() == 1


def test_invalid_records_are_skipped_and_the_rest_applied(db):
    invalid = replay(db, (SETTINGS.review_topic, b"{not json"), (SETTINGS.labels_topic, b'{"event_id": "x"}'),
                     request("a"))
    assert invalid == 2 and ids(db.open_requests()) == ["a"]


def test_a_request_shows_its_verdict(db):
    replay(db, verdict("a"), request("a"))
    view = db.request("a")
    assert view.verdict.measurements["spot_diameter"].unit == "mm"
    with pytest.raises(NotFound, match="no review request"):
        db.request("nope")


def test_alerts_keep_their_latest_message(db):
    replay(db, candidate(), drift())
    assert [a.alert_id for a in db.alerts(AlertKind.NEW_DEFECT_TYPE)] == ["novelty-line-1-0"]
    replay(db, candidate(status=AlertStatus.CLOSED))
    assert db.alerts(AlertKind.NEW_DEFECT_TYPE) == []
    assert db.alert("novelty-line-1-0").novelty.label == "spur"
    assert db.alerts(AlertKind.DRIFT)[0].drift.statistic == "anomaly_score"


def test_line_counts_and_recent_verdicts(db):
    replay(db, verdict("a", decision="ok", minutes=0), verdict("b", decision="ok", minutes=1),
           verdict("c", decision="defect", minutes=2, defect_type="short"), verdict("d", camera="cam-2"))
    assert db.line_counts() == {"cam-1": {"ok": 2, "defect": 1}, "cam-2": {"review": 1}}
    assert ids(db.recent_verdicts("cam-1", limit=2)) == ["c", "b"]


def test_a_held_answer_leaves_the_queue_and_cannot_be_given_twice(db):
    replay(db, request("a"), request("b"))
    held = db.hold(["a"], "spur", "op-1", undo_seconds=60)
    assert ids(db.open_requests()) == ["b"]
    assert db.request("a").held and db.request("a").label == "spur"
    with pytest.raises(Conflict, match="answered already"):
        db.hold(["a"], "short", "op-2", undo_seconds=60)
    assert db.take_due() == []  # still inside its window
    assert db.held(held.answer_id).event_ids == ["a"]


def test_undo_inside_the_window_by_its_operator_only(db):
    replay(db, request("a"))
    held = db.hold(["a"], "spur", "op-1", undo_seconds=60)
    with pytest.raises(Conflict, match="op-1's"):
        db.undo(held.answer_id, "op-2")
    db.undo(held.answer_id, "op-1")
    assert ids(db.open_requests()) == ["a"] and db.take_due(now=time.time() + 120) == []
    with pytest.raises(Conflict, match="too late"):
        db.undo(held.answer_id, "op-1")
    with pytest.raises(NotFound):
        db.undo("no-such-answer", "op-1")


def test_due_answers_are_taken_once_and_undo_no_longer_reaches_them(db):
    replay(db, request("a"))
    held = db.hold(["a"], "spur", "op-1", undo_seconds=0)
    labels = db.take_due()
    assert [(x.event_id, x.label, x.labelled_by) for x in labels] == [("a", "spur", "op-1")]
    with pytest.raises(Conflict, match="too late"):
        db.undo(held.answer_id, "op-1")
    db.mark_sent(labels, sent=False)  # the broker did not acknowledge: held again, due now
    assert [x.event_id for x in db.take_due()] == ["a"]
    db.mark_sent(labels)
    assert db.take_due() == [] and db.open_requests() == []


def test_a_rebuild_forgets_the_topics_but_keeps_held_answers(tmp_path):
    db = StationDB(tmp_path / "station.sqlite")
    replay(db, request("a"), request("b"))
    db.hold(["a"], "spur", "op-1", undo_seconds=60)
    db.close()
    again = StationDB(tmp_path / "station.sqlite")  # a restart: derived tables start empty
    assert again.open_count() == 0 and again.stats()["requests"] == 0
    replay(again, request("a"), request("b"))
    assert ids(again.open_requests()) == ["b"]  # the held answer still hides "a"


def test_two_stations_replaying_the_same_topics_agree(tmp_path):
    records = [request("a"), request("b", minutes=1), label("a"), candidate(), verdict("b")]
    first, second = StationDB(tmp_path / "one.sqlite"), StationDB(tmp_path / "two.sqlite")
    replay(first, *records)
    replay(second, *records)
    assert ids(first.open_requests()) == ids(second.open_requests()) == ["b"]
    assert first.stats() == second.stats()
