"""Grafana dashboards from code: ``python -m monitoring.dashboards`` writes the checked-in JSON.

Two dashboards: the shop-floor overview (what the line is producing) and operations (is the
pipeline keeping up). Panels read the shared signals of monitoring/queries.py.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from monitoring import queries as q

DASHBOARD_DIR = Path(__file__).parent / "grafana" / "dashboards"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="prometheus")


@dataclass(frozen=True)
class PanelSpec:
    title: str
    expr: str
    unit: str
    legend: str = ""
    kind: str = "timeseries"  # or "stat"
    description: str = ""


OVERVIEW = {
    "Production": [
        PanelSpec("Parts inspected per second", q.THROUGHPUT, "ops", kind="stat"),
        PanelSpec("Verdict mix", q.VERDICT_MIX, "ops", "{{decision}}",
                  description="ok / review / defect verdicts per second"),
        PanelSpec("Anomaly rate per camera", q.ANOMALY_RATE_PER_CAMERA, "percentunit", "{{camera}}",
                  description="Share of verdicts that are not ok (review or defect)"),
        PanelSpec("Parts per camera", q.VERDICTS_PER_CAMERA, "ops", "{{camera}}"),
    ],
    "Alerts": [
        PanelSpec("Cameras drifting", q.DRIFT_STATE_PER_CAMERA, "none", "{{camera}}",
                  description="1 while a camera's images drift (lighting, lens, material): "
                              "read inspection.alerts for the statistic and when it started"),
        PanelSpec("Open new-defect-type candidates", q.OPEN_NOVELTY_CANDIDATES, "none", kind="stat",
                  description="Recurring anomalies nobody has named; label one exemplar to close"),
        PanelSpec("Drift alerts", q.DRIFT_ALERTS_BY_STATISTIC, "short", "{{camera}} {{statistic}}"),
        PanelSpec("Unexplained anomalies per second", q.NOVELTY_SIGHTINGS, "ops",
                  description="Anomalies fed to new-defect-type detection"),
    ],
    "Defect types": [
        PanelSpec("Anomalies by defect type", q.DEFECT_TYPES, "ops", "{{defect_type}} ({{status}})",
                  description="known: named automatically; review / unknown: best guess, sent to "
                              "an operator on inspection.review"),
        PanelSpec("Sent to review per second", q.REVIEW_REQUESTS_BY_REASON, "ops", "{{reason}}"),
        PanelSpec("Defect types the model knows", q.KNOWN_DEFECT_TYPES, "none", kind="stat",
                  description="Grows when operators label a new type on inspection.labels"),
        PanelSpec("Operators' labels", q.LABELS_BY_OUTCOME, "short", "{{outcome}}",
                  description="learned: now a training example on every worker"),
    ],
    "Input quality": [
        PanelSpec("Rejected camera events by reason", q.DEAD_LETTERS_BY_KIND, "ops", "{{kind}}",
                  description="Dead letters per second; read camera.events.dlq for details"),
        PanelSpec("Model in use", q.MODEL_VERSION, "none", "{{version}}", kind="stat"),
    ],
}

OPERATIONS = {
    "Throughput": [
        PanelSpec("Events consumed per second", q.THROUGHPUT, "ops"),
        PanelSpec("Workers up", q.WORKERS_UP, "none", kind="stat"),
        PanelSpec("Consumer lag per partition", q.CONSUMER_LAG, "short", "partition {{partition}}"),
        PanelSpec("Partitions per worker", q.ASSIGNED_PARTITIONS, "none", "{{instance}}"),
        PanelSpec("Redelivered duplicates per second", q.DUPLICATES, "ops"),
    ],
    "Never losing a part": [
        PanelSpec("Paused on a transient fault", q.PAUSED_BY_CAUSE, "none", "{{instance}} {{cause}}"),
        PanelSpec("Retries of transient faults", q.TRANSIENT_RETRIES, "short", "{{cause}}"),
        PanelSpec("Stalled partitions", q.STALLED_PARTITIONS, "none", "{{instance}} partition {{partition}}"),
        PanelSpec("Rejected state records", q.STATE_REJECTED, "short", "{{table}}"),
    ],
    "Latency": [
        PanelSpec("End-to-end latency p50", q.E2E_P50, "s"),
        PanelSpec("End-to-end latency p99", q.E2E_P99, "s"),
        PanelSpec("Stage latency p50", q.STAGE_P50, "s", "{{stage}}"),
        PanelSpec("Stage latency p99", q.STAGE_P99, "s", "{{stage}}"),
    ],
    "Batching and device": [
        PanelSpec("Mean batch size", q.BATCH_SIZE_MEAN, "short"),
        PanelSpec("Mean batch fill", q.BATCH_FILL_MEAN, "percentunit",
                  description="Batch size over LATENTLINE_BATCH_MAX_SIZE"),
        PanelSpec("GPU memory", q.DEVICE_MEMORY, "bytes", "{{instance}} {{device}}",
                  description="Empty on CPU-only workers"),
        PanelSpec("GPU utilisation", q.DEVICE_UTILISATION, "percentunit", "{{instance}} {{device}}",
                  description="Empty on CPU-only workers"),
    ],
}


def panel(spec: PanelSpec):
    builder = Stat() if spec.kind == "stat" else Timeseries()
    target = Dataquery().expr(spec.expr).legend_format(spec.legend or "__auto").ref_id("A")
    builder = builder.title(spec.title).unit(spec.unit).datasource(DATASOURCE).with_target(target)
    builder = builder.height(8).span(12)
    return builder.description(spec.description) if spec.description else builder


def dashboard(uid: str, title: str, rows: dict[str, list[PanelSpec]]) -> Dashboard:
    board = (
        Dashboard(title).uid(uid).tags(["latentline", "generated"])
        .refresh("10s").time("now-30m", "now").timezone("browser")
    )
    for row_title, specs in rows.items():
        board = board.with_row(Row(row_title))
        for spec in specs:
            board = board.with_panel(panel(spec))
    return board


DASHBOARDS = {
    "latentline-overview": ("latentline: shop floor", OVERVIEW),
    "latentline-operations": ("latentline: operations", OPERATIONS),
}


def rendered() -> dict[str, str]:
    """File name -> JSON text."""
    return {
        f"{uid}.json": json.dumps(dashboard(uid, title, rows).build(), cls=JSONEncoder,
                                  indent=2, sort_keys=True) + "\n"
        for uid, (title, rows) in DASHBOARDS.items()
    }


def all_panels() -> list[PanelSpec]:
    return [spec for _, rows in DASHBOARDS.values() for specs in rows.values() for spec in specs]


if __name__ == "__main__":
    DASHBOARD_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in rendered().items():
        (DASHBOARD_DIR / name).write_text(text)
