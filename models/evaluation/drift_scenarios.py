"""``latentline evaluate-scenarios``: the pixel-statistic drift watch against the scenario library.

Per dataset and seed: a stable run of good images (train/good and test/good, each pass a fresh
permutation) counts false alarms; then, from the state the stable run left, each scenario of
models/evaluation/scenarios.py at each strength runs on its own copy of the monitor until its
first alarm (the delay, in events) or ``scenario_events`` (never). The monitor is the worker's
DriftMonitor fed the pixel statistics the worker computes (models/online/pixel_stats.py), so no
encoder is needed and a run over two datasets, four seeds and 14 scenarios takes minutes on a
CPU. (The latent and score statistics are measured by ``latentline evaluate-stream``.)

Statistics are cached per (scenario, strength, image): a seed reorders the same images; sensor
noise is drawn from a generator seeded by the image's index, so a cached value stays valid.
"""

import copy
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from latentline.models.dataset import GOOD, list_images
from latentline.models.evaluation.scenarios import SCENARIOS, Scenario, other_material
from latentline.models.online.drift import DriftMonitor
from latentline.models.online.pixel_stats import pixel_statistics


@dataclass(frozen=True)
class ScenarioScript:
    stable_events: int = 2000
    scenario_events: int = 300
    seeds: tuple[int, ...] = (0, 1, 2, 3)


class ImagePool:
    """A dataset's good images, loaded once, with their statistics cached per scenario."""

    def __init__(self, name: str, paths: list[Path]):
        self.name, self.paths = name, paths
        self.images = [Image.open(p).convert("RGB") for p in paths]
        self.cache: dict[tuple, dict[str, float]] = {}

    def statistics(self, index: int, key: tuple = (), make: Callable[[], Image.Image] | None = None) -> dict:
        cached = self.cache.get((key, index))
        if cached is None:
            image = make() if make else self.images[index]
            cached = self.cache[(key, index)] = pixel_statistics(image)
        return cached


def good_pool(data_dir: Path) -> ImagePool:
    items = list_images(data_dir, "train", GOOD) + list_images(data_dir, "test", GOOD)
    return ImagePool(Path(data_dir).name, [i.path for i in items])


def evaluate_scenarios(
    pools: list[ImagePool],
    out_dir: Path,
    script: ScenarioScript = ScenarioScript(),
    monitor: Callable[[], DriftMonitor] = DriftMonitor,
    progress: bool = True,
) -> dict:
    """Every pool against every scenario; another pool gives each its different material."""
    results = {}
    for k, pool in enumerate(pools):
        other = pools[(k + 1) % len(pools)] if len(pools) > 1 else None
        results[pool.name] = run_dataset(pool, other, script, monitor, progress)
    report = {
        "script": asdict(script) | {"seeds": list(script.seeds)},
        "monitor": monitor().to_state() | {"tracks": {}},
        "datasets": results,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "scenarios.json").write_text(json.dumps(report, indent=2) + "\n")
    from latentline.models.evaluation.plots.scenarios import (
        plot_scenarios,  # matplotlib only when a report is written
    )

    plot_scenarios(out_dir / "scenarios.png", report)
    return report


def run_dataset(pool: ImagePool, other: ImagePool | None, script: ScenarioScript, monitor, progress) -> dict:
    runs = []
    for seed in script.seeds:
        started = time.perf_counter()
        runs.append(run_seed(pool, other, script, monitor, seed))
        if progress:
            print(
                f"{pool.name} seed {seed}: {runs[-1]['false_alarms']} false alarms, "
                f"{time.perf_counter() - started:.0f} s",
                flush=True,
            )
    return summarise(runs)


def run_seed(pool: ImagePool, other: ImagePool | None, script: ScenarioScript, monitor, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    order = draw(len(pool.images), script.stable_events + script.scenario_events, rng)
    stable = monitor()
    alarms = [
        a.statistic
        for t, i in enumerate(order[: script.stable_events])
        for a in stable.update(pool.statistics(i), float(t))
    ]
    after = order[script.stable_events :]
    other_order = draw(len(other.images), script.scenario_events, rng) if other else []
    delays = {}
    for scenario in SCENARIOS:
        if scenario.transform is None and other is None:
            continue
        for strength, value in scenario.strengths().items():
            events = scenario_events(pool, other, scenario, value, after, other_order)
            delays[f"{scenario.name}/{strength}"] = first_alarm(
                copy.deepcopy(stable), events, script.stable_events
            )
    return {
        "seed": seed,
        "false_alarms": len(alarms),
        "false_alarm_statistics": sorted(set(alarms)),
        "delays": delays,
    }


def scenario_events(pool, other, scenario: Scenario, value: float, order, other_order):
    """The statistics of each event of ``scenario`` at ``value``, lazily (a run stops at its alarm)."""
    key = (scenario.name, value)
    for k, i in enumerate(order):
        if scenario.transform is not None:
            make = lambda i=i: scenario.transform(pool.images[i], np.random.default_rng(i), value)  # noqa: E731
            yield pool.statistics(i, key, make)
        elif (k * value) % 1 + value >= 1:  # a share ``value`` of events, evenly spread
            j = other_order[k]
            yield pool.statistics(
                i, key + (j,), lambda i=i, j=j: other_material(pool.images[i], other.images[j])
            )
        else:
            yield pool.statistics(i)


def first_alarm(monitor: DriftMonitor, events, offset: int) -> dict | None:
    """The first alarm's delay (events since the change, 1 = at once) and what raised it."""
    for k, values in enumerate(events):
        alarms = monitor.update(values, float(offset + k))
        if alarms:
            a = alarms[0]
            return {
                "delay": k + 1,
                "statistic": a.statistic,
                "direction": a.direction,
                "change_in_std": None if a.change_in_std is None else round(a.change_in_std, 2),
            }
    return None


def draw(size: int, count: int, rng: np.random.Generator) -> list[int]:
    """``count`` indices into ``size`` items, each pass a fresh permutation (no repeat within a pass)."""
    passes = -(-count // size)
    return [int(i) for _ in range(passes) for i in rng.permutation(size)][:count]


def summarise(runs: list[dict]) -> dict:
    names = list(runs[0]["delays"])
    delays = {n: [r["delays"][n]["delay"] if r["delays"][n] else None for r in runs] for n in names}
    return {
        "false_alarms": [r["false_alarms"] for r in runs],
        "false_alarm_statistics": sorted({s for r in runs for s in r["false_alarm_statistics"]}),
        "delays": delays,
        "worst_delay": {n: None if None in d else max(d) for n, d in delays.items()},
        "runs": runs,
    }
