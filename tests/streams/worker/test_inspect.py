"""BatchProcessor without Kafka: outcomes per event, including failures hard to cause on a broker."""

import asyncio
import dataclasses
import io
import uuid
from datetime import UTC, datetime

import numpy as np
import pytest
import torch
from moto.server import ThreadedMotoServer
from PIL import Image

from latentline.models.encoding.config import EncoderConfig
from latentline.models.inspector import Inspector
from latentline.models.metrology.quantity import QuantityScale
from latentline.models.online.pixel_stats import pixel_statistics
from latentline.models.scoring.threshold import Thresholds
from latentline.models.training.fit import fit_bundle
from latentline.schemas import CameraEvent, DeadLetter, ErrorKind, Verdict
from latentline.streams.lab.embedded import free_port, s3_server, wait_for_port
from latentline.streams.settings import Settings
from latentline.streams.worker.inspect import BatchProcessor, Incoming, Item, forward_passes
from latentline.streams.worker.ledger import TableLedger
from latentline.streams.worker.metrics import WorkerMetrics
from latentline.streams.worker.store import ObjectStore
from tests.streams.conftest import DictState


class BrokenInspector(Inspector):
    def infer(self, batch):
        raise RuntimeError("the model cannot run")


class FailsOnDarkImages(Inspector):
    """Fails whenever its batch holds a uniformly dark image: only that event is to blame."""

    def infer(self, batch):
        if any(float(np.ptp(image)) == 0.0 for image in batch):
            raise ValueError("cannot normalise a flat image")
        return super().infer(batch)


class RunsOutOfMemoryTwice(Inspector):
    failures = 0

    def infer(self, batch):
        if self.failures < 2:
            self.failures += 1
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return super().infer(batch)


class ScoresNaN(Inspector):
    def infer(self, batch):
        result = super().infer(batch)
        result.assessment.scores[0] = np.nan
        return result


@pytest.fixture(scope="module")
def bundle(pcb_dir, tmp_path_factory):
    small = tmp_path_factory.mktemp("data")
    (small / "train" / "good").mkdir(parents=True)
    for path in sorted((pcb_dir / "train" / "good").iterdir())[:20]:
        (small / "train" / "good" / path.name).write_bytes(path.read_bytes())
    return fit_bundle(small, EncoderConfig(weights=None, image_size=64), progress=False)


@pytest.fixture(scope="module")
def settings():
    with s3_server() as url:
        settings = Settings(store_url=url, metrics_port=0)
        ObjectStore(settings).ensure_bucket(settings.image_bucket)
        yield settings


def run(processor, events: list[CameraEvent]) -> None:
    batch = [Incoming(e.to_bytes(), "camera.events", 0, i) for i, e in enumerate(events)]
    asyncio.run(processor.process(batch))


def upload_event(settings, pcb_dir) -> CameraEvent:
    data = next((pcb_dir / "test" / "good").iterdir()).read_bytes()
    uri = ObjectStore(settings).put(f"s3://{settings.image_bucket}/{uuid.uuid4()}.png", data)
    return CameraEvent(event_id=str(uuid.uuid4()), camera_id="cam-1", line_id="l",
                       captured_at=datetime.now(UTC), image_uri=uri)


def processor_for(inspector, settings, publisher):
    processor = BatchProcessor(inspector, ObjectStore(settings), settings, WorkerMetrics(),
                               publisher, TableLedger(DictState(), 3600))
    return processor, publisher


def test_same_event_twice_in_a_batch_gets_one_verdict(bundle, settings, pcb_dir, publisher):
    processor, publisher = processor_for(Inspector(bundle, "cpu"), settings, publisher)
    event = upload_event(settings, pcb_dir)
    run(processor, [event, event])
    verdicts = [Verdict.from_bytes(v) for t, _, v in publisher.sent if t == settings.verdicts_topic]
    assert [v.event_id for v in verdicts] == [event.event_id]
    assert publisher.sent[0][1] == "cam-1"
    run(processor, [event])  # and again in a later batch
    assert len(publisher.sent) == 1


