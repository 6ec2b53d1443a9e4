"""NoveltyDetector: a recurring unexplained kind becomes one candidate; scattered noise does not;
its state is an explicit record that restores the same behaviour and rejects anything else."""

import copy
import math

import numpy as np
import pytest

from latentline.models.online.novelty import STATE_KIND, STATE_VERSION, Anomaly, NoveltyDetector
from latentline.models.online.state import StateError, dumps_state, loads_state


def unit(v):
    return (v / np.linalg.norm(v)).astype(np.float32)


def anomaly(i, direction, camera="cam-1"):
    return Anomaly(f"e{i}", camera, f"s3://img/e{i}.png", 1000.0 + i, direction)


def scattered(rng, n, start=0):
    return [anomaly(start + i, unit(rng.normal(size=16))) for i in range(n)]


def of_kind(rng, kind, n, start):
    return [anomaly(start + i, unit(kind + rng.normal(scale=0.08, size=16)), f"cam-{i % 2 + 1}")
            for i in range(n)]


def restart(detector: NoveltyDetector) -> NoveltyDetector:
    """What a restarted worker gets back from the changelog."""
    data = dumps_state(detector.to_state())
    return NoveltyDetector.from_state(loads_state(data, STATE_KIND, STATE_VERSION))


def test_scattered_anomalies_raise_nothing():
    rng = np.random.default_rng(0)
    detector = NoveltyDetector()
    assert [c for s in scattered(rng, 200) if (c := detector.observe(s))] == []


def test_a_recurring_kind_becomes_one_candidate_and_a_label_closes_it():
    rng = np.random.default_rng(1)
    kind = unit(rng.normal(size=16))
    detector = NoveltyDetector()
    for s in scattered(rng, 50):
        detector.observe(s)
    raised = []
    for i in range(40):
        noisy = unit(kind + rng.normal(scale=0.08, size=16))
        camera = "cam-1" if i % 2 else "cam-2"
        if (candidate := detector.observe(anomaly(100 + i, noisy, camera))) is not None:
            raised.append((i, candidate))
    assert len(raised) == 1, "one kind, one candidate: later members join it"
    at, candidate = raised[0]
    assert at < 15
    assert candidate.cameras == {"cam-1", "cam-2"}
    assert all(s.event_id >= "e100" for s in candidate.exemplars(12)), "exemplars come from the kind"
    assert candidate.size == len(candidate.members) >= 40 - at  # founders, then every later one joined
    restored = restart(detector)
    closed = restored.label(candidate.members[0].event_id, "spur", "operator-7")
    assert closed is not None and not closed.is_open and closed.label == "spur"
    assert restored.label("e-unknown", "spur", "operator-7") is None
    assert restored.observe(anomaly(999, unit(kind + 0.05))) is None, "the labelled region is named now"


def test_restored_it_keeps_candidates_labels_and_buffer_and_a_later_burst_joins():
    rng = np.random.default_rng(3)
    kind, other = unit(rng.normal(size=16)), unit(rng.normal(size=16))
    detector = NoveltyDetector()
    for s in scattered(rng, 60) + of_kind(rng, kind, 30, 100) + of_kind(rng, other, 30, 200):
        detector.observe(s)
    assert len(detector.candidates) == 2
    detector.label(detector.candidates[1].members[0].event_id, "spur", "operator-7")
    restored = restart(detector)
    assert restored.to_state() == detector.to_state()
    for before, after in zip(detector.candidates, restored.candidates):
        assert (after.candidate_id, after.size, after.cameras, after.label, after.labelled_by) == (
            before.candidate_id, before.size, before.cameras, before.label, before.labelled_by)
        assert after.centre.dtype == np.float32 and np.array_equal(after.centre, before.centre)
        assert [s.event_id for s in after.members] == [s.event_id for s in before.members]
    assert [s.event_id for s in restored.buffer] == [s.event_id for s in detector.buffer]
    assert all(np.array_equal(a.direction, b.direction) for a, b in zip(restored.buffer, detector.buffer))
    size = restored.candidates[0].size
    assert [restored.observe(s) for s in of_kind(rng, kind, 10, 300)] == [None] * 10
    assert restored.candidates[0].size == size + 10 and len(restored.candidates) == 2


def test_a_kind_half_seen_before_the_restart_is_raised_as_if_never_stopped():
    # every anomaly the clusters learned is still in the buffer: replay rebuilds them exactly
    rng = np.random.default_rng(4)
    kind = unit(rng.normal(size=16))
    detector = NoveltyDetector()
    for s in scattered(rng, 50) + of_kind(rng, kind, 3, 100):
        assert detector.observe(s) is None
    restored = restart(detector)
    later = of_kind(rng, kind, 30, 200)

    def raised(d):
        return [(i, c.candidate_id, c.size) for i, s in enumerate(later) if (c := d.observe(s))]

    assert raised(restored) == raised(detector) != []
    assert restored.to_state() == detector.to_state()


