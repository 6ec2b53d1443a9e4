"""``latentline evaluate`` for calibrated quantities: DATA_DIR/test/<type>/values.csv is the truth.

A folder is measured as the quantity of its name, or as the bundle's only quantity. Reported per
quantity: mean absolute and root mean square error, Spearman's rank correlation (does the scale
order the images?), and the coverage of the expanded uncertainty (the share of errors within U,
which should be close to the stated coverage).
"""

from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from latentline.models.dataset import VALUES_CSV, LabelledImage, read_values
from latentline.models.inspector import Inspector
from latentline.models.latents import Latents
from latentline.models.metrology.measurement import features
from latentline.models.metrology.quantity import QuantityScale


def measured_folders(data_dir: Path, quantities: dict) -> dict[str, list[str]]:
    """{quantity: [test types]} for the test folders with a values.csv this bundle can measure."""
    matched = defaultdict(list)
    for values in sorted((Path(data_dir) / "test").glob(f"*/{VALUES_CSV}")):
        folder = values.parent.name
        if folder in quantities:
            matched[folder].append(folder)
        elif len(quantities) == 1:
            matched[next(iter(quantities))].append(folder)
    return dict(matched)


def measurement_report(inspector: Inspector, data_dir: Path, items: list[LabelledImage], latents: Latents,
                       out_dir: Path | None = None) -> dict:
    """{quantity: metrics} and, with ``out_dir``, each quantity's plots
    (models/evaluation/plots/measurement.py)."""
    quantities, scorer = inspector.bundle.quantities, inspector.bundle.scorer
    report = {}
    for name, folders in measured_folders(data_dir, quantities).items():
        scale = quantities[name]
        index, truth = _truth(data_dir, items, folders)
        latent = features(scorer, latents.take(index), scale.space)
        position, measured = scale.position(latent), scale.measure(latent)
        report[name] = _metrics(scale, measured, truth) | {"folders": folders}
        if out_dir is not None:
            from latentline.models.evaluation.plots import measurement as measurement_plots

            paths = [items[i].path for i in index]
            measurement_plots.write_all(out_dir, scale, measured, truth, position, paths, scorer)
    return report


def _truth(data_dir: Path, items: list[LabelledImage], folders: list[str]) -> tuple[np.ndarray, np.ndarray]:
    values = {folder: read_values(Path(data_dir) / "test" / folder) for folder in folders}
    index = [i for i, item in enumerate(items) if item.path.name in values.get(item.label, {})]
    return np.array(index, dtype=int), np.array([values[items[i].label][items[i].path.name] for i in index])


def _metrics(scale: QuantityScale, measured: np.ndarray, truth: np.ndarray) -> dict:
    errors = measured - truth
    span = float(truth.max() - truth.min())
    return {
        "unit": scale.unit,
        "n": len(truth),
        "measurement_mae": float(np.abs(errors).mean()),
        "measurement_rmse": float(np.sqrt(np.mean(errors**2))),
        "mae_share_of_range": float(np.abs(errors).mean() / span) if span > 0 else None,
        "spearman": float(spearmanr(measured, truth)[0]),
        "coverage": float(np.mean(np.abs(errors) <= scale.expanded_uncertainty_)),
        "stated_coverage": scale.coverage,
        "expanded_uncertainty": scale.expanded_uncertainty_,
        "in_range_share": float(scale.in_range(measured).mean()),
    }