def letters_of(publisher, settings) -> list[DeadLetter]:
    return [DeadLetter.from_bytes(v) for v in publisher.on(settings.dlq_topic)]


def test_a_model_failing_on_every_event_dead_letters_each_with_the_reason(bundle, settings, pcb_dir,
                                                                         publisher):
    processor, publisher = processor_for(BrokenInspector(bundle, "cpu"), settings, publisher)
    events = [upload_event(settings, pcb_dir) for _ in range(3)]
    run(processor, events)
    letters = letters_of(publisher, settings)
    assert sorted(d.event_id for d in letters) == sorted(e.event_id for e in events)
    assert {d.error_kind for d in letters} == {ErrorKind.PROCESSING_ERROR}
    assert "the model cannot run" in letters[0].error_message


def test_a_batch_the_model_fails_on_costs_only_the_event_to_blame(bundle, settings, pcb_dir, publisher):
    processor, publisher = processor_for(FailsOnDarkImages(bundle, "cpu"), settings, publisher)
    dark = io.BytesIO()
    Image.new("L", (64, 64)).save(dark, "PNG")
    uri = ObjectStore(settings).put(f"s3://{settings.image_bucket}/{uuid.uuid4()}.png", dark.getvalue())
    culprit = CameraEvent(event_id="dark", camera_id="cam-1", line_id="l", captured_at=datetime.now(UTC),
                          image_uri=uri)
    good = [upload_event(settings, pcb_dir) for _ in range(3)]
    run(processor, [good[0], culprit, *good[1:]])
    [letter] = letters_of(publisher, settings)
    assert letter.event_id == "dark" and letter.error_kind is ErrorKind.PROCESSING_ERROR
    verdicts = [Verdict.from_bytes(v) for v in publisher.on(settings.verdicts_topic)]
    assert sorted(v.event_id for v in verdicts) == sorted(e.event_id for e in good)


def test_device_out_of_memory_is_waited_out_and_the_same_events_get_verdicts(bundle, settings, pcb_dir,
                                                                           publisher):
    fast = settings.model_copy(update={"retry_initial_seconds": 0.01})
    processor, publisher = processor_for(RunsOutOfMemoryTwice(bundle, "cpu"), fast, publisher)
    events = [upload_event(settings, pcb_dir) for _ in range(2)]
    run(processor, events)
    assert not publisher.on(settings.dlq_topic)
    assert len(publisher.on(settings.verdicts_topic)) == 2
    assert processor.metrics.retries.labels("device")._value.get() == 2
    assert processor.metrics.paused.labels("device")._value.get() == 0


def test_a_nan_score_dead_letters_that_event_and_answers_the_others(bundle, settings, pcb_dir, publisher):
    processor, publisher = processor_for(ScoresNaN(bundle, "cpu"), settings, publisher)
    events = [upload_event(settings, pcb_dir) for _ in range(2)]
    run(processor, events)
    [letter] = letters_of(publisher, settings)
    assert letter.event_id == events[0].event_id and "nan" in letter.error_message
    [verdict] = [Verdict.from_bytes(v) for v in publisher.on(settings.verdicts_topic)]
    assert verdict.event_id == events[1].event_id


