"""Name the defect, or say honestly that it cannot: known type, review, or unknown.

After "Investigating the Potential of Latent Space for the Classification of Paint Defects"
(Almhaithawi, Bellini, Chasparis and Cerquitelli, 2025), which labels confident samples
automatically and sends ambiguous ones to an operator (92 % accuracy, 11 % to review, on three
paint defects). Here both thresholds come from out-of-fold predictions on the labelled
training examples, never from test data:
- ``distance_threshold``: the ``unknown_quantile`` of the out-of-fold distances from a labelled
  example to its ``neighbours`` nearest labelled examples of other images; farther: unknown, a
  defect unlike every type seen (a classifier's probabilities alone would still name one).
- ``confidence_threshold``: the lowest top-class probability at which the out-of-fold
  predictions at or above it, among those within the distance threshold, are at least
  ``target_accuracy`` correct; below it: review. Parts beyond the distance are never named
  automatically, so their (mostly wrong) predictions must not raise the bar for the rest
  (measured on the fine-tuned path, deeppcb-patches, unknown beyond the 0.8 quantile: review of
  known types 0.30 -> 0.20 at the same auto accuracy, 0.99).

A classifier that learns its own space (``embed``: the patch head) has the distances measured
there, with the head of each calibration fold for the out-of-fold ones.

New types need no retraining run: ``learn`` refits the (small, fast) classifier on the fitted
examples plus the operators' ones and keeps the thresholds; the nearest-example distances of a
new type's region shrink as soon as its first examples are in.

Measured on deeppcb-patches (docs/defect-types.md; five types, 40 examples each): 96.9 %
accuracy on the parts named automatically with 22.9 % of known-type parts sent to review, and
75.3 % of the parts of a sixth, unseen type sent to review or unknown rather than misnamed.

>>> knn_distance(np.array([[1.0, 0, 0], [0, 0, 1.0]]), np.eye(3)[:2], neighbours=1).tolist()
[0.0, 1.0]
>>> confidence = np.array([0.99, 0.95, 0.9, 0.8, 0.6])
>>> correct = np.array([True, True, True, False, True])
>>> confidence_for_accuracy(confidence, correct, 0.95), confidence_for_accuracy(confidence, correct, 0.75)
(0.9, 0.6)
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

import numpy as np
from sklearn.model_selection import GroupKFold

from latentline.models.defect_types.base import TypeClassifier
from latentline.models.defect_types.registry import classifiers
from latentline.models.deviation_space import DeviationSpace, unit_rows
from latentline.schemas.verdict import TypeStatus


@dataclass(frozen=True)
class TypeDecision:
    status: TypeStatus
    label: str  # the most probable known type, whatever the status
    confidence: float  # its probability
    probabilities: dict[str, float]  # the top types, most probable first
    distance: float  # mean cosine distance to the nearest labelled examples
    reason: str | None  # why review or unknown


class OpenSetClassifier:
    def __init__(
        self,
        classifier: TypeClassifier,
        space: DeviationSpace | None = None,
        neighbours: int = 5,
        target_accuracy: float = 0.95,
        unknown_quantile: float = 0.95,
        folds: int = 5,
        top_k: int = 3,
        views: int = 8,
        descriptor: str = "centre",
        view_mean: bool = False,
        review_quantile: float | None = None,
    ):
        self.classifier = classifier
        self.space = space or DeviationSpace(n_components=512)
        self.neighbours = neighbours
        self.target_accuracy = target_accuracy
        self.unknown_quantile = unknown_quantile
        self.folds = folds
        self.top_k = top_k
        self.views = views  # flipped and turned copies per labelled example (models/encoding/images.DIHEDRAL)
        # the type latent it reads (models/defect_types/descriptor.py); "centre" for bundles
        # saved before the anomaly-weighted one existed
        self.descriptor = descriptor
        # a part's latent at decide time is the mean of its flipped and turned views (the tuned
        # path's embedding): held-out examples are then judged by the mean of their views too
        self.view_mean = view_mean
        # a band below the unknown line: parts farther from the labelled examples than this
        # quantile of the held-out ones go to review, not named, and ``unknown`` stays for the
        # clearly unseen (None: no band, the unknown line alone)
        self.review_quantile = review_quantile

    def get_params(self) -> dict:
        return {
            "classifier": {"name": self.classifier.name, "params": self.classifier.get_params()},
            "space": self.space.get_params(),
            "neighbours": self.neighbours,
            "target_accuracy": self.target_accuracy,
            "unknown_quantile": self.unknown_quantile,
            "folds": self.folds,
            "top_k": self.top_k,
            "views": self.views,
            "descriptor": self.descriptor,
            "view_mean": self.view_mean,
            "review_quantile": self.review_quantile,
        }

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.classifier.classes_]

    def fit(self, good_latents: np.ndarray, latents: np.ndarray, labels, groups=None, originals=None) -> Self:
        """``latents``: type latents of labelled defects (``descriptor``). ``groups``: the source image of
        each row (flipped and rotated copies share one), ``originals``: rows that are the
        images as taken; calibration holds out whole groups and predicts on originals only."""
        self.space.fit(good_latents)
        return self.fit_examples(latents, labels, groups, originals)

    def fit_examples(self, latents: np.ndarray, labels, groups=None, originals=None,
                     fold_latents: Callable[[np.ndarray], np.ndarray] | None = None) -> Self:
        """``fit`` with the deviation space already fitted on the good latents. ``fold_latents``:
        where the type latents themselves were learned from the labels (a fine-tuned network),
        given a calibration fold's training rows it returns every row's latents as a network
        trained on those rows alone sees them, so that out-of-fold stays out of fold."""
        labels = np.asarray(labels).astype(str)
        groups = np.arange(len(labels)) if groups is None else np.asarray(groups)
        originals = np.ones(len(labels), bool) if originals is None else np.asarray(originals, bool)
        self.vectors_ = self.space.transform(latents)
        self.labels_ = labels
        confidence, correct, distance = self._out_of_fold(groups, originals, fold_latents)
        self.distance_threshold_ = float(np.quantile(distance, self.unknown_quantile))
        self.review_distance_ = (self.distance_threshold_ if self.review_quantile is None
                                 else min(self.distance_threshold_,
                                          float(np.quantile(distance, self.review_quantile))))
        near = distance <= self.review_distance_
        self.confidence_threshold_ = confidence_for_accuracy(confidence[near], correct[near],
                                                             self.target_accuracy)
        self.calibration_ = {
            "out_of_fold_accuracy": float(correct.mean()),
            "out_of_fold_auto_share": float((near & (confidence >= self.confidence_threshold_)).mean()),
            "confidence_threshold": self.confidence_threshold_,
            "distance_threshold": self.distance_threshold_,
            "review_distance_threshold": self.review_distance_,
            "n_examples": int(originals.sum()),
            "n_rows": len(labels),
        }
        self.classifier.fit(self.vectors_, labels)
        self.examples_ = embedded(self.classifier, self.vectors_)
        return self

    def _out_of_fold(self, groups, originals, fold_latents=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        confidence, correct, distance = [], [], []
        folds = min(self.folds, len(np.unique(groups)))
        for fit_idx, held_idx in GroupKFold(folds).split(self.vectors_, groups=groups):
            held_idx = held_idx[originals[held_idx]]
            vectors = self.vectors_ if fold_latents is None else self.space.transform(fold_latents(fit_idx))
            held = view_means(vectors, groups, held_idx) if self.view_mean else vectors[held_idx]
            model = _fresh(self.classifier).fit(vectors[fit_idx], self.labels_[fit_idx])
            proba = model.predict_proba(held)
            confidence.append(proba.max(axis=1))
            correct.append(model.classes_[proba.argmax(axis=1)] == self.labels_[held_idx])
            distance.append(knn_distance(embedded(model, held), embedded(model, vectors[fit_idx]),
                                         self.neighbours))
        return np.concatenate(confidence), np.concatenate(correct), np.concatenate(distance)

    def learn(self, latents: np.ndarray, labels) -> "OpenSetClassifier":
        """A copy that also knows these labelled type latents (new types welcome)."""
        learned = OpenSetClassifier.from_arrays(self.get_params(), self.to_arrays())
        if len(labels):
            learned.vectors_ = np.concatenate([self.vectors_, self.space.transform(latents)])
            learned.labels_ = np.concatenate([self.labels_, np.asarray(labels).astype(str)])
            learned.classifier.fit(learned.vectors_, learned.labels_)
            learned.examples_ = embedded(learned.classifier, learned.vectors_)
        return learned

    def embedding(self, latents: np.ndarray) -> np.ndarray:
        """[N, dim] unit vectors of type latents, where the distances to known types are measured."""
        return embedded(self.classifier, self.space.transform(latents))

    def decide(self, latents: np.ndarray, unjudged: frozenset[str] = frozenset()) -> list[TypeDecision]:
        """``unjudged``: types whose distances this space cannot judge (taught after the space
        was learned): a part named one of them is never unknown here, whatever its distance."""
        if len(latents) == 0:
            return []
        vectors = self.space.transform(latents)
        proba = self.classifier.predict_proba(vectors)
        distances = knn_distance(embedded(self.classifier, vectors), self.examples_, self.neighbours)
        return [self._decision(p, float(d), unjudged) for p, d in zip(proba, distances)]

    def _decision(self, proba: np.ndarray, distance: float, unjudged: frozenset[str]) -> TypeDecision:
        order = np.argsort(proba)[::-1][: self.top_k]
        top = {str(self.classifier.classes_[i]): round(float(proba[i]), 4) for i in order}
        label, confidence = str(self.classifier.classes_[order[0]]), float(proba[order[0]])
        judged = label not in unjudged
        if distance > self.distance_threshold_ and judged:
            status = TypeStatus.UNKNOWN
            reason = (f"unlike every known type: distance {distance:.3f} to the nearest labelled "
                      f"examples exceeds {self.distance_threshold_:.3f}")
        elif distance > self.review_distance_ and judged:
            status = TypeStatus.REVIEW
            reason = (f"far from the labelled examples: distance {distance:.3f} exceeds "
                      f"{self.review_distance_:.3f}, most likely {label} {confidence:.2f}")
        elif confidence < self.confidence_threshold_:
            status = TypeStatus.REVIEW
            reason = "ambiguous: " + ", ".join(f"{k} {v:.2f}" for k, v in top.items()) + (
                f" (automatic labels need {self.confidence_threshold_:.2f})")
        else:
            status, reason = TypeStatus.KNOWN, None
        return TypeDecision(status, label, confidence, top, distance, reason)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return (
            {"vectors": self.vectors_, "labels": self.labels_,
             "thresholds": np.array([self.confidence_threshold_, self.distance_threshold_,
                                     self.review_distance_])}
            | {f"space_{k}": v for k, v in self.space.to_arrays().items()}
            | {f"classifier_{k}": v for k, v in self.classifier.to_arrays().items()}
        )

    @classmethod
    def from_arrays(cls, params: dict, arrays: dict[str, np.ndarray]) -> Self:
        def part(prefix: str) -> dict[str, np.ndarray]:
            return {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}

        spec = params["classifier"]
        classifier = classifiers()[spec["name"]].from_arrays(spec["params"], part("classifier_"))
        space = DeviationSpace.from_arrays(params["space"], part("space_"))
        options = {k: v for k, v in params.items() if k not in ("classifier", "space")}
        model = cls(classifier, space, **options)
        model.vectors_ = arrays["vectors"].astype(np.float32)
        model.labels_ = arrays["labels"].astype(str)
        thresholds = [float(t) for t in arrays["thresholds"]]  # bundles before the band: two
        model.confidence_threshold_, model.distance_threshold_ = thresholds[:2]
        model.review_distance_ = thresholds[2] if len(thresholds) > 2 else model.distance_threshold_
        model.examples_ = embedded(model.classifier, model.vectors_)
        return model


def embedded(classifier: TypeClassifier, vectors: np.ndarray) -> np.ndarray:
    """The classifier's own space where it has one (``embed``), else the vectors themselves."""
    return classifier.embed(vectors) if hasattr(classifier, "embed") else vectors


