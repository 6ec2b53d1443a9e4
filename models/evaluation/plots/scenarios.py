"""Detection delay per scenario and dataset: the worst of the seeds, missed runs drawn at the cap."""

from pathlib import Path

import numpy as np

from latentline.models.evaluation.plots.figure import plt, save_figure

TARGET = 100  # issue 16: each scenario at its stronger setting within 100 events


def plot_scenarios(path: Path, report: dict) -> None:
    datasets = report["datasets"]
    cap = report["script"]["scenario_events"]
    names = list(next(iter(datasets.values()))["worst_delay"])
    fig, ax = plt.subplots(figsize=(13, 5))
    width = 0.8 / len(datasets)
    x = np.arange(len(names))
    for k, (dataset, result) in enumerate(datasets.items()):
        worst = [result["worst_delay"].get(n) for n in names]
        heights = [cap if w is None else w for w in worst]
        bars = ax.bar(
            x + (k - (len(datasets) - 1) / 2) * width,
            heights,
            width,
            label=f"{dataset} (false alarms per seed: {result['false_alarms']})",
        )
        for bar, w in zip(bars, worst):
            if w is None:
                bar.set_hatch("//")
                ax.annotate(
                    "never", (bar.get_x() + bar.get_width() / 2, cap), ha="center", va="bottom", fontsize=7
                )
    ax.axhline(TARGET, color="red", linestyle=":", label=f"target ({TARGET} events)")
    ax.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel(f"worst delay over {len(report['script']['seeds'])} seeds (events)")
    ax.set_title(
        f"Pixel-statistic drift watch: detection delay per scenario (hatched: not found within {cap} events)"
    )
    ax.legend(fontsize=8)
    save_figure(fig, path)