def test_a_store_outage_pauses_the_batch_until_the_store_is_back(bundle, settings, pcb_dir, publisher):
    """The store is really away (nothing listens on its port), then comes back with its data
    (moto keeps objects per process): the same event gets its verdict, nothing is dead-lettered."""
    event = upload_event(settings, pcb_dir)
    port = free_port()
    away = settings.model_copy(update={"store_url": f"http://127.0.0.1:{port}", "retry_initial_seconds": 0.1,
                                       "retry_max_seconds": 0.4})
    processor, publisher = processor_for(Inspector(bundle, "cpu"), away, publisher)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)

    async def outage_then_back():
        task = asyncio.create_task(processor.process([Incoming(event.to_bytes(), "camera.events", 0, 0)]))
        retries = processor.metrics.retries.labels("store")
        for _ in range(300):  # at least two failed fetches, however slow a loaded machine makes each
            if retries._value.get() >= 2:
                break
            await asyncio.sleep(0.1)
        assert not task.done() and not publisher.sent
        assert processor.metrics.paused.labels("store")._value.get() == 1
        await asyncio.to_thread(server.start)
        await asyncio.to_thread(wait_for_port, port)
        await asyncio.wait_for(task, 30)

    try:
        asyncio.run(outage_then_back())
    finally:
        server.stop()
    assert [Verdict.from_bytes(v).event_id for v in publisher.on(settings.verdicts_topic)] == [event.event_id]
    assert not publisher.on(settings.dlq_topic)
    assert processor.metrics.paused.labels("store")._value.get() == 0
    assert processor.metrics.retries.labels("store")._value.get() >= 2


def everything_a_defect(bundle):
    return dataclasses.replace(bundle, thresholds=Thresholds(threshold=0.0, review_threshold=0.0,
                                                             good_median=-1.0))


def test_anomalous_parts_get_an_anomaly_map_overlay_in_the_evidence_bucket(bundle, settings, pcb_dir,
                                                                          publisher):
    store = ObjectStore(settings)
    store.ensure_bucket(settings.evidence_bucket)
    processor, publisher = processor_for(Inspector(everything_a_defect(bundle), "cpu"), settings, publisher)
    events = [upload_event(settings, pcb_dir) for _ in range(2)]
    run(processor, events)
    verdicts = [Verdict.from_bytes(v) for v in publisher.on(settings.verdicts_topic)]
    assert {v.decision.value for v in verdicts} == {"defect"}
    for verdict in verdicts:
        assert verdict.heatmap_uri == f"s3://{settings.evidence_bucket}/heatmaps/{verdict.event_id}.png"
        overlay = Image.open(io.BytesIO(store.get(verdict.heatmap_uri)))
        original = Image.open(io.BytesIO(store.get(verdict.image_uri)))
        assert overlay.format == "PNG" and overlay.size == original.size
    assert processor.metrics.anomaly_maps.labels("stored")._value.get() == 2


def test_ok_parts_have_no_anomaly_map(bundle, settings, pcb_dir, publisher):
    never = dataclasses.replace(bundle, thresholds=Thresholds(1e9, 1e9, 0.0))
    processor, publisher = processor_for(Inspector(never, "cpu"), settings, publisher)
    run(processor, [upload_event(settings, pcb_dir)])
    [verdict] = [Verdict.from_bytes(v) for v in publisher.on(settings.verdicts_topic)]
    assert verdict.decision.value == "ok" and verdict.heatmap_uri is None


def test_a_failed_overlay_upload_costs_the_link_not_the_verdict(bundle, settings, pcb_dir, publisher):
    nowhere = settings.model_copy(update={"evidence_bucket": "no-such-bucket"})
    processor, publisher = processor_for(Inspector(everything_a_defect(bundle), "cpu"), nowhere, publisher)
    run(processor, [upload_event(settings, pcb_dir)])
    [verdict] = [Verdict.from_bytes(v) for v in publisher.on(settings.verdicts_topic)]
    assert verdict.decision.value == "defect" and verdict.heatmap_uri is None
    assert processor.metrics.anomaly_maps.labels("failed")._value.get() == 1


