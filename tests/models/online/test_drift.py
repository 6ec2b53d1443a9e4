"""DriftMonitor: quiet on a stable stream, an alarm with a dated start after a shift; its state
is an explicit record that restores the same behaviour and rejects anything else."""

import copy
import math

import numpy as np
import pytest
from river import drift

from latentline.models.online.drift import (
    READABLE_VERSIONS,
    STATE_KIND,
    STATE_VERSION,
    DriftMonitor,
    change_point,
)
from latentline.models.online.state import StateError, dumps_state, loads_state

DETECTORS = {
    "adwin": None,  # the default
    "page_hinkley": drift.PageHinkley(threshold=30.0, delta=0.25),
    "kswin": drift.KSWIN(alpha=1e-4, window_size=200, stat_size=60, seed=3),
}


def feed(monitor, values, start=0):
    alarms = []
    for i, value in enumerate(values, start):
        alarms += [(i, a) for a in monitor.update({"score": value}, captured_at=1000.0 + i)]
    return alarms


def restart(monitor: DriftMonitor) -> DriftMonitor:
    """What a restarted worker gets back from the changelog."""
    return DriftMonitor.from_state(loads_state(dumps_state(monitor.to_state()), STATE_KIND, STATE_VERSION))


@pytest.mark.parametrize("name", DETECTORS)
def test_every_detector_is_quiet_when_stable_and_alarms_after_a_shift(name):
    rng = np.random.default_rng(7)
    monitor = DriftMonitor(DETECTORS[name])
    assert feed(monitor, rng.normal(0, 1, 1500)) == []
    alarms = feed(monitor, rng.normal(1.5, 1, 300), start=1500)
    assert alarms, f"{name} missed a 1.5 sigma shift"
    index, alarm = alarms[0]
    assert 1500 <= index < 1700
    assert alarm.statistic == "score"
    assert 1450 <= alarm.started_at - 1000 <= index  # dated near the true change
    assert alarm.before < 0.5 < 1.0 < alarm.after
    assert alarm.events_since_start == index - (alarm.started_at - 1000) + 1
    assert monitor.drifting


def test_statistics_are_tracked_separately_and_state_survives_a_restart():
    rng = np.random.default_rng(1)
    monitor = DriftMonitor()
    for i in range(800):
        monitor.update({"a": rng.normal(), "b": rng.normal()}, float(i))
    restored = restart(monitor)
    alarms = []
    for i in range(800, 1000):
        alarms += restored.update({"a": rng.normal(), "b": rng.normal(3.0)}, float(i))
    assert {a.statistic for a in alarms} == {"b"}
    assert alarms[0].detector.startswith("ADWIN(delta=0.002")


def test_drifting_expires_after_hold_events():
    monitor = DriftMonitor(hold_events=10)
    monitor.events, monitor.last_alarm_event = 100, 95
    assert monitor.drifting
    monitor.events = 105
    assert not monitor.drifting


def test_change_point_finds_a_mean_shift():
    assert change_point([0.0] * 30 + [5.0] * 10) == 30
    assert change_point([1.0]) == 0


@pytest.mark.parametrize("name", DETECTORS)
def test_restored_mid_stream_it_continues_exactly_as_if_never_stopped(name):
    # 600 values, fewer than ``history``: replay rebuilds each detector exactly (KSWIN: seeded)
    rng = np.random.default_rng(11)
    stable, shifted = rng.normal(0, 1, 600), rng.normal(1.5, 1, 300)
    monitor = DriftMonitor(copy.deepcopy(DETECTORS[name]))
    feed(monitor, stable)
    restored = restart(monitor)
    assert restored.to_state() == monitor.to_state()
    expected, got = feed(monitor, shifted, start=600), feed(restored, shifted, start=600)
    assert expected and got == expected
    assert restored.events == 900 and restored.last_alarm_event == monitor.last_alarm_event
    assert restored.drifting


def test_a_long_window_restarts_with_its_last_history_values_and_still_alarms():
    rng = np.random.default_rng(5)
    monitor = DriftMonitor(history=256)
    feed(monitor, rng.normal(0, 1, 1500))
    assert monitor.tracks["score"].detector.width == 1500
    restored = restart(monitor)
    assert restored.tracks["score"].detector.width == 256, "replayed: the last `history` values"
    assert restored.tracks["score"].seen == 1500 and restored.events == 1500 and not restored.drifting
    alarms = feed(restored, rng.normal(1.5, 1, 300), start=1500)
    assert alarms and 1500 <= alarms[0][0] < 1600
    assert 1490 <= alarms[0][1].started_at - 1000 <= alarms[0][0]
    assert restored.drifting and restored.events == 1800


