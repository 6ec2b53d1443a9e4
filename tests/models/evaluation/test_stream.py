"""evaluate-stream on a small real replay: the report's keys, its plot, and a drift it must see."""

import json

import pytest

from latentline.models.encoding.config import EncoderConfig
from latentline.models.evaluation.stream import StreamScript, evaluate_stream
from latentline.models.inspector import Inspector
from latentline.models.training.fit import TypeOptions, fit_bundle


@pytest.fixture(scope="module")
def inspector(pcb_dir):
    # the frozen type path, as the scripted stream's figures were set on (and a quicker fit)
    bundle = fit_bundle(pcb_dir, EncoderConfig(image_size=96), max_images=200, progress=False,
                        types=TypeOptions(fine_tune=0))
    return Inspector(bundle, "cpu")


def test_report_has_every_metric_and_a_plot(inspector, pcb_dir, tmp_path):
    script = StreamScript(stable_events=300, drift_events=150, novelty_events=120, brightness=0.5,
                          contrast=0.6)
    metrics = evaluate_stream(inspector, pcb_dir, tmp_path, script, progress=False)
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    assert (tmp_path / "stream.png").stat().st_size > 10_000
    for key in ("drift_false_alarms", "drift_detection_delay", "novelty_detection_delay", "novelty_purity"):
        assert key in metrics
    assert metrics["novelty_types"] == ["spur"]
    assert metrics["drift_false_alarms"] == 0
    assert metrics["drift_detection_delay"] is not None and metrics["drift_detection_delay"] <= 150, (
        "halving the light must be noticed"
    )
    if metrics["novelty_purity"] is not None:
        assert 0 <= metrics["novelty_purity"] <= 1
