"""Fit the defect-type classifier on DATA_DIR/train/<type>/ (tens of examples per type).

Few examples go further flipped and rotated (models/encoding/images.DIHEDRAL; pass ``views=1`` where
orientation matters). Each example's copies share a group, so calibration never holds out a
copy of a training image.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentline.models.dataset import GOOD, LabelledImage, list_images
from latentline.models.defect_types.descriptor import pooled
from latentline.models.defect_types.hygiene import Hygiene, Suspect
from latentline.models.defect_types.open_set import OpenSetClassifier
from latentline.models.defect_types.registry import make_classifier
from latentline.models.defect_types.tuned import TunedOpenSet
from latentline.models.deviation_space import DeviationSpace
from latentline.models.encoding.images import dihedral_view

log = logging.getLogger(__name__)

# (paths, transform=, desc=, progress=) -> [N, dim] type latents of the image files, each image
# passed through ``transform`` first (models/training/fit.py: type_latents_of_files)
DescribeFiles = Callable[..., np.ndarray]


@dataclass(frozen=True)
class LabelledLatents:
    latents: np.ndarray  # type latents (models/defect_types/descriptor.py), [rows, dim]
    labels: np.ndarray
    groups: np.ndarray  # source image index of each row
    originals: np.ndarray  # bool: the row is the image as taken

    def without(self, groups: set[int]) -> "LabelledLatents":
        return self.take(~np.isin(self.groups, list(groups)))

    def take(self, rows: np.ndarray) -> "LabelledLatents":
        return LabelledLatents(self.latents[rows], self.labels[rows], self.groups[rows], self.originals[rows])


@dataclass(frozen=True)
class TypeFit:
    classifier: OpenSetClassifier | TunedOpenSet
    suspects: list[Suspect]
    dropped: list[str]  # file names left out
    items: list[LabelledImage]


def labelled_defects(data_dir: Path, max_per_type: int | None = None) -> list[LabelledImage]:
    """train/<type>/ images of every defect type (all but good)."""
    items = [i for i in list_images(data_dir, "train") if not i.is_good]
    by_type: dict[str, list[LabelledImage]] = {}
    for item in items:
        by_type.setdefault(item.label, []).append(item)
    return [i for group in by_type.values() for i in group[:max_per_type]]


def encode_labelled(describe_files: DescribeFiles, items: list[LabelledImage], views: int = 8,
                    progress: bool = True) -> LabelledLatents:
    paths = [i.path for i in items]
    parts = []
    for k in range(views):
        transform = (lambda image, k=k: dihedral_view(image, k)) if k else None
        desc = f"defect examples {k + 1}/{views}"
        parts.append(describe_files(paths, transform=transform, desc=desc, progress=progress))
    n = len(items)
    return LabelledLatents(
        latents=np.concatenate(parts),
        labels=np.tile([i.label for i in items], views),
        groups=np.tile(np.arange(n), views),
        originals=np.arange(n * views) < n,
    )


def fit_types(describe_files: DescribeFiles, good_latents: np.ndarray, items: list[LabelledImage],
              model: OpenSetClassifier | None = None, drop_suspects: bool = False,
              progress: bool = True) -> TypeFit:
    """``good_latents``: type latents of good images, the space deviations are measured in."""
    model = model or OpenSetClassifier(make_classifier())
    examples = encode_labelled(describe_files, items, model.views, progress)
    return fit_encoded(model, good_latents, examples, items, drop_suspects)[0]


def fit_encoded(model: OpenSetClassifier, good_latents: np.ndarray, examples: LabelledLatents,
                items: list[LabelledImage], drop_suspects: bool = False) -> tuple[TypeFit, np.ndarray]:
    """``fit_types`` on examples already described; also returns the rows it kept (bool)."""
    model.space.fit(good_latents)
    as_taken = examples.originals
    suspects = _suspects(model, good_latents, examples.latents[as_taken], examples.labels[as_taken])
    for s in suspects:
        log.warning("suspect training example %s (%s): %s",
                    items[s.index].path.name, s.label, ", ".join(s.reasons))
    dropped = {s.index for s in suspects} if drop_suspects else set()
    kept = ~np.isin(examples.groups, list(dropped))
    examples = examples.without(dropped)
    model.fit_examples(examples.latents, examples.labels, examples.groups, examples.originals)
    return TypeFit(model, suspects, [items[i].path.name for i in sorted(dropped)], items), kept


def _suspects(model: OpenSetClassifier, good_latents: np.ndarray, latents: np.ndarray, labels) -> list:
    """Data hygiene on the examples as taken. The patch head's cells are judged pooled (as the
    peak descriptor) with the default classifier as the witness: density and isolation in the
    raw values of 64 unordered cells say nothing about a label."""
    if model.descriptor != "cells":
        return Hygiene(model.classifier).suspects(model.space.transform(latents), labels)
    space = DeviationSpace(n_components=512).fit(pooled("cells", good_latents))  # the default's
    return Hygiene(make_classifier()).suspects(space.transform(pooled("cells", latents)), labels)


def has_defect_types(data_dir: Path) -> bool:
    root = Path(data_dir) / "train"
    return any(p.is_dir() and p.name != GOOD for p in root.iterdir()) if root.is_dir() else False
