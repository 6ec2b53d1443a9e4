"""``latentline worker``: load the model, create topics, serve metrics, run the Faust worker."""

import asyncio
import logging
import shutil
from pathlib import Path

import faust

from latentline.models.bundle import ModelBundle
from latentline.models.inspector import Inspector
from latentline.streams.settings import Settings
from latentline.streams.worker.app import (
    create_app,
    install_example_sync,
    install_inspect_agent,
    install_novelty_agents,
)
from latentline.streams.worker.examples import ExampleSync, LabelLearner, LatentArchive
from latentline.streams.worker.inspect import BatchProcessor
from latentline.streams.worker.metrics import WorkerMetrics
from latentline.streams.worker.retry import Backoff, wait_at_start
from latentline.streams.worker.review import ReviewFeed
from latentline.streams.worker.store import ObjectStore, S3Location, StoreUnavailable, check_allow_list
from latentline.streams.worker.topics import ensure_topics
from latentline.streams.worker.watch import DriftWatch, NoveltyWatch, SightingFeed

log = logging.getLogger(__name__)


def load_bundle(settings: Settings, store: ObjectStore) -> ModelBundle:
    """From a directory, or from an s3:// prefix through a local copy in the state directory."""
    if settings.model_uri.startswith("s3://"):
        location = S3Location.prefix(settings.model_uri)
        local = settings.state_dir / "models" / location.bucket / location.key
        shutil.rmtree(local, ignore_errors=True)  # never mix files of two bundle versions
        return ModelBundle.load(store.download_dir(settings.model_uri, local))
    return ModelBundle.load(Path(settings.model_uri))


def _prepare_store(settings: Settings, store: ObjectStore) -> ModelBundle:
    store.ensure_bucket(settings.evidence_bucket)
    return load_bundle(settings, store)


def _store_down(exc: BaseException) -> bool:
    return isinstance(exc, StoreUnavailable)


def build_worker(settings: Settings) -> tuple[faust.App, WorkerMetrics]:
    check_allow_list(settings.image_locations())  # a typo stops the start, not every event
    store = ObjectStore(settings)
    bundle = wait_at_start(lambda: _prepare_store(settings, store), _store_down,
                           Backoff(settings.retry_initial_seconds, settings.retry_max_seconds),
                           "object store unavailable at start")
    inspector = Inspector(bundle, device=settings.device)
    passes = inspector.warm_up(settings.forward_batch, settings.batch_max_size)
    log.info("model %s on %s, forward passes of %s images", bundle.version, inspector.encoder.device, passes)
    metrics = WorkerMetrics()
    metrics.model_info.labels(bundle.version).set(1)
    metrics.watch_device(inspector.encoder.device)
    app = create_app(settings)

    def make_processor(publisher, ledger, drift_state):
        watchers = [
            DriftWatch(settings, bundle.reference, drift_state, publisher, metrics, bundle.version),
            SightingFeed(settings, publisher, metrics, bundle.version),
            ReviewFeed(settings, publisher, metrics, bundle.version),
            LatentArchive(settings, store, bundle.type_latent_key()),
        ]
        return BatchProcessor(inspector, store, settings, metrics, publisher, ledger, watchers)

    def make_watch(publisher, state):
        return NoveltyWatch(settings, state, publisher, store, metrics)

    install_inspect_agent(app, settings, make_processor, metrics)
    install_novelty_agents(app, settings, make_watch, LabelLearner(settings, store, inspector), metrics)
    install_example_sync(app, settings, ExampleSync(settings, store, inspector, metrics))
    return app, metrics


def run_worker(settings: Settings) -> None:
    asyncio.run(ensure_topics(settings))
    app, metrics = build_worker(settings)
    metrics.serve(settings.metrics_port)
    worker = faust.Worker(app, loglevel=settings.log_level.upper(), redirect_stdouts=False)
    worker.execute_from_commandline()
