"""Figures for a calibrated quantity: measured against true with the uncertainty band, test
images sorted along the latent direction, and, for autoencoder bundles, images decoded while
walking along it (what changes when the quantity changes)."""

from pathlib import Path

import numpy as np
from PIL import Image

from latentline.models.evaluation.plots.figure import plt, save_figure

STRIP = 8  # images per strip


def write_all(out_dir: Path, scale, measured: np.ndarray, truth: np.ndarray, position: np.ndarray,
              paths: list[Path], scorer) -> None:
    measured_vs_true(out_dir / f"measurement_{scale.name}.png", scale, measured, truth)
    order = np.argsort(position)
    picks = order[np.linspace(0, len(order) - 1, min(STRIP, len(order))).round().astype(int)]
    images = [Image.open(paths[i]).convert("RGB") for i in picks]
    captions = [f"true {truth[i]:.3g}\nmeasured {measured[i]:.3g}" for i in picks]
    strip(out_dir / f"sorted_{scale.name}.png", images, captions,
          f"Test images along the {scale.name} direction ({scale.unit})")
    if scale.space == "code" and hasattr(scorer, "decode_codes"):
        codes, values = scale.walk(STRIP)
        decoded = [Image.fromarray(image) for image in scorer.decode_codes(codes)]
        strip(out_dir / f"decoded_{scale.name}.png", decoded, [f"{v:.3g} {scale.unit}" for v in values],
              f"Decoded while moving along the {scale.name} direction")


def measured_vs_true(path: Path, scale, measured: np.ndarray, truth: np.ndarray) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    low, high = min(truth.min(), measured.min()), max(truth.max(), measured.max())
    line = np.array([low, high])
    u = scale.expanded_uncertainty_
    ax.fill_between(line, line - u, line + u, color="tab:blue", alpha=0.15,
                    label=f"true +- U (U = {u:.3g} {scale.unit}, k = {scale.coverage_factor_:.2f})")
    ax.plot(line, line, color="grey", linestyle=":")
    inside = np.abs(measured - truth) <= u
    ax.scatter(truth[inside], measured[inside], s=10, label=f"within U ({inside.mean():.0%})")
    ax.scatter(truth[~inside], measured[~inside], s=14, color="red", marker="x", label="outside U")
    ax.set(xlabel=f"true {scale.name} ({scale.unit})", ylabel=f"measured ({scale.unit})",
           title=f"{scale.name}: {scale.direction_kind_} direction in the {scale.space} latent")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def strip(path: Path, images: list[Image.Image], captions: list[str], title: str) -> None:
    fig, axes = plt.subplots(1, len(images), figsize=(1.6 * len(images), 2.3), squeeze=False)
    for ax, image, caption in zip(axes[0], images, captions):
        ax.imshow(image)
        ax.set_title(caption, fontsize=7)
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    save_figure(fig, path)