def test_restored_while_drifting_it_holds_the_state_and_does_not_alarm_twice():
    rng = np.random.default_rng(2)
    monitor = DriftMonitor(hold_events=300)
    feed(monitor, rng.normal(0, 1, 1000))
    (first, _), *_ = feed(monitor, rng.normal(2.0, 1, 200), start=1000)
    assert monitor.tracks["score"].seen < 200, "the monitor restarted the detector at the alarm"
    restored = restart(monitor)
    assert restored.drifting and restored.last_alarm_event == monitor.last_alarm_event == first + 1
    later = rng.normal(2.0, 1, 300)
    assert feed(restored, later, start=1200) == feed(monitor, later, start=1200) == []
    assert not restored.drifting


def test_an_alarm_during_replay_is_not_reported_but_restarts_the_detector():
    # as a window longer than `history` may look: an old shift inside the replayed values
    values = [0.0] * 150 + [5.0] * 100
    record = DriftMonitor(history=250).to_state() | {"events": 400, "tracks": {
        "score": {"seen": 400, "recent": [[1000.0 + i, v] for i, v in enumerate(values)], "reference": None}}}
    restored = DriftMonitor.from_state(record)
    track = restored.tracks["score"]
    assert 0 < track.seen == track.detector.width < 100, "only what followed the replayed alarm"
    assert len(track.recent) == 250 and restored.last_alarm_event is None


def test_non_finite_values_are_skipped():
    monitor = DriftMonitor()
    assert monitor.update({"score": math.nan, "other": math.inf, "ok": 1.0}, 0.0) == []
    assert set(monitor.tracks) == {"ok"} and monitor.events == 1
    dumps_state(monitor.to_state())


def valid_record() -> dict:
    monitor = DriftMonitor(drift.KSWIN(alpha=1e-4, window_size=200, stat_size=60, seed=3), history=8)
    for i in range(5):
        monitor.update({"score": float(i), "other": 1.0}, 1000.0 + i)
    return monitor.to_state()


def mutated(path, value):
    record = copy.deepcopy(valid_record())
    *parents, key = path
    target = record
    for parent in parents:
        target = target[parent]
    if value is DELETE:
        del target[key]
    else:
        target[key] = value
    return record


DELETE = object()
TAMPERED = {
    "unknown key": (("extra",), 1, r"unknown keys \['extra'\]"),
    "missing key": (("events",), DELETE, r"missing keys \['events'\]"),
    "other version": (("format",), "drift-monitor/3", "expected 'drift-monitor/2'"),
    "unknown detector": (("detector", "name"), "os.system", "unknown detector 'os.system'"),
    "unknown parameter": (("detector", "params", "window"), [1, 2], r"unknown keys \['window'\]"),
    "parameter as text": (("detector", "params", "alpha"), "1e-4", "'alpha': '1e-4' is not a finite number"),
    "bool for an int": (("detector", "params", "window_size"), True, "not an integer"),
    "parameter out of range": (("detector", "params", "alpha"), 1.5, "outside"),
    "combination river refuses": (("detector", "params", "stat_size"), 500, "refused"),
    "negative count": (("events",), -1, "'events': -1 is below 0"),
    "float count": (("hold_events",), 10.5, "must be int, not float"),
    "huge history": (("history",), 2**70, "'history': 1180591620717411303424 is above"),
    "zero history": (("history",), 0, "'history': 0 is below 1"),
    "alarm after last event": (("last_alarm_event",), 99, "not within the 5 events"),
    "negative alarm event": (("last_alarm_event",), -1, "not within"),
    "NaN value": (("tracks", "score", "recent", 2, 1), math.nan, r"recent\[2\]: nan is not a finite"),
    "infinite time": (("tracks", "score", "recent", 0, 0), math.inf, "inf is not a finite"),
    "pair of three": (("tracks", "score", "recent", 0), [1.0, 2.0, 3.0], "expected 2"),
    "more pairs than history": (("tracks", "score", "recent"), [[0.0, 1.0]] * 9, "more than history"),
    "seen without pairs": (("tracks", "score", "seen"), 7, "only 5 recent pairs"),
    "negative seen": (("tracks", "score", "seen"), -3, "below 0"),
    "track not an object": (("tracks", "score"), [1, 2], "expected an object, not list"),
    "overlong statistic name": (("tracks", "x" * 300), {"seen": 0, "recent": [], "reference": None},
                                "not within 1..256"),
    "reference of a raw statistic": (("tracks", "score", "reference"), [0.0, 1.0], "not standardised"),
    "zero clip": (("clip",), 0.0, "'clip': 0.0 is outside"),
    "reference over history": (("reference_events",), 9, "'reference_events': 9 is above 8"),
}


