"""The station's state in SQLite: what the topics say (rebuilt from them on every start) and the
answers it holds for the undo window (kept across restarts, so an answer is never lost).

One connection shared by the feed, the outbox and the request threads, behind one lock: SQLite
writes are serial anyway, and the station's load is a few operators.
"""

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from latentline.schemas import Alert, AlertKind, AlertStatus, Label, ReviewRequest, Verdict

# Rebuilt from the topics: dropped and created again on every start.
DERIVED = """
CREATE TABLE requests (event_id TEXT PRIMARY KEY, camera_id TEXT, line_id TEXT, reasons TEXT,
    anomaly_score REAL, requested_at TEXT, record TEXT);
CREATE TABLE verdicts (event_id TEXT PRIMARY KEY, camera_id TEXT, line_id TEXT, decision TEXT,
    anomaly_score REAL, processed_at TEXT, record TEXT);
CREATE INDEX verdicts_by_camera ON verdicts (camera_id, processed_at);
CREATE TABLE labels (event_id TEXT PRIMARY KEY, label TEXT, labelled_by TEXT, labelled_at TEXT);
CREATE TABLE alerts (alert_id TEXT PRIMARY KEY, kind TEXT, status TEXT, line_id TEXT, raised_at TEXT,
    record TEXT);
CREATE TABLE types (name TEXT PRIMARY KEY);
"""
DERIVED_TABLES = ("requests", "verdicts", "labels", "alerts", "types")
# The station's own: answers held for the undo window, then published (state held -> sending -> sent).
OUTBOX = """
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, answer_id TEXT, event_id TEXT, alert_id TEXT,
    label TEXT, labelled_by TEXT, labelled_at TEXT, due REAL, state TEXT);
CREATE INDEX IF NOT EXISTS outbox_by_event ON outbox (event_id, state);
"""
GOOD = "good"  # the label of a false alarm (schemas/label.py)


class Conflict(Exception):
    """The request or candidate is answered already (or held for the undo window)."""


class NotFound(LookupError):
    """No such request, candidate or answer."""


@dataclass(frozen=True)
class RequestView:
    request: ReviewRequest
    verdict: Verdict | None
    label: str | None  # the answer on inspection.labels, or held here
    labelled_by: str | None
    held: bool  # answered here, still inside the undo window or on its way to the topic


@dataclass(frozen=True)
class Held:
    answer_id: str
    event_ids: list[str]
    alert_id: str | None
    label: str
    labelled_by: str
    due: float


