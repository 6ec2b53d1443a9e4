"""``latentline evaluate``: how well a bundle finds and names defects on DATA_DIR/test.

Writes metrics.json and PNG plots (models/evaluation/plots/report.py) into the report folder. Anomaly metrics
cover every test image; defect-type metrics cover the anomalous test images (ground truth), each
classified whatever its anomaly decision, so the two stages are measured separately.
"""

import csv
import json
import time
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import (
    adjusted_rand_score,
    average_precision_score,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
    silhouette_score,
)

from latentline.models.dataset import GOOD, list_images
from latentline.models.defect_types.open_set import OpenSetClassifier, TypeDecision
from latentline.models.encoding.images import decode_image
from latentline.models.evaluation.localisation import anomaly_grid, localisation
from latentline.models.evaluation.measurement import measurement_report
from latentline.models.evaluation.search_recall import search_recall
from latentline.models.inspector import Assessment, Inspector
from latentline.schemas import Decision, TypeStatus

NEW_TYPE_LABELS = 10  # operator labels given to each new type in the learning check


def evaluate(inspector: Inspector, data_dir: Path, out_dir: Path, progress: bool = True) -> dict:
    items = list_images(data_dir, "test")
    truth = np.array([i.label for i in items])
    started = time.perf_counter()
    latents = inspector.encode_files([i.path for i in items], progress=progress, desc="test images")
    assessment = inspector.assess(latents, maps=False)
    elapsed = time.perf_counter() - started
    metrics = anomaly_metrics(assessment, truth, inspector.thresholds.threshold)
    scorer = inspector.bundle.scorer
    metrics |= localisation(inspector, latents, items, data_dir)
    metrics |= search_recall(scorer, latents)
    metrics |= {"images_per_second": len(items) / elapsed, "n_test": len(items),
                "model_version": inspector.version, "method": scorer.name}
    if hasattr(scorer, "expensive_share_"):  # a cascade: how much of the expensive stage ran
        metrics["expensive_share"] = scorer.expensive_share_
    classifier = inspector.classifier
    # a reference set (models/evaluation/reference_set.py) has test/ only: every defect type is then new
    has_train = (Path(data_dir) / "train").is_dir()
    trained = {i.label for i in list_images(data_dir, "train")} - {GOOD} if has_train else set()
    defects = truth != GOOD
    decisions = None  # defect-type decisions of the defect images, when the model has types
    type_latents = None  # theirs, what the classifier reads
    if classifier is not None and defects.any():
        type_latents = inspector.type_latents(latents.take(np.flatnonzero(defects)))
        decisions = classifier.decide(type_latents)
        metrics |= type_metrics(decisions, truth[defects], trained)
        metrics |= clustering_metrics(classifier, type_latents, truth[defects])
        paths = [i.path for i, d in zip(items, defects) if d]
        metrics["new_type_learning"] = new_type_learning(inspector, paths, type_latents, truth[defects],
                                                         trained)
    out_dir.mkdir(parents=True, exist_ok=True)
    if inspector.bundle.quantities:
        metrics["measurements"] = measurement_report(inspector, data_dir, items, latents, out_dir)
    (out_dir / "metrics.json").write_text(json.dumps(finite(metrics), indent=2, allow_nan=False) + "\n")
    write_scores(out_dir / SCORES_CSV, items, assessment, defects, decisions)
    from latentline.models.evaluation.plots import (
        report as report_plots,  # matplotlib only when a report is written
    )

    report_plots.write_all(out_dir, assessment, truth, inspector, type_latents, decisions, trained)
    anomaly_grid(out_dir / "anomaly_maps.png", inspector, latents, items, truth, assessment.scores)
    if hasattr(scorer, "score_parts"):  # autoencoders: Soukup and Pinetz's figures
        autoencoder_plots(out_dir, inspector, data_dir, latents, truth, progress)
    return metrics


SCORES_CSV = "scores.csv"
SCORE_COLUMNS = ("file", "label", "score", "decision", "defect_type", "type_status", "reason")


def finite(value):
    """``value`` with every NaN or infinite float replaced by None: metrics.json is strict JSON
    (a browser's ``JSON.parse`` refuses NaN), a figure that could not be computed is null.

    >>> finite({"auroc": float("nan"), "n": [1, float("inf"), 0.5]})
    {'auroc': None, 'n': [1, None, 0.5]}
    """
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return None
    return value


def write_scores(path: Path, items: list, assessment: Assessment, defects: np.ndarray, decisions) -> None:
    """One row per test image: its file (relative to test/), true label, normalised score (0.5
    is the defect threshold), decision, and for defect images the type named, its status and
    why it went to review or unknown."""
    named = dict(zip(np.flatnonzero(defects), decisions)) if decisions is not None else {}
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(SCORE_COLUMNS)
        for index, item in enumerate(items):
            kind = named.get(index)
            writer.writerow([f"{item.label}/{item.path.name}", item.label, f"{assessment.scores[index]:.6f}",
                             assessment.decisions[index].value, kind.label if kind else "",
                             kind.status.value if kind else "", (kind.reason or "") if kind else ""])


