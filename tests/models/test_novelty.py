"""NoveltyDetector: a recurring unexplained kind becomes one candidate; scattered noise does not."""

import pickle

import numpy as np

from models.novelty import NoveltyDetector, Sighting


def unit(v):
    return (v / np.linalg.norm(v)).astype(np.float32)


def sighting(i, direction, camera="cam-1"):
    return Sighting(f"e{i}", camera, f"s3://img/e{i}.png", 1000.0 + i, direction)


def scattered(rng, n, start=0):
    return [sighting(start + i, unit(rng.normal(size=16))) for i in range(n)]


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
        if (candidate := detector.observe(sighting(100 + i, noisy, camera))) is not None:
            raised.append((i, candidate))
    assert len(raised) == 1, "one kind, one candidate: later members join it"
    at, candidate = raised[0]
    assert at < 15
    assert candidate.cameras == {"cam-1", "cam-2"}
    assert all(s.event_id >= "e100" for s in candidate.exemplars(12)), "exemplars come from the kind"
    assert candidate.size == len(candidate.members) >= 40 - at  # founders, then every later one joined
    restored = pickle.loads(pickle.dumps(detector))
    closed = restored.label(candidate.members[0].event_id, "spur", "operator-7")
    assert closed is not None and not closed.is_open and closed.label == "spur"
    assert restored.label("e-unknown", "spur", "operator-7") is None
    assert restored.observe(sighting(999, unit(kind + 0.05))) is None, "the labelled region is named now"
