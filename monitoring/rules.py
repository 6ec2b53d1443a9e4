"""Alert rules, rendered to monitoring/prometheus/alerts.yml and to the alert table of
docs/operations.md: ``python -m monitoring.rules`` (``make monitoring``).

Each rule is a signal (a query that returns data while workers run), a comparison and a
threshold, so a test can check every signal against a real Prometheus and promtool can test
the rules. Thresholds come from the settings (LATENTLINE_ALERT_*), rendered at generation time.
"""

from dataclasses import dataclass
from pathlib import Path

import yaml

from latentline.streams.settings import Settings
from monitoring import queries as q

RULES_FILE = Path(__file__).parent / "prometheus" / "alerts.yml"
OPERATIONS_DOC = Path(__file__).resolve().parents[1] / "docs" / "operations.md"
WINDOW = "5m"


@dataclass(frozen=True)
class AlertRule:
    name: str
    signal: str
    comparison: str
    threshold: float
    wait: str
    severity: str
    summary: str
    action: str
    guard: str = ""  # a further condition, joined with `and`

    def expr(self) -> str:
        expr = f"({q.with_window(self.signal, WINDOW)}) {self.comparison} {self.threshold:g}"
        return f"{expr} and ({self.guard})" if self.guard else expr


def alert_rules(settings: Settings) -> list[AlertRule]:
    return [
        AlertRule(
            "LatentlineWorkerDown", q.WORKER_UP_EACH, "==", 0, "1m", "critical",
            "A latentline worker does not answer scrapes",
            "Check the container (docker compose ps, logs); its partitions move to the others.",
        ),
        AlertRule(
            "LatentlineConsumerLagGrowing", q.TOTAL_LAG, ">", settings.alert_lag_events, "5m",
            "warning", "Events pile up faster than the workers drain them",
            "Scale workers (up to the partition count) or check the device; see the ops dashboard.",
            guard=f"deriv({q.TOTAL_LAG}[10m:1m]) > 0",
        ),
        AlertRule(
            "LatentlinePartitionStalled", q.STALLED_PARTITIONS, ">", 0, "1m", "critical",
            "An input partition has waiting events and has answered none for stall_seconds",
            "Read the worker's log for that partition: a batch stuck on a fault that is not retried, "
            "or a worker that consumes nothing (it exits by itself after stall_exit_seconds, status "
            "76, and its restart moves the partition on; restart it by hand if it has no restart policy).",
        ),
        AlertRule(
            "LatentlinePausedOnTransientFault", q.PAUSED_BY_CAUSE, ">", 0, "2m", "warning",
            "Inspection waits for the object store or the device; events queue, none is lost",
            "cause=store: check MinIO and the workers' credentials; cause=device: GPU memory held by "
            "another process. Verdicts resume by themselves once it clears.",
        ),
        AlertRule(
            "LatentlineStateRejected", q.STATE_REJECTED, ">", 0, "0m", "warning",
            "A drift or novelty state record was refused on restore (tampered or unknown format)",
            "Someone wrote to a latentline changelog topic, or a worker of another version did: "
            "check topic ACLs; the affected camera's detectors started afresh.",
        ),
        AlertRule(
            "LatentlineLatencyP99High", q.E2E_P99, ">", settings.alert_p99_latency_seconds, "5m",
            "warning", "p99 end-to-end latency is over the configured limit",
            "Look at the per-stage latency panel: fetch (object store), encode (device) or queue.",
        ),
        AlertRule(
            "LatentlineDeadLetterRateHigh", q.DEAD_LETTER_SHARE, ">", settings.alert_dead_letter_share,
            "5m", "warning", "A large share of camera events is rejected",
            "Read camera.events.dlq: error_kind says whether a camera, the store or the model fails.",
        ),
        AlertRule(
            "LatentlineAnomalyRateSpike", q.ANOMALY_RATE_PER_CAMERA, ">", settings.alert_anomaly_share,
            "10m", "warning", "A camera reports far more anomalous parts than usual",
            "Check the line behind that camera (process drift, lighting, lens) before the model.",
            # a spike against the camera's own last hours, not a line that is always this bad
            guard=f"{q.with_window(q.ANOMALY_RATE_PER_CAMERA, WINDOW)}"
                  f" > 2 * {q.with_window(q.ANOMALY_RATE_PER_CAMERA, '6h')}",
        ),
        AlertRule(
            "LatentlineCameraDrifting", q.DRIFT_STATE_PER_CAMERA, ">", 0, "0m", "warning",
            "A camera's images have changed (lighting, lens, focus or material)",
            "Read the drift alert on inspection.alerts (statistic, start, before/after); check the "
            "lamp and lens of that camera; refit the model if the change is intended.",
        ),
        AlertRule(
            "LatentlineNewDefectTypeCandidate", q.OPEN_NOVELTY_CANDIDATES, ">", 0, "0m", "info",
            "A recurring kind of anomaly that no known defect type explains",
            "Look at the exemplar images in the alert; label one on inspection.labels to name it.",
        ),
    ]


def render(settings: Settings) -> str:
    rules = [
        {
            "alert": rule.name,
            "expr": rule.expr(),
            "for": rule.wait,
            "labels": {"severity": rule.severity},
            "annotations": {"summary": rule.summary, "action": rule.action},
        }
        for rule in alert_rules(settings)
    ]
    document = {"groups": [{"name": "latentline", "rules": rules}]}
    header = "# Generated by monitoring/rules.py (make monitoring); do not edit.\n"
    return header + yaml.safe_dump(document, sort_keys=False, width=100)


def markdown_table(settings: Settings) -> str:
    """The alert table of docs/operations.md (tests/monitoring/test_generated.py keeps the two in step)."""
    rows = ["| alert | fires when | what to do |", "| --- | --- | --- |"]
    for rule in alert_rules(settings):
        wait = "at once" if rule.wait == "0m" else f"for {rule.wait}"
        rows.append(f"| `{rule.name}` ({rule.severity}) | {rule.summary} "
                    f"(`{rule.comparison} {rule.threshold:g}` {wait}) | {rule.action} |")
    return "\n".join(rows)


def update_operations_doc(settings: Settings, doc: Path = OPERATIONS_DOC) -> None:
    """Rewrite the table between the alert markers of ``doc`` (docs/operations.md)."""
    text = doc.read_text()
    begin = text.index("<!-- alerts:begin")
    begin = text.index("\n", begin) + 1
    end = text.index("<!-- alerts:end -->")
    doc.write_text(text[:begin] + markdown_table(settings) + "\n" + text[end:])


if __name__ == "__main__":
    RULES_FILE.write_text(render(Settings()))
    update_operations_doc(Settings())
