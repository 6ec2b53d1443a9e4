"""Operators' labels become training examples that reach every worker and survive restarts.

The inspect agent keeps the classifier's latent and the image URI of every anomalous event in
the evidence bucket (``latents/<event_id>.npz``, a few kB: anomalies are a few per cent of
events). A label turns it into ``examples/<event_id>.npz``: the image encoded flipped and turned
as the fitted examples were (the classifier's ``views``; the kept latent alone if the image is
gone), the label and who gave it. Every worker lists that prefix every
``examples_sync_seconds`` and refits its classifier from the bundle's examples plus these. The
store, not a topic, holds them: a new or restarted worker reads the full set at once, and a
relabelled event simply overwrites its example (idempotent by event id).
"""

import asyncio
import io
import logging
import time
from collections.abc import Awaitable

import numpy as np

from latentline.models.dataset import GOOD
from latentline.models.encoding.images import ImageError, decode_image
from latentline.models.inspector import Inspector
from latentline.schemas import Decision, Label
from latentline.streams.settings import Settings
from latentline.streams.worker.metrics import WorkerMetrics
from latentline.streams.worker.store import MissingObject, ObjectStore, StoreUnavailable
from latentline.streams.worker.watch import Observation

log = logging.getLogger(__name__)


def latent_uri(settings: Settings, event_id: str) -> str:
    return f"s3://{settings.evidence_bucket}/latents/{event_id}.npz"


def example_uri(settings: Settings, event_id: str) -> str:
    return f"s3://{settings.evidence_bucket}/examples/{event_id}.npz"


def to_npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    return buffer.getvalue()


def from_npz(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        return dict(arrays)


class LatentArchive:
    """A watcher: keeps the classifier's latent of every anomalous event, best effort."""

    def __init__(self, settings: Settings, store: ObjectStore, encoder_key: str):
        self.settings, self.store, self.encoder_key = settings, store, encoder_key

    def observe(self, observations: list[Observation]) -> list[Awaitable]:
        return [self._keep(o) for o in observations
                if o.decision is not Decision.OK and o.type_latent is not None]

    async def _keep(self, o: Observation) -> None:
        data = to_npz(latent=o.type_latent.astype(np.float32), image_uri=o.event.image_uri,
                      encoder=self.encoder_key)
        try:
            await asyncio.get_running_loop().run_in_executor(
                None, self.store.put, latent_uri(self.settings, o.event.event_id), data
            )
        except Exception as exc:  # an archive miss costs one label's learning, never a verdict
            log.warning("latent of %s not kept: %s", o.event.event_id, exc)


class LabelLearner:
    """The labels agent's part: a label of an anomalous event becomes a training example."""

    def __init__(self, settings: Settings, store: ObjectStore, inspector: Inspector):
        self.settings, self.store, self.inspector = settings, store, inspector

    def learn(self, label: Label) -> str:
        """Blocking (store I/O). Returns the outcome counted in latentline_labels_total."""
        if label.label == GOOD:
            return "good"
        try:
            kept = from_npz(self.store.get(latent_uri(self.settings, label.event_id)))
        except MissingObject:
            log.warning("label %s for %s: no latent kept for it", label.label, label.event_id)
            return "no_latent"
        example = to_npz(latents=self._views(kept), encoder=kept["encoder"], image_uri=kept["image_uri"],
                         label=label.label, labelled_by=label.labelled_by,
                         labelled_at=label.labelled_at.isoformat())
        self.store.put(example_uri(self.settings, label.event_id), example)
        log.info("learned %s from %s (by %s)", label.label, label.event_id, label.labelled_by)
        return "learned"

    def _views(self, kept: dict[str, np.ndarray]) -> np.ndarray:
        uri = str(kept["image_uri"])
        try:
            image = decode_image(self.store.get(uri), self.settings.decode_limits())
        except (MissingObject, StoreUnavailable, ImageError) as exc:
            log.warning("image %s not available (%s): learning from its kept latent only", uri, exc)
            return kept["latent"][None]
        return self.inspector.example_latents(image)


class ExampleSync:
    """Every worker: refit the classifier when the set of labelled examples changes."""

    def __init__(self, settings: Settings, store: ObjectStore, inspector: Inspector, metrics: WorkerMetrics):
        self.settings, self.store, self.inspector, self.metrics = settings, store, inspector, metrics
        self.prefix = f"s3://{settings.evidence_bucket}/examples/"
        self.etags: dict[str, str] = {}
        self.examples: dict[str, tuple[np.ndarray, str]] = {}  # uri -> (latents [views, dim], label)
        self.encoder_key = inspector.bundle.type_latent_key()
        classifier = inspector.bundle.classifier
        # examples, not rows: each fitted example is stored in ``views`` flipped and turned copies
        fitted = classifier.labels_.size // classifier.views if classifier else 0
        metrics.classifier_examples.labels("fitted").set(fitted)
        metrics.classifier_types.set(len(classifier.classes) if classifier else 0)

    def refresh(self) -> bool:
        """Blocking (store I/O, a refit of a second or two): True when the classifier changed."""
        if self.inspector.bundle.classifier is None:
            return False
        listed = self.store.list(self.prefix)
        changed = [uri for uri, etag in listed.items() if self.etags.get(uri) != etag]
        removed = [uri for uri in self.examples if uri not in listed]
        for uri in changed:
            self._load(uri, listed[uri])
        for uri in removed:
            self.examples.pop(uri, None)
            self.etags.pop(uri, None)
        if not changed and not removed:
            return False
        self._refit()
        return True

    def _load(self, uri: str, etag: str) -> None:
        self.etags[uri] = etag
        try:
            arrays = from_npz(self.store.get(uri))
        except (MissingObject, ValueError, OSError) as exc:
            log.warning("example %s unreadable: %s", uri, exc)
            return
        if str(arrays["encoder"]) != self.encoder_key:  # another model's latents: useless here
            log.warning("example %s was encoded by another model; skipped", uri)
            return
        self.examples[uri] = (arrays["latents"], str(arrays["label"]))

    def _refit(self) -> None:
        started = time.perf_counter()
        items = list(self.examples.values())
        latents = np.concatenate([views for views, _ in items]) if items else np.empty((0, 0), np.float32)
        self.inspector.learn(latents, [label for views, label in items for _ in views])
        classifier = self.inspector.classifier
        self.metrics.classifier_examples.labels("labelled").set(len(items))
        self.metrics.classifier_types.set(len(classifier.classes) if classifier else 0)
        log.info("classifier refitted with %d labelled examples in %.1fs: types %s", len(items),
                 time.perf_counter() - started, classifier.classes if classifier else [])
