"""The replayed score stream with the moments the online components spoke up."""

from pathlib import Path

import numpy as np

from latentline.models.evaluation.plots.figure import plt, save_figure


def plot_stream(path: Path, stable, drifted, novelty, before, drift_run, novelty_run,
                threshold: float) -> None:
    fig, axes = plt.subplots(2, 1, figsize=(13, 7.5), sharex=True, sharey=True)
    start = len(stable.scores)
    branches = (
        (axes[0], drifted, drift_run, f"lighting change from event {start}"),
        (axes[1], novelty, novelty_run, f"types absent from train/ from event {start}"),
    )
    for ax, branch, run, title in branches:
        _scores(ax, stable, 0, "good (stable)", "tab:blue")
        is_new = np.array([label != "good" for label in branch.labels])
        index = np.arange(start, start + len(branch.scores))
        colour = "tab:orange" if branch.name == "drift" else "tab:blue"
        ax.scatter(index[~is_new], branch.scores[~is_new], s=4, color=colour, alpha=0.5,
                   label="good, relit" if branch.name == "drift" else None)
        if is_new.any():
            ax.scatter(index[is_new], branch.scores[is_new], s=8, color="tab:purple", label="new type")
        ax.axvline(start, color="black", linestyle="--", linewidth=1)
        ax.axhline(threshold, color="grey", linestyle=":", label="defect threshold")
        _events(ax, before, run)
        ax.set_title(title)
        ax.set_ylabel("anomaly score")
        ax.legend(loc="upper left", fontsize=8, ncols=3)
    axes[1].set_xlabel("event")
    save_figure(fig, path)


def _scores(ax, phase, offset: int, label: str, colour: str) -> None:
    ax.scatter(np.arange(offset, offset + len(phase.scores)), phase.scores, s=4, color=colour, alpha=0.5,
               label=label)


def _events(ax, before, run) -> None:
    top = ax.get_ylim()[1]
    alarms = sorted({i for i, _ in before.alarms + run.alarms})
    if alarms:
        ax.scatter(alarms, [top * 0.97] * len(alarms), marker="v", color="red", s=60, label="drift alarm")
    found = [c["index"] for c in before.candidates + run.candidates]
    if found:
        ax.scatter(found, [top * 0.9] * len(found), marker="*", color="darkviolet", s=140,
                   label="new-type candidate")
