"""``latentline evaluate-stream``: replay a scripted stream through the online components.

The script: a stable run of good images; then, continuing from the state the stable run left,
two branches evaluated separately so neither disturbs the other's measurement:
- drift: the same good images under a lighting change (brightness and contrast);
- novelty: good images interleaved with images of types absent from train/.
The components are the ones the worker runs (Inspector.assess, DriftMonitor with the worker's
defaults fed the score, latent and pixel statistics, NoveltyDetector); only Kafka is left out.
``latentline evaluate-scenarios`` (models/evaluation/drift_scenarios.py) replays the pixel
statistics alone against a library of scenarios.

The good images come from train/good and test/good together, each once per pass, so a stable
run of 2,000 needs no image twice on deeppcb-patches (repeated images are not a stable line:
the same unusual part coming back looks like a new kind). Images the model was fitted on score
lower than unseen ones; the detectors learn the stream's own level, so this lowers the number
of anomalies reaching novelty detection, not the drift false-alarm test.
"""

import copy
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from latentline.models.dataset import GOOD, list_images
from latentline.models.encoding.images import decode_image
from latentline.models.inspector import Inspector
from latentline.models.online.drift import DriftMonitor, event_statistics
from latentline.models.online.novelty import Anomaly, NoveltyDetector, is_unexplained
from latentline.models.online.pixel_stats import pixel_statistics

CAMERA = "replay-cam"


@dataclass(frozen=True)
class StreamScript:
    stable_events: int = 2000
    drift_events: int = 600
    novelty_events: int = 600
    novelty_every: int = 2  # one new-type image every this many events in the novelty branch
    brightness: float = 0.8
    contrast: float = 0.9
    seed: int = 0

    def relight(self, image: Image.Image) -> Image.Image:
        image = ImageEnhance.Brightness(image.convert("RGB")).enhance(self.brightness)
        return ImageEnhance.Contrast(image).enhance(self.contrast)


@dataclass
class Phase:
    """Encoded events of one stretch of the stream, in order."""

    name: str
    scores: np.ndarray
    decisions: list
    summaries: np.ndarray
    directions: list  # of the anomalous parts, None for the rest
    types: list  # TypeDecision or None per event
    labels: list[str]
    pixels: list[dict]  # models/online/pixel_stats.py, per event, of the image as decoded


@dataclass
class Replay:
    alarms: list[tuple[int, str]]  # (event index, statistic)
    candidates: list[dict]


def evaluate_stream(inspector: Inspector, data_dir: Path, out_dir: Path, script: StreamScript,
                    progress: bool = True) -> dict:
    rng = np.random.default_rng(script.seed)
    good_pool = [i.path for i in list_images(data_dir, "train", GOOD) + list_images(data_dir, "test", GOOD)]
    trained = {i.label for i in list_images(data_dir, "train")}
    new_pool = [i for i in list_images(data_dir, "test") if i.label not in trained]
    goods = _draw(good_pool, script.stable_events + max(script.drift_events, script.novelty_events), rng)
    stable = _phase("stable", inspector, goods[: script.stable_events], progress)
    drifted = _phase("drift", inspector, goods[script.stable_events :][: script.drift_events], progress,
                     transform=script.relight)
    novelty = _novelty_phase(inspector, goods[script.stable_events :], new_pool, script, rng, progress)

    base_monitor, base_detector = DriftMonitor(), NoveltyDetector()
    before = _replay(stable, inspector, base_monitor, base_detector)
    drift_run = _replay(drifted, inspector, copy.deepcopy(base_monitor), copy.deepcopy(base_detector),
                        offset=script.stable_events)
    novelty_run = _replay(novelty, inspector, base_monitor, base_detector, offset=script.stable_events)
    metrics = _metrics(script, stable, novelty, before, drift_run, novelty_run, new_pool)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    from latentline.models.evaluation.plots.stream import (
        plot_stream,  # matplotlib only when a report is written
    )

    plot_stream(out_dir / "stream.png", stable, drifted, novelty, before, drift_run, novelty_run,
                threshold=inspector.thresholds.threshold)
    return metrics