def test_a_non_finite_direction_is_skipped():
    detector = NoveltyDetector()
    assert detector.observe(anomaly(1, np.full(16, np.nan, np.float32))) is None
    assert detector.buffer == [] and detector.clusters.micro_clusters == {}


def valid_record() -> dict:
    rng = np.random.default_rng(1)
    kind = unit(rng.normal(size=16))
    detector = NoveltyDetector(max_members=12)
    for s in scattered(rng, 20) + of_kind(rng, kind, 20, 100):
        detector.observe(s)
    detector.label("e105", "spur", "operator-7")
    assert len(detector.candidates) == 1 and detector.candidates[0].label == "spur"
    return detector.to_state()


DELETE = object()
TAMPERED = {
    "unknown key": (("extra",), 1, r"unknown keys \['extra'\]"),
    "other version": (("format",), "novelty-detector/0", "'novelty-detector/1' or 'novelty-detector/2'"),
    "empty model version": (("params", "model_version"), "", "not within 1..256"),
    "unknown parameter": (("params", "seed"), 1, r"unknown keys \['seed'\]"),
    "parameter out of range": (("params", "fading_factor"), 2.0, "outside"),
    "zero threshold": (("params", "clustering_threshold"), 0, "not positive"),
    "text for an int": (("params", "min_members"), "6", "not an integer"),
    "missing anomaly key": (("buffer", 0, "image_uri"), DELETE, r"buffer\[0\]: missing keys"),
    "unknown anomaly key": (("buffer", 0, "pickle"), "x", r"unknown keys \['pickle'\]"),
    "number for an id": (("buffer", 1, "event_id"), 7, "'event_id': must be str, not int"),
    "overlong id": (("buffer", 1, "camera_id"), "c" * 257, "not within 1..256"),
    "overlong uri": (("buffer", 1, "image_uri"), "s3://" + "x" * 2048, "not within 1..2048"),
    "NaN direction": (("buffer", 2, "direction", 3), math.nan, r"'direction': nan is not a finite"),
    "empty direction": (("buffer", 2, "direction"), [], "non-empty"),
    "beyond float32": (("candidates", 0, "centre", 1), 1e300, "beyond the float32 range"),
    "huge dimension": (("buffer", 2, "direction"), [0.0] * 1025, "more than 1024"),
    "other dimension": (("buffer", 2, "direction"), [1.0, 0.0], r"different dimensions \[2, 16\]"),
    "NaN centre": (("candidates", 0, "centre", 0), math.nan, r"candidates\[0\]: 'centre': nan"),
    "infinite time": (("candidates", 0, "members", 0, "captured_at"), math.inf, "inf is not a finite"),
    "more members than allowed": (("candidates", 0, "members"), lambda m: (m * 13)[:13], "13 members"),
    "size below members": (("candidates", 0, "size"), 2, "not within 1..min"),
    "label without who": (("candidates", 0, "labelled_by"), None, "together or not at all"),
    "member camera not listed": (("candidates", 0, "cameras"), ["cam-9"], "camera is missing"),
    "seen backwards": (("candidates", 0, "first_seen"), 1e9, "after last_seen"),
    "repeated candidate": (("candidates",), lambda c: c * 2, "candidate ids repeat"),
    "buffer over its size": (("params", "buffer_size"), 3, "more than buffer_size"),
}


def mutated(path, value):
    record = copy.deepcopy(valid_record())
    *parents, key = path
    target = record
    for parent in parents:
        target = target[parent]
    if value is DELETE:
        del target[key]
    elif callable(value):
        target[key] = value(target[key])
    else:
        target[key] = value
    return record


def test_the_valid_record_restores():
    record = valid_record()
    assert NoveltyDetector.from_state(record).to_state() == record


def test_a_record_of_format_1_is_read_with_no_model_and_serves_the_first_of_its_dimension():
    record = valid_record()
    del record["params"]["model_version"]
    record["format"] = "novelty-detector/1"
    restored = NoveltyDetector.from_state(record)
    assert restored.model_version is None and len(restored.candidates) == 1
    assert not restored.serves("v2", 32)  # directions of another length: another space
    assert restored.serves("v1", 16) and restored.model_version == "v1"
    assert not restored.serves("v2", 16)  # from now on it names its model


def test_a_detector_serves_only_its_own_model():
    detector = NoveltyDetector(model_version="v1")
    assert detector.serves("v1", 16) and not detector.serves("v2", 16)


@pytest.mark.parametrize("case", TAMPERED)
def test_a_tampered_record_is_rejected_with_a_reason(case):
    path, value, reason = TAMPERED[case]
    with pytest.raises(StateError, match=reason):
        NoveltyDetector.from_state(mutated(path, value))
