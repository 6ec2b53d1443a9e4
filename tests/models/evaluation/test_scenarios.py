"""The scenario library: each scenario moves the pixel statistic it should; the runner reports
false alarms, delays and a plot, and finds a strong dimming on the test subset."""

import json

import numpy as np
import pytest
from PIL import Image

from latentline.models.evaluation.drift_scenarios import (
    ImagePool,
    ScenarioScript,
    evaluate_scenarios,
    good_pool,
)
from latentline.models.evaluation.scenarios import SCENARIOS, camera_shift, other_material
from latentline.models.online.drift import DriftMonitor
from latentline.models.online.pixel_stats import pixel_statistics

BY_NAME = {s.name: s for s in SCENARIOS}
# scenario -> (statistic, direction) it must move at its strong setting
MOVES = {
    "dimming": ("pixel_mean", -1),
    "brightening": ("pixel_mean", 1),
    "contrast_loss": ("pixel_contrast", -1),
    "defocus": ("pixel_sharpness", -1),
    "sensor_noise": ("pixel_sharpness", 1),
}


@pytest.fixture(scope="module")
def image() -> Image.Image:
    rng = np.random.default_rng(0)
    blocks = np.kron(rng.integers(30, 220, (8, 10)), np.ones((8, 8))).astype(np.uint8)
    return Image.fromarray(blocks).convert("RGB")


@pytest.mark.parametrize("name", MOVES)
def test_each_scenario_moves_its_statistic_and_keeps_the_frame(name, image):
    scenario, (statistic, sign) = BY_NAME[name], MOVES[name]
    changed = scenario.transform(image, np.random.default_rng(1), scenario.strong)
    assert changed.size == image.size and changed.mode == image.mode
    before, after = pixel_statistics(image)[statistic], pixel_statistics(changed)[statistic]
    assert sign * (after - before) > 0.01


def test_the_camera_shift_moves_the_content_and_the_material_fills_the_frame(image):
    shifted = np.asarray(camera_shift(image, None, 0.05), np.float64)
    assert shifted.shape == np.asarray(image).shape
    assert np.abs(shifted - np.asarray(image)).mean() > 5
    other = Image.new("L", (30, 20), 7)
    assert other_material(image, other).size == image.size and other_material(image, other).mode == "RGB"


def test_every_scenario_has_a_weaker_and_a_stronger_setting():
    for scenario in SCENARIOS:
        assert scenario.weak != scenario.strong
        assert abs(
            scenario.strong - (1.0 if scenario.name in ("dimming", "brightening", "contrast_loss") else 0.0)
        ) > abs(
            scenario.weak - (1.0 if scenario.name in ("dimming", "brightening", "contrast_loss") else 0.0)
        )


def test_the_runner_reports_every_scenario_and_finds_a_strong_dimming(pcb_dir, tmp_path):
    pools = [good_pool(pcb_dir)]
    flat = ImagePool("flat", [])
    flat.images = [Image.new("RGB", (40, 40), (90 + k % 7, 90, 90)) for k in range(20)]
    script = ScenarioScript(stable_events=400, scenario_events=150, seeds=(0,))
    report = evaluate_scenarios(
        pools + [flat], tmp_path, script, lambda: DriftMonitor(reference_events=100), progress=False
    )
    assert json.loads((tmp_path / "scenarios.json").read_text()) == report
    assert (tmp_path / "scenarios.png").stat().st_size > 10_000
    pcb = report["datasets"]["deeppcb-patches"]
    assert pcb["false_alarms"] == [0]
    assert set(pcb["delays"]) == {f"{s.name}/{k}" for s in SCENARIOS for k in ("weak", "strong")}
    found = pcb["runs"][0]["delays"]["dimming/strong"]
    assert found is not None and found["delay"] <= 100 and found["direction"] == "down"
    assert found["statistic"].startswith("pixel_")
    assert pcb["delays"]["material/strong"][0] is not None, "flat grey squares are not circuit boards"
