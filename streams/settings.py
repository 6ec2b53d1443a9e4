"""Every setting, declared once with its type, default and environment variable.

Read from the environment with the prefix ``LATENTLINE_`` (``LATENTLINE_BROKER_URL`` sets
``broker_url``). The settings table of docs/settings.md is generated from this class
(``python -m latentline.streams.settings``, ``make docs``).
"""

import json
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from latentline.models.encoding.images import DecodeLimits
from latentline.models.online.defaults import (
    DRIFT_CLIP,
    DRIFT_CLOCK,
    DRIFT_DELTA,
    DRIFT_HOLD_EVENTS,
    DRIFT_MIN_STD,
    DRIFT_REFERENCE_EVENTS,
    NOVELTY_MIN_MEMBERS,
    NOVELTY_MIN_WEIGHT,
    NOVELTY_RADIUS,
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LATENTLINE_", frozen=True)

    # Kafka
    broker_url: str = Field("kafka://127.0.0.1:9092", description="Kafka bootstrap, kafka://host:port[;host:port]")
    app_id: str = Field("latentline-inspect", description="Consumer group and prefix of internal topics")
    events_topic: str = Field("camera.events", description="Input topic of camera events")
    verdicts_topic: str = Field("inspection.verdicts", description="One verdict per valid event")
    dlq_topic: str = Field("camera.events.dlq", description="Dead letters: bad input with its reason")
    alerts_topic: str = Field("inspection.alerts", description="Drift and new-defect-type alerts")
    labels_topic: str = Field("inspection.labels", description="Operators' labels (input)")
    review_topic: str = Field("inspection.review", description="Events an operator should look at, and why")
    novelty_topic: str = Field("latentline.novelty", description="Internal, one partition: novelty input")
    partitions: int = Field(4, description="Partitions of the topics latentline creates")
    replication_factor: int = Field(1, description="Replication of the topics latentline creates")
    session_timeout_seconds: float = Field(6.0, description="Consumer group session timeout")
    heartbeat_seconds: float = Field(1.0, description="Consumer heartbeat interval")
    commit_interval_seconds: float = Field(1.0, description="How often consumed offsets are committed")
    fetch_max_wait_ms: int = Field(
        100, description="Longest a worker's fetch waits at the broker for data (Faust's own: 1500)"
    )
    table_consistency_check: bool = Field(
        True, description="Faust's changelog offset check on recovery (off on Tansu: wrong end offsets)"
    )
    processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        "at_least_once", description="exactly_once needs broker transactions (Apache Kafka; not Tansu)"
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol of every client (worker, producer, CLI)"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="SASL mechanism when the protocol is SASL_*"
    )
    kafka_sasl_username: str = Field("", description="SASL user name")
    kafka_sasl_password: SecretStr = Field(SecretStr(""), description="SASL password")
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle that signs the brokers' certificates")
    # Object store
    store_url: str = Field("http://127.0.0.1:9000", description="S3 endpoint (MinIO), http:// or https://")
    store_access_key: SecretStr = Field(SecretStr("minioadmin"), description="S3 access key")
    store_secret_key: SecretStr = Field(SecretStr("minioadmin"), description="S3 secret key")
    store_region: str = Field("us-east-1", description="S3 region")
    image_bucket: str = Field("camera-images", description="Bucket the reference producer uploads to")
    allowed_image_locations: frozenset[str] = Field(
        frozenset(), description="Buckets or bucket/prefixes events may name (JSON list; empty: image_bucket)"
    )
    fetch_deadline_seconds: float = Field(30.0, description="Longest time one image download may take")
    model_bucket: str = Field("latentline-models", description="Bucket for model bundles")
    evidence_bucket: str = Field("latentline-evidence", description="Exemplars and anomaly maps")
    # Model and batching
    model_uri: str = Field("var/model", description="Model bundle: a directory or s3://bucket/prefix")
    device: str = Field("auto", description="auto (GPU if present), cpu, cuda, cuda:1, ...")
    batch_max_size: int = Field(16, description="Largest micro-batch encoded at once")
    forward_batch: int = Field(
        0, ge=0, description="Images per encoder forward pass within a micro-batch; 0: the fastest, "
        "measured at start-up (on some CPUs small passes are faster: docs/speed.md)")
    batch_max_wait_seconds: float = Field(0.05, description="Longest wait to fill a micro-batch")
    fetch_concurrency: int = Field(8, description="Threads fetching and decoding images")
    prefetch_batches: int = Field(
        1, ge=1, description="Loaded batches that wait for the model while it works (docs/speed.md)")
    # Drift and new defect types (docs/drift.md)
    drift_delta: float = Field(DRIFT_DELTA, description="ADWIN confidence: smaller means fewer, later alarms")
    drift_clock: int = Field(DRIFT_CLOCK, description="ADWIN checks for a change every this many values")
    drift_hold_events: int = Field(
        DRIFT_HOLD_EVENTS, description="A camera counts as drifting for this many events"
    )
    drift_checkpoint_seconds: float = Field(
        0.0, description="Least time between writes of a camera's drift state (0: after every batch)"
    )
    drift_pixel_statistics: bool = Field(
        True, description="Watch each camera's pixel statistics (brightness, contrast, focus, clipping, ...)"
    )
    drift_pixel_max_side: int = Field(
        512, ge=16, description="Larger images are box-reduced to this side for their pixel statistics"
    )
    drift_reference_events: int = Field(
        DRIFT_REFERENCE_EVENTS, ge=2, le=1024,
        description="A camera's first events (again after an alarm) that set its pixel-statistic reference",
    )
    drift_min_std: float = Field(DRIFT_MIN_STD, gt=0,
                                 description="Least reference spread of a pixel statistic")
    drift_clip: float = Field(DRIFT_CLIP, gt=0,
                              description="Clip of a standardised pixel statistic (reference std)")
    novelty_radius: float = Field(NOVELTY_RADIUS, description="Cluster radius on unit deviation directions")
    novelty_min_weight: float = Field(
        NOVELTY_MIN_WEIGHT, description="Faded weight a cluster needs to become a candidate"
    )
    novelty_min_members: int = Field(
        NOVELTY_MIN_MEMBERS, description="Recent anomalies a candidate needs at least"
    )
    novelty_exemplars: int = Field(12, description="Exemplar images stored per candidate")
    examples_sync_seconds: float = Field(
        2.0, description="How often a worker looks for operators' new labelled examples"
    )
    # Input limits
    max_image_bytes: int = Field(16 * 2**20, description="Larger images go to the dead-letter topic")
    max_image_pixels: int = Field(25_000_000, description="Width x height limit, checked before decoding")
    image_formats: frozenset[str] = Field(
        frozenset({"PNG", "JPEG"}), description="Accepted formats (JSON list)"
    )
    # Never losing a part (docs/delivery.md)
    retry_initial_seconds: float = Field(0.5, description="First pause after a transient fault (store, GPU)")
    retry_max_seconds: float = Field(30.0, description="Longest pause between retries of a transient fault")
    poison_attempts: int = Field(3, description="Worker stops a message may cause before it is quarantined")
    dead_letter_max_payload_bytes: int = Field(
        65536, description="Larger payloads are truncated in the dead letter and kept whole in the store"
    )
    ledger_retention_seconds: float = Field(
        3600.0, description="How long answered event ids are remembered against redelivery"
    )
    stall_seconds: float = Field(60.0, description="A partition waiting this long with no verdict is stalled")
    stall_exit_seconds: float = Field(
        120.0, description="A worker idle this long while its partitions have waiting events exits (0: never)"
    )
    # Worker
    metrics_port: int = Field(9464, description="Port of /metrics (0: no metrics server)")
    lag_interval_seconds: float = Field(5.0, description="How often consumer lag is measured")
    # Alert thresholds, rendered into monitoring/prometheus/alerts.yml by `make monitoring`
    alert_p99_latency_seconds: float = Field(2.0, description="Alert: p99 end-to-end latency over this")
    alert_lag_events: float = Field(1000, description="Alert: summed consumer lag over this")
    alert_dead_letter_share: float = Field(0.05, description="Alert: share of events dead-lettered")
    alert_anomaly_share: float = Field(0.3, description="Alert: share of non-ok verdicts of a camera")
    state_dir: Path = Field(Path("var/worker"), description="Faust's local state directory")
    log_level: str = Field("info", description="Worker log level")
    cache_dir: Path = Field(
        Path.home() / ".cache" / "latentline", description="Demo data and fitted demo models"
    )
    # Review station (docs/station.md)
    station_host: str = Field("127.0.0.1", description="Station: address to listen on")
    station_port: int = Field(8080, description="Station: HTTP port")
    station_dir: Path = Field(
        Path("var/station"), description="Station: its SQLite file, rebuilt from the topics on start"
    )
    station_auth: Literal["password", "header"] = Field(
        "password", description="Station sign-in: password (users file) or header (a trusted proxy's)"
    )
    station_users_file: Path = Field(
        Path("var/station/users"), description="Station: lines user:scrypt-hash (latentline station hash)"
    )
    station_identity_header: str = Field(
        "X-Forwarded-User", description="Station, auth header: the proxy's header naming the operator"
    )
    station_session_secret: SecretStr = Field(
        SecretStr(""), description="Station: signs session cookies (empty: random per start; share it "
        "between instances)"
    )
    station_undo_seconds: float = Field(
        5.0, description="Station: an answer is held this long, undoable, before it is published"
    )
    station_grafana_url: str = Field(
        "http://localhost:3000", description="Station: Grafana, linked from the line view"
    )

    def decode_limits(self) -> DecodeLimits:
        return DecodeLimits(self.max_image_bytes, self.max_image_pixels, self.image_formats)

    def image_locations(self) -> frozenset[str]:
        """Where events may point: the allow-list, or the image bucket alone."""
        return self.allowed_image_locations or frozenset({self.image_bucket})

    def bootstrap_servers(self) -> str:
        """``kafka://a:1;b:2`` -> ``a:1,b:2`` for plain Kafka clients."""
        return ",".join(url.split("://", 1)[-1] for url in self.broker_url.split(";"))


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that reproduces ``settings`` in a child process."""
    env = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        elif isinstance(value, frozenset):
            value = json.dumps(sorted(value))
        env[f"LATENTLINE_{name.upper()}"] = str(value)
    return env


SETTINGS_DOC = Path(__file__).resolve().parents[1] / "docs" / "settings.md"


def markdown_table() -> str:
    """The settings table of docs/settings.md (tests/streams/test_settings.py keeps the two in step)."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, info in Settings.model_fields.items():
        default = info.default
        if hasattr(default, "get_secret_value"):
            default = default.get_secret_value()
        elif isinstance(default, frozenset):
            default = json.dumps(sorted(default))
        elif name == "cache_dir":
            default = "~/.cache/latentline"
        elif default is None:
            default = ""
        rows.append(f"| `LATENTLINE_{name.upper()}` | `{default}` | {info.description} |")
    return "\n".join(rows)


def update_settings_doc(doc: Path = SETTINGS_DOC) -> None:
    """Rewrite the table between the settings markers of ``doc`` (docs/settings.md)."""
    text = doc.read_text()
    begin = text.index("<!-- settings:begin")
    begin = text.index("\n", begin) + 1
    end = text.index("<!-- settings:end -->")
    doc.write_text(text[:begin] + markdown_table() + "\n" + text[end:])


if __name__ == "__main__":
    update_settings_doc()
