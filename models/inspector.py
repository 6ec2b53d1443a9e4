"""A loaded bundle ready to inspect batches: prepare (threads) -> infer (one thread)."""

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from latentline.models.bundle import ModelBundle
from latentline.models.defect_types.descriptor import describe, needs_anomaly_maps, pooled
from latentline.models.defect_types.open_set import OpenSetClassifier, TypeDecision
from latentline.models.defect_types.tuned import DESCRIPTOR as TUNED
from latentline.models.defect_types.tuned import TunedOpenSet
from latentline.models.encoding.encoder import PooledEncoder
from latentline.models.encoding.files import encode_files
from latentline.models.encoding.images import dihedral_view
from latentline.models.latents import Latents
from latentline.models.metrology.measurement import measure
from latentline.models.scoring.base import encoder_inputs, place, score_batch
from latentline.schemas import Decision


@dataclass(frozen=True)
class Assessment:
    scores: np.ndarray  # normalised: 0.5 is the defect threshold (models/scoring/threshold.py)
    decisions: list[Decision]
    summaries: np.ndarray  # [N, statistics] drift statistics (LatentReference.summaries)
    directions: list[np.ndarray | None]  # deviation directions of the anomalous parts (novelty clustering)
    types: list[TypeDecision | None]  # for anomalous parts when the model knows defect types
    type_latents: list[np.ndarray | None]  # what the classifier read of the anomalous parts
    maps: list[np.ndarray | None]  # normalised anomaly maps [h, w] of the anomalous parts
    measurements: dict[str, np.ndarray]  # {quantity: [N] values} of the calibrated quantities


@dataclass(frozen=True)
class BatchResult:
    assessment: Assessment
    latents: Latents
    encode_seconds: float
    score_seconds: float