def test_verdicts_carry_the_calibrated_measurements_and_metrics_count_them(bundle, settings, pcb_dir,
                                                                         publisher):
    """A quantity calibrated on random pooled latents: its values mean nothing, but every verdict
    states it with unit and uncertainty, and each lands in the histogram or the out-of-range count."""
    rng = np.random.default_rng(0)
    dim = 32 + 96 + 1280  # the pooled MobileNetV2 latent
    scale = QuantityScale("spot_diameter", "mm", degrees=(1,)).fit(rng.normal(size=(40, dim)),
                                                                    np.linspace(0.1, 1.0, 40))
    measuring = dataclasses.replace(bundle, quantities={"spot_diameter": scale})
    processor, publisher = processor_for(Inspector(measuring, "cpu"), settings, publisher)
    run(processor, [upload_event(settings, pcb_dir) for _ in range(3)])
    verdicts = [Verdict.from_bytes(v) for v in publisher.on(settings.verdicts_topic)]
    assert len(verdicts) == 3
    for verdict in verdicts:
        measurement = verdict.measurements["spot_diameter"]
        assert measurement.unit == "mm" and measurement.coverage == 0.95
        assert measurement.uncertainty == pytest.approx(scale.expanded_uncertainty_)
        assert measurement.in_range == bool(scale.in_range(np.array([measurement.value]))[0])
    metrics = processor.metrics
    counted = sum(b.get() for b in metrics.measurements.labels("cam-1", "spot_diameter", "mm")._buckets)
    outside = metrics.measurements_out_of_range.labels("cam-1", "spot_diameter")._value.get()
    assert counted == sum(v.measurements["spot_diameter"].in_range for v in verdicts)
    assert counted + outside == 3


def upload_strip(settings, pcb_dir, camera: str = "cam-strip") -> CameraEvent:
    """A line-scan camera's long image: four real patches side by side."""
    sources = sorted((pcb_dir / "test" / "good").iterdir())[:4]
    patches = [Image.open(p).convert("L").crop((0, 0, 64, 64)) for p in sources]
    strip = Image.new("L", (4 * 64, 64))
    for i, patch in enumerate(patches):
        strip.paste(patch, (64 * i, 0))
    buffer = io.BytesIO()
    strip.save(buffer, format="PNG")
    uri = ObjectStore(settings).put(f"s3://{settings.image_bucket}/{uuid.uuid4()}.png", buffer.getvalue())
    return CameraEvent(event_id=str(uuid.uuid4()), camera_id=camera, line_id="l",
                       captured_at=datetime.now(UTC), image_uri=uri)


def test_a_batch_of_squares_and_strips_gets_a_verdict_for_each(bundle, settings, pcb_dir, publisher):
    processor, publisher = processor_for(Inspector(bundle, "cpu"), settings, publisher)
    events = [upload_event(settings, pcb_dir), upload_strip(settings, pcb_dir),
              upload_event(settings, pcb_dir)]
    run(processor, events)
    verdicts = [Verdict.from_bytes(v) for t, _, v in publisher.sent if t == settings.verdicts_topic]
    assert sorted(v.event_id for v in verdicts) == sorted(e.event_id for e in events)
    assert not letters_of(publisher, settings)


def test_forward_passes_share_a_shape_and_bound_the_tiles():
    def item(shape):
        return Item(None, None, np.zeros(shape, np.uint8))

    square, strip = (64, 64, 3), (64, 256, 3)  # one tile, four tiles of 64 px
    items = [item(square), item(strip), item(square), item(strip), item(strip)]
    groups = forward_passes(items, max_tiles=8, tile_side=64)
    assert [[i.pixels.shape for i in g] for g in groups] == [[square, square], [strip, strip], [strip]]
    larger = [item((64, 64 * 16, 3))] * 2
    assert [len(g) for g in forward_passes(larger, 8, 64)] == [1, 1]  # one each when larger


class Recorder:
    """A watcher that keeps what it is shown."""

    def __init__(self):
        self.observations = []

    def observe(self, observations):
        self.observations += observations
        return []


def test_watchers_get_the_pixel_statistics_of_the_image_as_decoded(bundle, settings, pcb_dir, publisher):
    recorder = Recorder()
    processor = BatchProcessor(Inspector(bundle, "cpu"), ObjectStore(settings), settings, WorkerMetrics(),
                               publisher, TableLedger(DictState(), 3600), watchers=[recorder])
    event = upload_event(settings, pcb_dir)
    run(processor, [event])
    (seen,) = recorder.observations
    image = Image.open(next((pcb_dir / "test" / "good").iterdir())).convert("RGB")
    assert seen.pixels == pixel_statistics(image) and "pixel_sharpness" in seen.pixels
