"""Data hygiene before fitting: which labelled examples look wrong.

After the outlier analysis of "Investigating the Potential of Latent Space for the
Classification of Paint Defects" (Almhaithawi et al., 2025). Three independent witnesses, each
on the examples' deviation vectors:
- DBSCAN ("A Density-Based Algorithm for Discovering Clusters in Large Spatial Databases with
  Noise", Ester, Kriegel, Sander and Xu, 1996) with cosine distance within each type: points in
  no dense group of their type;
- Isolation Forest ("Isolation Forest", Liu, Ting and Zhou, 2008) within each type: points that
  are easy to isolate from their type;
- the classifier, out of fold: a confident prediction of another type (a likely wrong label).
An example is a suspect when at least ``min_votes`` witnesses agree; ``fit --drop-suspects``
leaves suspects out. On deeppcb-patches it flags 5 of 200 examples, the clearest a pin hole filed
under copper (docs/defect-types.md).
"""

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.cluster import DBSCAN
from sklearn.ensemble import IsolationForest
from sklearn.model_selection import StratifiedKFold

from latentline.models.defect_types.base import TypeClassifier
from latentline.models.defect_types.open_set import knn_distance


@dataclass(frozen=True)
class Suspect:
    index: int
    label: str
    reasons: list[str]
    predicted: str  # the out-of-fold classifier's type for it

    def to_dict(self) -> dict:
        return asdict(self)


class Hygiene:
    def __init__(self, classifier: TypeClassifier, min_votes: int = 2, neighbours: int = 3,
                 eps_quantile: float = 0.9, contamination: float = 0.05, disagreement_confidence: float = 0.8,
                 folds: int = 5, seed: int = 0):
        self.classifier = classifier
        self.min_votes, self.neighbours, self.eps_quantile = min_votes, neighbours, eps_quantile
        self.contamination, self.disagreement_confidence = contamination, disagreement_confidence
        self.folds, self.seed = folds, seed

    def suspects(self, vectors: np.ndarray, labels) -> list[Suspect]:
        """``vectors``: unit deviation vectors of the examples as taken (no augmented copies)."""
        labels = np.asarray(labels).astype(str)
        predicted, confidence = self._out_of_fold(vectors, labels)
        witnesses = {
            "dbscan_noise": self._dbscan_noise(vectors, labels),
            "isolation_forest": self._isolated(vectors, labels),
            "classifier_disagrees": (predicted != labels) & (confidence >= self.disagreement_confidence),
        }
        found = []
        for i in range(len(labels)):
            reasons = [name for name, flags in witnesses.items() if flags[i]]
            if len(reasons) >= self.min_votes:
                found.append(Suspect(i, labels[i], reasons, predicted[i]))
        return found

    def _per_type(self, labels: np.ndarray, flag_type) -> np.ndarray:
        flags = np.zeros(len(labels), bool)
        for label in np.unique(labels):
            members = np.flatnonzero(labels == label)
            if len(members) > self.neighbours + 1:
                flags[members] = flag_type(members)
        return flags

    def _dbscan_noise(self, vectors: np.ndarray, labels: np.ndarray) -> np.ndarray:
        def noise(members):
            own = vectors[members]
            # eps from the type's own spacing: the mean distance to the k nearest others (the
            # nearest of k + 1 is the point itself, at distance 0)
            k = self.neighbours
            spacing = knn_distance(own, own, k + 1) * (k + 1) / k
            eps = float(np.quantile(spacing, self.eps_quantile))
            found = DBSCAN(eps=max(eps, 1e-6), min_samples=self.neighbours, metric="cosine").fit(own)
            return found.labels_ == -1

        return self._per_type(labels, noise)

    def _isolated(self, vectors: np.ndarray, labels: np.ndarray) -> np.ndarray:
        def isolated(members):
            forest = IsolationForest(contamination=self.contamination, random_state=self.seed)
            return forest.fit_predict(vectors[members]) == -1

        return self._per_type(labels, isolated)

    def _out_of_fold(self, vectors: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        predicted = labels.copy()
        confidence = np.zeros(len(labels))
        folds = min(self.folds, np.bincount(np.unique(labels, return_inverse=True)[1]).min())
        if folds < 2:
            return predicted, confidence
        splitter = StratifiedKFold(folds, shuffle=True, random_state=self.seed)
        for fit_idx, held_idx in splitter.split(vectors, labels):
            model = type(self.classifier)(**self.classifier.get_params())
            model.fit(vectors[fit_idx], labels[fit_idx])
            proba = model.predict_proba(vectors[held_idx])
            predicted[held_idx] = model.classes_[proba.argmax(axis=1)]
            confidence[held_idx] = proba.max(axis=1)
        return predicted, confidence