class Inspector:
    def __init__(self, bundle: ModelBundle, device: str = "auto"):
        self.bundle = bundle
        network = bundle.classifier.network if isinstance(bundle.classifier, TunedOpenSet) else None
        self.encoder = PooledEncoder(bundle.encoder, device=device,
                                     trunk_layer=network.trunk_layer if network else None)
        place(bundle.scorer, self.encoder.device)  # the bank is searched where the encoder runs
        if network:  # and the type network runs there, on the encoder's trunk at its precision
            network.to(self.encoder.device, self.encoder.config.precision)
        # Replaced whole (never mutated) when operators' labels arrive: a batch in flight keeps
        # the classifier it started with.
        self.classifier: OpenSetClassifier | TunedOpenSet | None = bundle.classifier
        self.thresholds = bundle.thresholds.normalised()  # what verdicts report

    @property
    def encoder_inputs(self) -> dict[str, bool]:
        """What the encoder keeps of a batch: the scorer's needs, and the trunk map that a type
        network cuts its windows around the defects from (a fine-tuned bundle)."""
        return encoder_inputs(self.bundle.scorer) | {"trunk": self.encoder.trunk_layer is not None}

    @property
    def maps_on_device(self) -> bool:
        """Leave the patch maps and the trunk on an accelerator between the encoder and a scorer
        that searches there (and the type network): only the numbers of the verdicts then cross
        to the host. On a CPU the host is the device, and numpy shares the tensor's memory."""
        return self.encoder.device.type != "cpu" and getattr(self.bundle.scorer, "reads_device_maps", False)

    def warm_up(self, forward_batch: int | None = None, batch_size: int = 16) -> int:
        """One blank part through the whole model before the first real one: the first forward
        pass allocates, and the search over the bank is built on first use (an HNSW index over
        a 9,408-row bank takes about a second on a 2-core CPU), which would otherwise land on
        the first parts of a line; the fine-tuned type network likewise, which runs on anomalous
        parts alone. ``forward_batch``: images per encoder pass, 0 to measure the
        fastest for micro-batches of ``batch_size`` tiles on this machine (a tiled bundle's
        images take several: streams/worker/inspect.forward_passes), None to leave it as it is.
        Returns the images per encoder pass (``batch_size`` while passes take whole batches)."""
        blank = self.encoder.blank()
        self.infer(blank[None])
        if isinstance(self.bundle.classifier, TunedOpenSet):  # a blank part is no anomaly: run it here
            self.bundle.classifier.network.warm_up()
        if forward_batch == 0:
            across, down = self.encoder.config.tiles or (1, 1)
            self.encoder.fastest_forward_batch(blank, max(1, batch_size // (across * down)),
                                               **self.encoder_inputs)
        elif forward_batch is not None:
            self.encoder.forward_batch = forward_batch
        return self.encoder.forward_batch or batch_size

    @property
    def version(self) -> str:
        return self.bundle.version

    def prepare(self, image: Image.Image) -> np.ndarray:
        return self.encoder.prepare(image)

    def encode_files(self, paths: list[Path], progress: bool = True, **options) -> Latents:
        """Latents of image files with what this bundle's scorer needs (models/encoding/files.py)."""
        return encode_files(self.encoder, paths, progress=progress, **self.encoder_inputs,
                            **options)

    def infer(self, batch: np.ndarray) -> BatchResult:
        started = time.perf_counter()
        latents = self.encoder.encode_views(batch, **self.encoder_inputs,
                                            maps_on_device=self.maps_on_device)
        encoded = time.perf_counter()
        assessment = self.assess(latents)
        return BatchResult(assessment, latents, encoded - started, time.perf_counter() - encoded)

    def assess(self, latents: Latents, maps: bool = True) -> Assessment:
        """Scores, decisions, drift summaries, deviation directions, defect types and (``maps``)
        the anomaly maps of the anomalous parts, from one pass of the scorer over the batch."""
        scored = score_batch(self.bundle.scorer, latents)
        decisions = self.bundle.thresholds.decide(scored.scores)
        reference = self.bundle.reference
        type_latents = _for_anomalous(decisions, lambda anomalous: self.type_latents(
            latents.take(anomalous), None if scored.maps is None else scored.maps[anomalous]))
        return Assessment(
            self.bundle.thresholds.normalise(scored.scores),
            decisions,
            reference.summaries(latents.full),
            _for_anomalous(decisions, lambda anomalous: reference.directions(
                latents.full[anomalous] if reference.descriptor is None
                else pooled(reference.descriptor, np.stack([type_latents[i] for i in anomalous])))),
            self._types(type_latents),
            type_latents,
            self._maps(latents, decisions, scored.maps) if maps else [None] * len(decisions),
            measure(self.bundle.quantities, self.bundle.scorer, latents, scored.spaces),
        )

    def anomaly_maps(self, latents: Latents) -> np.ndarray:
        """[N, h, w] on the normalised scale: cells near 0.5 look as anomalous as a defect."""
        return self.bundle.thresholds.normalise(self.bundle.scorer.anomaly_maps(latents))

    def _maps(self, latents: Latents, decisions: list[Decision], known: np.ndarray | None,
              ) -> list[np.ndarray | None]:
        """The anomalous parts' maps: from the scorer's pass when it gave them (``known``)."""
        if known is not None:
            normalise = self.bundle.thresholds.normalise
            return _for_anomalous(decisions, lambda anomalous: normalise(known[anomalous]))
        return _for_anomalous(decisions, lambda anomalous: self.anomaly_maps(latents.take(anomalous)))

    def type_latents(self, latents: Latents, anomaly_maps: np.ndarray | None = None) -> np.ndarray:
        """[N, dim] what the defect-type classifier reads of each part (its ``descriptor``,
        models/defect_types/descriptor.py); the anomaly maps are computed when it needs them and
        they are not given."""
        kind = self.bundle.descriptor
        if needs_anomaly_maps(kind) and anomaly_maps is None:
            anomaly_maps = self.bundle.scorer.anomaly_maps(latents)
        if kind == TUNED:
            return self._tuned_latents(latents, anomaly_maps)
        return describe(kind, latents, anomaly_maps)

    def _tuned_latents(self, latents: Latents, anomaly_maps: np.ndarray) -> np.ndarray:
        """``peak`` and the type network's embedding of the window around each defect, cut from
        the encoder's trunk (models/defect_types/tuned.py): the network runs on the anomalous
        parts alone, all of a batch's at once."""
        network = self.bundle.classifier.network
        windows = network.windows(latents.trunk, anomaly_maps, self.encoder.config.tiles or (1, 1))
        return np.concatenate([describe("peak", latents, anomaly_maps), network.embed(windows)], axis=1)

    def _types(self, type_latents: list[np.ndarray | None]) -> list[TypeDecision | None]:
        classifier = self.classifier  # one classifier for the whole batch, even if labels swap it
        anomalous = [i for i, latent in enumerate(type_latents) if latent is not None]
        types: list[TypeDecision | None] = [None] * len(type_latents)
        if classifier is not None and anomalous:
            decided = classifier.decide(np.stack([type_latents[i] for i in anomalous]))
            for i, decision in zip(anomalous, decided):
                types[i] = decision
        return types

    def example_latents(self, image: Image.Image) -> np.ndarray:
        """Type latents of ``image`` flipped and turned [views, dim], as many views as the
        classifier was fitted with: what an operator's label of it teaches."""
        views = self.bundle.classifier.views if self.bundle.classifier else 1
        batch = np.stack([self.encoder.prepare(dihedral_view(image, k)) for k in range(views)])
        return self.type_latents(self.encoder.encode_views(batch, **self.encoder_inputs))

    def learn(self, latents: np.ndarray, labels: list[str]) -> None:
        """Know the bundle's types plus these operator-labelled type latents."""
        if self.bundle.classifier is not None:
            self.classifier = self.bundle.classifier.learn(latents, labels)


def _for_anomalous(decisions: list[Decision], compute) -> list:
    """``compute(indices)`` for the parts that are not ok, None for the rest, in batch order."""
    results: list = [None] * len(decisions)
    anomalous = [i for i, d in enumerate(decisions) if d is not Decision.OK]
    if anomalous:
        for i, value in zip(anomalous, compute(anomalous)):
            results[i] = value
    return results
