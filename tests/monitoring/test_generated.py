"""The checked-in monitoring files are what the code generates, and Prometheus' own tool accepts them."""

import shutil
import subprocess
from pathlib import Path

import pytest

from latentline.streams.settings import Settings
from monitoring import dashboards, queries, rules

PROMETHEUS_DIR = Path(rules.__file__).parent / "prometheus"
needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None,
                                    reason="promtool (Debian package prometheus) not installed")


def test_dashboards_are_current():
    for name, text in dashboards.rendered().items():
        path = dashboards.DASHBOARD_DIR / name
        assert path.read_text() == text, f"{path} is stale: run make monitoring"


def test_alert_rules_are_current():
    current = rules.RULES_FILE.read_text()
    assert current == rules.render(Settings()), "alerts.yml is stale: run make monitoring"


def test_dashboards_hold_the_panels_operators_need():
    titles = {spec.title for spec in dashboards.all_panels()}
    for needed in ("Verdict mix", "Anomaly rate per camera", "Consumer lag per partition",
                   "End-to-end latency p99", "Stage latency p99", "Mean batch size", "Workers up"):
        assert needed in titles
    exprs = {spec.expr for spec in dashboards.all_panels()}
    assert queries.GPU_ONLY <= exprs


def test_alert_threshold_follows_the_setting():
    text = rules.render(Settings(alert_p99_latency_seconds=0.75))
    assert "> 0.75" in text


@needs_promtool
def test_promtool_accepts_rules_and_config():
    for command in (["check", "rules", "alerts.yml"], ["check", "config", "prometheus.yml"]):
        result = subprocess.run(["promtool", *command], cwd=PROMETHEUS_DIR, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_rule_unit_tests_pass():
    result = subprocess.run(["promtool", "test", "rules", "alerts_test.yml"], cwd=PROMETHEUS_DIR,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_operations_doc_explains_every_alert():
    doc = rules.OPERATIONS_DOC.read_text()
    assert rules.markdown_table(Settings()) in doc, "docs/operations.md is stale: run make monitoring"
    for rule in rules.alert_rules(Settings()):
        assert f"`{rule.name}`" in doc and rule.action in doc, rule.name