class StationDB:
    def __init__(self, path: Path | str):
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.lock = threading.RLock()
        self.conn.executescript(OUTBOX)
        self.reset()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def reset(self) -> None:
        """Forget what the topics said (the replay tells it again); keep the held answers."""
        with self.transaction() as db:
            for table in DERIVED_TABLES:
                db.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in DERIVED.strip().split(";"):
                if statement.strip():
                    db.execute(statement)

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    # -- what the topics say ----------------------------------------------------------------

    def add_request(self, db: sqlite3.Connection, r: ReviewRequest) -> None:
        # The first request of an event wins: a redelivered batch repeats it.
        db.execute("INSERT OR IGNORE INTO requests VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (r.event_id, r.camera_id, r.line_id, ",".join(r.reasons), r.anomaly_score,
                    r.requested_at.isoformat(), r.model_dump_json()))
        if r.classification is not None:
            self._add_types(db, r.classification.probabilities)

    def add_verdict(self, db: sqlite3.Connection, v: Verdict) -> None:
        db.execute("INSERT OR IGNORE INTO verdicts VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (v.event_id, v.camera_id, v.line_id, v.decision.value, v.anomaly_score,
                    v.processed_at.isoformat(), v.model_dump_json()))
        if v.classification is not None:
            self._add_types(db, v.classification.probabilities)

    def add_label(self, db: sqlite3.Connection, label: Label) -> None:
        # The latest label of an event counts, as it does for the worker's classifier.
        db.execute("INSERT OR REPLACE INTO labels VALUES (?, ?, ?, ?)",
                   (label.event_id, label.label, label.labelled_by, label.labelled_at.isoformat()))
        if label.label != GOOD:
            self._add_types(db, [label.label])

    def add_alert(self, db: sqlite3.Connection, alert: Alert) -> None:
        # An alert's later messages (a candidate grown, closed) replace the earlier ones.
        db.execute("INSERT OR REPLACE INTO alerts VALUES (?, ?, ?, ?, ?, ?)",
                   (alert.alert_id, alert.kind.value, alert.status.value, alert.line_id,
                    alert.raised_at.isoformat(), alert.model_dump_json()))

    def _add_types(self, db: sqlite3.Connection, names: Iterable[str]) -> None:
        db.executemany("INSERT OR IGNORE INTO types VALUES (?)", [(n,) for n in names if n != GOOD])

    # -- the queue ---------------------------------------------------------------------------

    def open_requests(self, line: str = "", camera: str = "", reason: str = "", order: str = "newest",
                      limit: int = 200) -> list[ReviewRequest]:
        """Unanswered requests: newest first, or the most uncertain (score nearest 0.5) first."""
        where, args = [_OPEN], []
        for column, value in (("line_id", line), ("camera_id", camera)):
            if value:
                where.append(f"r.{column} = ?")
                args.append(value)
        if reason:
            where.append("(',' || r.reasons || ',') LIKE ?")
            args.append(f"%,{reason},%")
        ordering = "ABS(r.anomaly_score - 0.5)" if order == "uncertain" else "r.requested_at DESC"
        query = f"SELECT r.record FROM requests r WHERE {' AND '.join(where)} ORDER BY {ordering} LIMIT ?"
        with self.lock:
            rows = self.conn.execute(query, [*args, limit]).fetchall()
        return [ReviewRequest.model_validate_json(row["record"]) for row in rows]

    def facets(self) -> dict[str, list[str]]:
        """The lines, cameras and reasons of open requests, for the queue's filters."""
        with self.lock:
            query = f"SELECT line_id, camera_id, reasons FROM requests r WHERE {_OPEN}"
            rows = self.conn.execute(query).fetchall()
        reasons = {reason for row in rows for reason in row["reasons"].split(",")}
        return {"line": sorted({r["line_id"] for r in rows}),
                "camera": sorted({r["camera_id"] for r in rows}), "reason": sorted(reasons)}

    def open_count(self) -> int:
        with self.lock:
            return self.conn.execute(f"SELECT COUNT(*) FROM requests r WHERE {_OPEN}").fetchone()[0]

    def next_open(self, after_event_id: str) -> str | None:
        """The open request after this one in the newest-first queue (wrapping round), if any."""
        ids = [r.event_id for r in self.open_requests(limit=1000)]
        if not ids:
            return None
        later = [i for i in ids if i != after_event_id]
        return later[0] if later else None

    def request(self, event_id: str) -> RequestView:
        with self.lock:
            row = self.conn.execute("SELECT record FROM requests WHERE event_id = ?", (event_id,)).fetchone()
            if row is None:
                raise NotFound(f"no review request for event {event_id!r}")
            verdict = self.conn.execute("SELECT record FROM verdicts WHERE event_id = ?",
                                        (event_id,)).fetchone()
            label, by, held = self._answer(event_id)
        verdict = Verdict.model_validate_json(verdict["record"]) if verdict else None
        return RequestView(ReviewRequest.model_validate_json(row["record"]), verdict, label, by, held)

    def _answer(self, event_id: str) -> tuple[str | None, str | None, bool]:
        row = self.conn.execute("SELECT label, labelled_by FROM labels WHERE event_id = ?",
                                (event_id,)).fetchone()
        if row is not None:
            return row["label"], row["labelled_by"], False
        row = self.conn.execute("SELECT label, labelled_by FROM outbox WHERE event_id = ? "
                                "AND state != 'undone' ORDER BY id DESC LIMIT 1", (event_id,)).fetchone()
        return (row["label"], row["labelled_by"], True) if row else (None, None, False)

    def known_types(self) -> list[str]:
        with self.lock:
            return [row["name"] for row in self.conn.execute("SELECT name FROM types ORDER BY name")]

    # -- alerts and the line -----------------------------------------------------------------

    def alerts(self, kind: AlertKind, status: AlertStatus | None = AlertStatus.OPEN,
               limit: int = 100) -> list[Alert]:
        query = "SELECT record FROM alerts WHERE kind = ?" + (" AND status = ?" if status else "")
        args = [kind.value] + ([status.value] if status else [])
        with self.lock:
            rows = self.conn.execute(query + " ORDER BY raised_at DESC LIMIT ?", [*args, limit]).fetchall()
        return [Alert.model_validate_json(row["record"]) for row in rows]

    def alert(self, alert_id: str) -> Alert:
        with self.lock:
            row = self.conn.execute("SELECT record FROM alerts WHERE alert_id = ?", (alert_id,)).fetchone()
        if row is None:
            raise NotFound(f"no alert {alert_id!r}")
        return Alert.model_validate_json(row["record"])

    def candidate_held(self, alert_id: str) -> Held | None:
        """The answer held or sent for a candidate that is still open on the topic."""
        with self.lock:
            row = self.conn.execute("SELECT answer_id FROM outbox WHERE alert_id = ? AND state != 'undone' "
                                    "ORDER BY id DESC LIMIT 1", (alert_id,)).fetchone()
        return self.held(row["answer_id"]) if row else None

    def line_counts(self) -> dict[str, dict[str, int]]:
        """camera -> decision -> verdicts."""
        counts: dict[str, dict[str, int]] = {}
        with self.lock:
            rows = self.conn.execute("SELECT camera_id, decision, COUNT(*) AS n FROM verdicts "
                                     "GROUP BY camera_id, decision").fetchall()
        for row in rows:
            counts.setdefault(row["camera_id"], {})[row["decision"]] = row["n"]
        return counts

    def recent_verdicts(self, camera_id: str, limit: int = 12) -> list[Verdict]:
        with self.lock:
            rows = self.conn.execute("SELECT record FROM verdicts WHERE camera_id = ? "
                                     "ORDER BY processed_at DESC LIMIT ?", (camera_id, limit)).fetchall()
        return [Verdict.model_validate_json(row["record"]) for row in rows]

    # -- answers: held for the undo window, then published -----------------------------------

    def hold(self, event_ids: list[str], label: str, operator: str, undo_seconds: float,
             alert_id: str | None = None) -> Held:
        """Holds one answer (a label for each event) unless an event is answered already."""
        answer_id = uuid.uuid4().hex
        due = time.time() + undo_seconds
        with self.transaction() as db:
            for event_id in event_ids:
                answered, by, held = self._answer(event_id)
                if answered is not None and alert_id is None:
                    raise Conflict(f"event {event_id} is answered already: '{answered}' by {by}"
                                   + (" (held for undo)" if held else ""))
            now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
            db.executemany("INSERT INTO outbox (answer_id, event_id, alert_id, label, labelled_by, "
                           "labelled_at, due, state) VALUES (?, ?, ?, ?, ?, ?, ?, 'held')",
                           [(answer_id, e, alert_id, label, operator, now, due) for e in event_ids])
        return Held(answer_id, event_ids, alert_id, label, operator, due)

    def held(self, answer_id: str) -> Held:
        with self.lock:
            rows = self.conn.execute("SELECT * FROM outbox WHERE answer_id = ? ORDER BY id",
                                     (answer_id,)).fetchall()
        if not rows:
            raise NotFound(f"no answer {answer_id!r}")
        first = rows[0]
        return Held(answer_id, [r["event_id"] for r in rows], first["alert_id"], first["label"],
                    first["labelled_by"], first["due"])

    def undo(self, answer_id: str, operator: str) -> Held:
        """Withdraws a held answer: only its operator's, only inside the window."""
        held = self.held(answer_id)
        if held.labelled_by != operator:
            raise Conflict(f"this answer is {held.labelled_by}'s, not yours")
        with self.transaction() as db:
            changed = db.execute("UPDATE outbox SET state = 'undone' WHERE answer_id = ? AND state = 'held' "
                                 "AND due > ?", (answer_id, time.time())).rowcount
        if not changed:
            raise Conflict("too late to undo: the answer has been published (or was undone)")
        return held

    def take_due(self, now: float | None = None) -> list[Label]:
        """Held answers past their window, marked as being sent (undo no longer reaches them)."""
        now = time.time() if now is None else now
        with self.transaction() as db:
            db.execute("UPDATE outbox SET state = 'sending' WHERE state = 'held' AND due <= ?", (now,))
            rows = db.execute("SELECT * FROM outbox WHERE state = 'sending' ORDER BY id").fetchall()
        return [Label(event_id=r["event_id"], label=r["label"], labelled_by=r["labelled_by"],
                      labelled_at=r["labelled_at"]) for r in rows]

    def mark_sent(self, labels: list[Label], sent: bool = True) -> None:
        """After the broker acknowledged them (or back to held, due now, when it did not)."""
        state = "sent" if sent else "held"
        with self.transaction() as db:
            db.executemany("UPDATE outbox SET state = ? WHERE state = 'sending' AND event_id = ?",
                           [(state, label.event_id) for label in labels])

    def stats(self) -> dict[str, int]:
        with self.lock:
            return {t: self.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in DERIVED_TABLES}


# Open: no label on the topic, none held or sent by this station.
_OPEN = ("r.event_id NOT IN (SELECT event_id FROM labels) AND r.event_id NOT IN "
         "(SELECT event_id FROM outbox WHERE state != 'undone')")