def _draw(pool: list, count: int, rng: np.random.Generator) -> list:
    """``count`` items, each pass over ``pool`` a fresh permutation (no repeat within a pass)."""
    passes = -(-count // len(pool))
    return [pool[i] for _ in range(passes) for i in rng.permutation(len(pool))][:count]


def _phase(name, inspector, paths, progress, transform=None, labels=None) -> Phase:
    latents = inspector.encode_files(list(paths), progress=progress, transform=transform, desc=name)
    a = inspector.assess(latents, maps=False)
    labels = labels or [GOOD] * len(paths)
    pixels = [_pixel_statistics(path, transform) for path in paths]
    return Phase(name, a.scores, a.decisions, a.summaries, a.directions, a.types, labels, pixels)


def _pixel_statistics(path: Path, transform) -> dict[str, float]:
    image = decode_image(Path(path).read_bytes())
    return pixel_statistics(transform(image) if transform else image)


def _novelty_phase(inspector, goods, new_pool, script, rng, progress) -> Phase:
    count = script.novelty_events // script.novelty_every + 1
    news = _draw(new_pool, count, rng) if new_pool else []
    paths, labels = [], []
    for k in range(script.novelty_events):
        if news and k % script.novelty_every == 0:
            item = news[k // script.novelty_every]
            paths.append(item.path)
            labels.append(item.label)
        else:
            paths.append(goods[k])
            labels.append(GOOD)
    return _phase("novelty", inspector, paths, progress, labels=labels)


def _replay(phase: Phase, inspector, monitor, detector, offset: int = 0) -> Replay:
    names = inspector.bundle.reference.statistic_names
    replay, truth = Replay([], []), {}
    for k, decision in enumerate(phase.decisions):
        index = offset + k
        values = event_statistics(phase.scores[k], decision, phase.summaries[k], names, phase.pixels[k])
        replay.alarms += [(index, a.statistic) for a in monitor.update(values, float(index))]
        defect_type = phase.types[k]
        if not is_unexplained(decision, defect_type.status if defect_type else None):
            continue
        event_id = f"{phase.name}-{k}"
        truth[event_id] = phase.labels[k]
        anomaly = Anomaly(event_id, CAMERA, event_id, float(index), phase.directions[k])
        if (candidate := detector.observe(anomaly)) is not None:
            labels = [truth.get(s.event_id, GOOD) for s in candidate.exemplars(12)]
            replay.candidates.append({"index": index, "exemplar_labels": labels})
    return replay


def _metrics(script, stable, novelty, before, drift_run, novelty_run, new_pool) -> dict:
    start = script.stable_events
    first_drift = next((i for i, _ in drift_run.alarms if i >= start), None)
    new_types = sorted({i.label for i in new_pool})
    candidate = novelty_run.candidates[0] if novelty_run.candidates else None
    new_seen = None
    if candidate is not None:
        new_seen = sum(1 for label in novelty.labels[: candidate["index"] - start + 1] if label != GOOD)
    exemplars = candidate["exemplar_labels"] if candidate else []
    return {
        "script": asdict(script),
        "drift_false_alarms": len(before.alarms),
        "drift_false_alarm_statistics": sorted({s for _, s in before.alarms}),
        "drift_detection_delay": None if first_drift is None else first_drift - start + 1,
        "drift_alarm_statistics": sorted({s for i, s in drift_run.alarms if i == first_drift}),
        "novelty_false_candidates": len(before.candidates),
        "novelty_detection_delay": new_seen,
        "novelty_purity": (sum(label != GOOD for label in exemplars) / len(exemplars)) if exemplars else None,
        "novelty_types": new_types,
        "novelty_candidates": len(novelty_run.candidates),
        "stable_anomaly_share": float(np.mean([d.value != "ok" for d in stable.decisions])),
    }