def knn_distance(vectors: np.ndarray, examples: np.ndarray, neighbours: int) -> np.ndarray:
    """Mean cosine distance from each unit vector to its ``neighbours`` nearest unit examples."""
    k = min(neighbours, len(examples))
    similarity = vectors @ examples.T
    nearest = -np.partition(-similarity, k - 1, axis=1)[:, :k]
    return 1.0 - nearest.mean(axis=1)


def confidence_for_accuracy(confidence: np.ndarray, correct: np.ndarray, target: float) -> float:
    """The lowest confidence whose predictions at or above it are ``target`` accurate (else
    just above the highest: then everything goes to review, the honest answer)."""
    order = np.argsort(-confidence)
    running = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    meeting = np.flatnonzero(running >= target)
    if len(meeting) == 0:
        return float(np.nextafter(confidence.max(), np.inf))
    return float(confidence[order][meeting[-1]])


def view_means(vectors: np.ndarray, groups: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Unit mean of the vectors of each of ``rows``' groups (an example's flipped and turned views)."""
    means = np.stack([vectors[groups == groups[row]].mean(axis=0) for row in rows]) if len(rows) else \
        np.zeros((0, vectors.shape[1]), vectors.dtype)
    return unit_rows(means).astype(vectors.dtype)


def _fresh(classifier: TypeClassifier) -> TypeClassifier:
    return type(classifier)(**classifier.get_params())
