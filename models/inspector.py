"""A loaded bundle ready to inspect batches: prepare (threads) -> infer (one thread)."""

import time
from dataclasses import dataclass

import numpy as np
from PIL import Image

from models.bundle import ModelBundle
from models.encoder import PooledEncoder
from schemas import Decision


@dataclass(frozen=True)
class BatchResult:
    scores: np.ndarray
    decisions: list[Decision]
    summaries: np.ndarray  # [N, statistics] drift statistics (LatentReference.summaries)
    directions: np.ndarray  # [N, components] deviation directions (novelty clustering)
    encode_seconds: float
    score_seconds: float


class Inspector:
    def __init__(self, bundle: ModelBundle, device: str = "auto"):
        self.bundle = bundle
        self.encoder = PooledEncoder(bundle.encoder, device=device)

    @property
    def version(self) -> str:
        return self.bundle.version

    def prepare(self, image: Image.Image) -> np.ndarray:
        return self.encoder.prepare(image)

    def infer(self, batch: np.ndarray) -> BatchResult:
        started = time.perf_counter()
        latents = self.encoder.encode(batch)
        encoded = time.perf_counter()
        scores, decisions, summaries, directions = self.assess(latents)
        return BatchResult(
            scores, decisions, summaries, directions, encoded - started, time.perf_counter() - encoded
        )

    def assess(self, latents: np.ndarray) -> tuple[np.ndarray, list[Decision], np.ndarray, np.ndarray]:
        """Scores, decisions, drift summaries and deviation directions of encoded images."""
        scores = self.bundle.scorer.score(latents)
        reference = self.bundle.reference
        return (
            scores,
            self.bundle.thresholds.decide(scores),
            reference.summaries(latents),
            reference.directions(latents).astype(np.float32),
        )
