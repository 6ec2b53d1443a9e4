"""A loaded bundle ready to inspect batches: prepare (threads) -> infer (one thread)."""

import time
from dataclasses import dataclass

import numpy as np
from PIL import Image

from models.bundle import ModelBundle
from models.encoder import Latents, PooledEncoder
from models.images import dihedral_view
from models.open_set import OpenSetClassifier, TypeDecision
from schemas import Decision


@dataclass(frozen=True)
class Assessment:
    scores: np.ndarray
    decisions: list[Decision]
    summaries: np.ndarray  # [N, statistics] drift statistics (LatentReference.summaries)
    directions: np.ndarray  # [N, components] deviation directions (novelty clustering)
    types: list[TypeDecision | None]  # for anomalous parts when the model knows defect types


@dataclass(frozen=True)
class BatchResult:
    assessment: Assessment
    latents: Latents
    encode_seconds: float
    score_seconds: float


class Inspector:
    def __init__(self, bundle: ModelBundle, device: str = "auto"):
        self.bundle = bundle
        self.encoder = PooledEncoder(bundle.encoder, device=device)
        # Replaced whole (never mutated) when operators' labels arrive: a batch in flight keeps
        # the classifier it started with.
        self.classifier: OpenSetClassifier | None = bundle.classifier

    @property
    def version(self) -> str:
        return self.bundle.version

    def prepare(self, image: Image.Image) -> np.ndarray:
        return self.encoder.prepare(image)

    def infer(self, batch: np.ndarray) -> BatchResult:
        started = time.perf_counter()
        latents = self.encoder.encode_views(batch)
        encoded = time.perf_counter()
        assessment = self.assess(latents)
        return BatchResult(assessment, latents, encoded - started, time.perf_counter() - encoded)

    def assess(self, latents: Latents) -> Assessment:
        """Scores, decisions, drift summaries, deviation directions and defect types."""
        scores = self.bundle.scorer.score(latents.full)
        decisions = self.bundle.thresholds.decide(scores)
        reference = self.bundle.reference
        return Assessment(
            scores,
            decisions,
            reference.summaries(latents.full),
            reference.directions(latents.full),
            self._types(latents.centre, decisions),
        )

    def _types(self, centre: np.ndarray, decisions: list[Decision]) -> list[TypeDecision | None]:
        types: list[TypeDecision | None] = [None] * len(decisions)
        anomalous = [i for i, d in enumerate(decisions) if d is not Decision.OK]
        if self.classifier is not None and anomalous:
            for i, decision in zip(anomalous, self.classifier.decide(centre[anomalous])):
                types[i] = decision
        return types

    def example_latents(self, image: Image.Image) -> np.ndarray:
        """Centre latents of ``image`` flipped and turned [views, dim], as many views as the
        classifier was fitted with: what an operator's label of it teaches."""
        views = self.bundle.classifier.views if self.bundle.classifier else 1
        batch = np.stack([self.encoder.prepare(dihedral_view(image, k)) for k in range(views)])
        return self.encoder.encode_views(batch).centre

    def learn(self, latents: np.ndarray, labels: list[str]) -> None:
        """Know the bundle's types plus these operator-labelled centre latents."""
        if self.bundle.classifier is not None:
            self.classifier = self.bundle.classifier.learn(latents, labels)