def autoencoder_plots(out_dir: Path, inspector: Inspector, data_dir: Path, latents, truth: np.ndarray,
                      progress: bool, max_train: int = 500) -> None:
    """The training loss curve, and Soukup and Pinetz's Table I (2018) as a figure: train,
    validation (good test) and defect score distributions, reconstruction and latent score side by
    side."""
    from latentline.models.evaluation.plots import report as report_plots

    scorer = inspector.bundle.scorer
    report_plots.loss_curve(out_dir / "loss.png", scorer.history_)
    train_paths = [i.path for i in list_images(data_dir, "train", GOOD)][:max_train]
    train = scorer.score_parts(inspector.encode_files(train_paths, progress=progress, desc="train images"))
    test = scorer.score_parts(latents)
    groups = {"train": train, "validation": {k: v[truth == GOOD] for k, v in test.items()},
              "defect": {k: v[truth != GOOD] for k, v in test.items()}}
    report_plots.separation(out_dir / "separation.png", groups)


def anomaly_metrics(a: Assessment, truth: np.ndarray, threshold: float) -> dict:
    defective = truth != GOOD
    flagged = np.array([d is Decision.DEFECT for d in a.decisions])
    precision, recall, f1, _ = precision_recall_fscore_support(
        defective, flagged, average="binary", zero_division=0
    )
    both = defective.any() and (~defective).any()
    per_type = {}
    for label in sorted(set(truth)):
        mine = truth == label
        per_type[label] = {
            "n": int(mine.sum()),
            "mean_score": float(a.scores[mine].mean()),
            "defect_share": float(flagged[mine].mean()),
            "review_or_defect_share": float(np.mean([a.decisions[i] is not Decision.OK
                                                     for i in np.flatnonzero(mine)])),
        }
        if label != GOOD and (truth == GOOD).any():
            keep = mine | (truth == GOOD)
            per_type[label]["image_auroc"] = float(roc_auc_score(mine[keep], a.scores[keep]))
    return {
        "image_auroc": float(roc_auc_score(defective, a.scores)) if both else None,
        "image_ap": float(average_precision_score(defective, a.scores)) if both else None,
            "threshold": float(threshold),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "per_type": per_type,
    }


def type_metrics(decisions: list[TypeDecision], truth: np.ndarray, trained: set[str]) -> dict:
    predicted = np.array([d.label for d in decisions])
    status = np.array([d.status for d in decisions])
    known = np.isin(truth, list(trained))
    auto = known & (status == TypeStatus.KNOWN)
    new = ~known
    per_new = {t: float(np.isin(status[truth == t], [TypeStatus.REVIEW, TypeStatus.UNKNOWN]).mean())
               for t in sorted(set(truth[new]))}
    return {
        "classification_accuracy": float((predicted[known] == truth[known]).mean())
        if known.any() else None,
        "macro_f1": float(f1_score(truth[known], predicted[known], average="macro")) if known.any() else None,
        # operators' workload on the types the model knows; new types going to review is the
        # desired outcome, measured by new_type_recall, and included in review_rate_all
        "review_rate": float((status[known] != TypeStatus.KNOWN).mean()) if known.any() else None,
        "review_rate_all": float((status != TypeStatus.KNOWN).mean()),
        "auto_accuracy": float((predicted[auto] == truth[auto]).mean()) if auto.any() else None,
        "unknown_rate": float((status[known] == TypeStatus.UNKNOWN).mean()) if known.any() else None,
        "new_type_recall": float(np.mean(list(per_new.values()))) if per_new else None,
        "new_type_recall_per_type": per_new,
        "n_known_type_images": int(known.sum()),
        "n_new_type_images": int(new.sum()),
    }


def clustering_metrics(classifier: OpenSetClassifier, type_latents: np.ndarray, truth: np.ndarray) -> dict:
    """Almhaithawi et al.'s unsupervised view (2025): do the anomalies' latents group by type
    without labels?"""
    vectors = classifier.embedding(type_latents)
    types = sorted(set(truth))
    if len(types) < 2:
        return {"adjusted_rand_index": None, "silhouette": None}
    clusters = KMeans(len(types), n_init=10, random_state=0).fit_predict(vectors)
    return {
        "adjusted_rand_index": float(adjusted_rand_score(truth, clusters)),
        "silhouette": float(silhouette_score(vectors, truth, metric="cosine")),
    }


def new_type_learning(inspector: Inspector, paths: list[Path], type_latents: np.ndarray, truth: np.ndarray,
                      trained: set[str], labels_given: int = NEW_TYPE_LABELS, seed: int = 0) -> dict:
    """Each type absent from train/: label ``labels_given`` of its images the way an operator
    would (streams/worker/examples.py: flipped and turned views, ``learn``, no retraining run), then
    classify the rest of the test set again."""
    rng = np.random.default_rng(seed)
    report = {}
    for new_type in sorted(set(truth) - trained):
        members = rng.permutation(np.flatnonzero(truth == new_type))
        taught, rest = members[:labels_given], np.setdiff1d(np.arange(len(truth)), members[:labels_given])
        views = [inspector.example_latents(decode_image(paths[i].read_bytes())) for i in taught]
        learned = inspector.classifier.learn(np.concatenate(views), [new_type] * sum(map(len, views)))
        decisions = learned.decide(type_latents[rest])
        predicted = np.array([d.label for d in decisions])
        auto = np.array([d.status is TypeStatus.KNOWN for d in decisions])
        mine = truth[rest] == new_type
        known = np.isin(truth[rest], list(trained))
        report[new_type] = {
            "labels_given": len(taught),
            "recall_as_type": float((predicted[mine] == new_type).mean()),
            "auto_as_type": float(((predicted == new_type) & auto)[mine].mean()),
            "known_types_accuracy_after": float((predicted[known] == truth[rest][known]).mean())
            if known.any() else None,
        }
    return report