def test_the_valid_record_restores():
    record = valid_record()
    assert DriftMonitor.from_state(record).to_state() == record


@pytest.mark.parametrize("case", TAMPERED)
def test_a_tampered_record_is_rejected_with_a_reason(case):
    path, value, reason = TAMPERED[case]
    with pytest.raises(StateError, match=reason):
        DriftMonitor.from_state(mutated(path, value))


def test_a_detector_outside_the_registry_cannot_be_stored():
    with pytest.raises(StateError, match="NoDrift has no state format"):
        DriftMonitor(drift.NoDrift()).to_state()
    with pytest.raises(StateError, match="'delta': 0 is not strictly between 0 and 1"):
        DriftMonitor(drift.ADWIN(delta=0)).to_state()


def test_a_version_1_record_is_read_with_no_reference_yet():
    monitor = DriftMonitor()
    feed(monitor, np.random.default_rng(3).normal(0, 1, 50))
    record = monitor.to_state()
    new_keys = ("reference_events", "standardised", "clip", "min_std")
    old = {k: v for k, v in record.items() if k not in new_keys}
    recent = record["tracks"]["score"]["recent"]
    old |= {"format": "drift-monitor/1", "tracks": {"score": {"seen": 50, "recent": recent}}}
    data = dumps_state(old)
    restored = DriftMonitor.from_state(loads_state(data, STATE_KIND, READABLE_VERSIONS))
    assert restored.to_state() == record


def pixel_feed(monitor, values, start=0):
    alarms = []
    for i, value in enumerate(values, start):
        alarms += [(i, a) for a in monitor.update({"pixel_mean": value}, captured_at=1000.0 + i)]
    return alarms


def test_a_standardised_statistic_is_quiet_when_stable_and_alarms_after_a_shift():
    # raw values of a tiny spread: unstandardised, ADWIN's range term would leave it deaf
    rng = np.random.default_rng(4)
    monitor = DriftMonitor(reference_events=100)
    assert pixel_feed(monitor, rng.normal(0.5, 0.01, 2000)) == []
    track = monitor.tracks["pixel_mean"]
    assert track.reference[0] == pytest.approx(0.5, abs=0.005)
    assert track.reference[1] == pytest.approx(0.01, rel=0.2)
    alarms = pixel_feed(monitor, rng.normal(0.49, 0.01, 300), start=2000)  # one reference std down
    assert alarms and alarms[0][0] < 2100
    alarm = alarms[0][1]
    assert alarm.statistic == "pixel_mean" and alarm.direction == "down"
    assert alarm.before == pytest.approx(0.5, abs=0.003) and alarm.after == pytest.approx(0.49, abs=0.006)
    assert alarm.change_in_std == pytest.approx(-1.0, abs=0.5)
    new_normal = monitor.tracks["pixel_mean"].reference  # learned again after the alarm
    assert new_normal is not None and new_normal[0] == pytest.approx(0.49, abs=0.003)


def test_unstandardised_the_same_small_shift_goes_unseen():
    rng = np.random.default_rng(4)
    monitor = DriftMonitor(standardised=())
    assert pixel_feed(monitor, rng.normal(0.5, 0.01, 2000)) == []
    assert pixel_feed(monitor, rng.normal(0.49, 0.01, 300), start=2000) == []


def test_a_standardised_statistic_restores_during_and_after_its_reference():
    rng = np.random.default_rng(6)
    for count in (60, 400):  # still collecting its reference (100); fitted, detector running
        monitor = DriftMonitor(reference_events=100)
        pixel_feed(monitor, rng.normal(0.5, 0.01, count))
        restored = restart(monitor)
        assert restored.to_state() == monitor.to_state()
        shifted = rng.normal(0.47, 0.01, 300)
        assert pixel_feed(restored, shifted, start=count) == pixel_feed(monitor, shifted, start=count)
