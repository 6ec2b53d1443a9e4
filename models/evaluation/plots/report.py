"""The evaluation report's figures: ROC, score histograms, open-set confusion, latent-space maps."""

from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.metrics import roc_curve

from latentline.models.dataset import GOOD
from latentline.models.defect_types.open_set import TypeDecision
from latentline.models.evaluation.plots.figure import plt, save_figure
from latentline.models.inspector import Assessment, Inspector
from latentline.schemas import TypeStatus


def write_all(out_dir: Path, a: Assessment, truth: np.ndarray, inspector: Inspector,
              type_latents: np.ndarray | None, decisions: list[TypeDecision] | None,
              trained: set[str]) -> None:
    """``decisions``, ``type_latents``: the defect-type decisions of the images whose truth is not
    good and what the classifier read of them."""
    thresholds = inspector.thresholds
    roc(out_dir / "roc.png", a.scores, truth)
    histograms(out_dir / "score_histograms.png", a.scores, truth, thresholds.threshold,
               thresholds.review_threshold)
    defects = truth != GOOD
    if decisions is not None:
        shown = [d.label if d.status is TypeStatus.KNOWN else d.status.value for d in decisions]
        confusion(out_dir / "confusion.png", truth[defects], shown, inspector.classifier.classes)
        latent_map(out_dir / "latent_map.png", inspector.classifier.embedding(type_latents),
                   truth[defects], shown, trained)


def roc(path: Path, scores: np.ndarray, truth: np.ndarray) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    good = truth == GOOD
    for label in sorted(set(truth) - {GOOD}):
        keep = good | (truth == label)
        fpr, tpr, _ = roc_curve(truth[keep] == label, scores[keep])
        ax.plot(fpr, tpr, linewidth=1, label=label)
    fpr, tpr, _ = roc_curve(~good, scores)
    ax.plot(fpr, tpr, color="black", linewidth=2, label="all defects")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set(xlabel="false positive rate (good parts)", ylabel="true positive rate", title="Image ROC")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def histograms(path: Path, scores: np.ndarray, truth: np.ndarray, threshold: float, review: float) -> None:
    """Soukup and Pinetz's figure: one score distribution per type against the thresholds."""
    labels = [GOOD] + sorted(set(truth) - {GOOD})
    fig, ax = plt.subplots(figsize=(8, 4.5))
    bins = np.linspace(scores.min(), np.quantile(scores, 0.995), 60)
    for label in labels:
        ax.hist(scores[truth == label], bins=bins, histtype="step", linewidth=2 if label == GOOD else 1,
                density=True, label=label)
    ax.axvline(review, color="orange", linestyle="--", label="review threshold")
    ax.axvline(threshold, color="red", linestyle="--", label="defect threshold")
    ax.set(xlabel="anomaly score", ylabel="density", title="Anomaly scores per type (test)")
    ax.legend(fontsize=8, ncols=2)
    save_figure(fig, path)


def confusion(path: Path, truth: np.ndarray, shown: list[str], classes: list[str]) -> None:
    rows = classes + sorted(set(truth) - set(classes))
    columns = classes + [TypeStatus.REVIEW.value, TypeStatus.UNKNOWN.value]
    counts = np.zeros((len(rows), len(columns)), int)
    for t, s in zip(truth, shown):
        counts[rows.index(t), columns.index(s)] += 1
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.1 * len(columns) + 2, 0.6 * len(rows) + 2))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i, j in np.ndindex(counts.shape):
        ax.text(j, i, str(counts[i, j]), ha="center", va="center",
                color="white" if share[i, j] > 0.6 else "black", fontsize=9)
    ax.set_xticks(range(len(columns)), columns, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), [r if r in classes else f"{r} (new)" for r in rows])
    ax.set(xlabel="decision", ylabel="true type", title="Defect types: named, review, unknown")
    save_figure(fig, path)


def latent_map(path: Path, vectors: np.ndarray, truth: np.ndarray, shown: list[str],
               trained: set[str]) -> None:
    """PCA and t-SNE of the anomalies' deviation vectors, by true type and by decision."""
    projections = {
        "PCA": PCA(2, random_state=0).fit_transform(vectors),
        "t-SNE": TSNE(2, metric="cosine", init="pca", random_state=0,
                      perplexity=min(30, max(2, len(vectors) // 4))).fit_transform(vectors),
    }
    # one colour per type in both panels; review and unknown as dark crosses
    # (types decided but absent from the truth too: a reference set's spots called pin holes)
    colours = {t: plt.cm.tab10(k % 10) for k, t in enumerate(sorted(set(truth) | set(shown)))}
    colours |= {TypeStatus.REVIEW.value: "dimgrey", TypeStatus.UNKNOWN.value: "black"}
    fig, axes = plt.subplots(2, 2, figsize=(12, 11))
    for row, (name, xy) in enumerate(projections.items()):
        _scatter(axes[row, 0], xy, truth, colours, f"{name}, true type",
                 lambda t: t if t in trained else f"{t} (new)")
        _scatter(axes[row, 1], xy, np.array(shown), colours, f"{name}, decision", str)
    save_figure(fig, path)


def _scatter(ax, xy: np.ndarray, groups: np.ndarray, colours: dict, title: str, name) -> None:
    for group in sorted(set(groups)):
        mine = groups == group
        marker = "x" if group in (TypeStatus.REVIEW.value, TypeStatus.UNKNOWN.value) else "o"
        ax.scatter(xy[mine, 0], xy[mine, 1], s=9, marker=marker, alpha=0.7, color=colours[group],
                   label=name(group))
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=8, markerscale=2)


def image_grid(path: Path, panels: list[tuple], columns: int) -> None:
    """``panels``: (image, overlay, caption); each shown as the image above its overlay (colour
    from a normalised cell value of 0.3, red at 1; models/overlay.py)."""
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(2 * rows, columns, figsize=(2.4 * columns, 2.3 * rows * 2), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for k, (image, overlaid, caption) in enumerate(panels):
        row, column = divmod(k, columns)
        axes[2 * row, column].imshow(image.convert("RGB"))
        axes[2 * row, column].set_title(caption, fontsize=8)
        axes[2 * row + 1, column].imshow(overlaid)
    save_figure(fig, path)


def loss_curve(path: Path, history: dict) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in ("train_loss", "val_loss"):
        values = np.asarray(history.get(name, []))
        if len(values):
            ax.plot(np.arange(1, len(values) + 1), values, label=name.replace("_", " "))
    ax.set(xlabel="epoch", ylabel="loss", yscale="log", title="Autoencoder training (good images only)")
    ax.legend()
    save_figure(fig, path)


def separation(path: Path, groups: dict[str, dict[str, np.ndarray]]) -> None:
    """``groups``: split (train / validation / defect) -> score name -> scores: one panel per
    score name, the three splits' distributions in each (Soukup and Pinetz, 2018, Table I)."""
    names = list(next(iter(groups.values())))
    fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        values = np.concatenate([g[name] for g in groups.values()])
        bins = np.linspace(values.min(), np.quantile(values, 0.995), 60)
        for split, scores in groups.items():
            ax.hist(scores[name], bins=bins, histtype="step", density=True, linewidth=1.5,
                    label=f"{split} (median {np.median(scores[name]):.3g})")
        ax.set(xlabel=f"{name} score", ylabel="density", title=f"{name} score: train, validation, defect")
        ax.legend(fontsize=8)
    save_figure(fig, path)
