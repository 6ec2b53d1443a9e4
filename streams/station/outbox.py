"""Publishes the operators' answers once their undo window has passed: a label on the topic is
learned by every worker at once, so undoing one means never sending it."""

import logging
import threading

from kafka import KafkaProducer

from latentline.schemas import Label
from latentline.streams.client import KafkaSecurity
from latentline.streams.settings import Settings
from latentline.streams.station.db import StationDB

log = logging.getLogger(__name__)
TICK_SECONDS = 0.2  # how late after its window an answer may go out


def label_producer(settings: Settings) -> KafkaProducer:
    # acks=all and not idempotent, as the camera client (Tansu has no idempotent producer): a
    # label sent twice is harmless, the worker learns the latest label of an event.
    return KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers(), acks="all", retries=5, enable_idempotence=False,
        max_in_flight_requests_per_connection=1, allow_auto_create_topics=False,
        **KafkaSecurity.from_settings(settings).kafka_python_options(),
    )


def publish_due(db: StationDB, producer: KafkaProducer, topic: str, timeout: float = 30.0) -> list[Label]:
    """Sends the answers past their window, keyed by event id; marks them sent once acknowledged."""
    labels = db.take_due()
    if not labels:
        return []
    try:
        futures = [producer.send(topic, label.to_bytes(), key=label.event_id.encode()) for label in labels]
        for future in futures:
            future.get(timeout=timeout)
    except Exception:
        db.mark_sent(labels, sent=False)  # held again, due now: the next tick retries
        raise
    db.mark_sent(labels)
    return labels


class Outbox:
    """The thread that publishes due answers."""

    def __init__(self, settings: Settings, db: StationDB):
        self.settings, self.db = settings, db
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="station-outbox", daemon=True)
        self.producer: KafkaProducer | None = None

    def start(self) -> "Outbox":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=10)
        if self.producer is not None:
            self.producer.close(timeout=5)

    def _run(self) -> None:
        while not self.stop_event.wait(TICK_SECONDS):
            try:
                self.producer = self.producer or label_producer(self.settings)
                for label in publish_due(self.db, self.producer, self.settings.labels_topic):
                    log.info("published label %s for %s by %s", label.label, label.event_id,
                             label.labelled_by)
            except Exception:
                log.exception("labels not published yet; retrying")
                self.stop_event.wait(2.0)
