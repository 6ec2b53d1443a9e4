"""DriftMonitor: quiet on a stable stream, an alarm with a dated start after a shift."""

import pickle

import numpy as np
import pytest
from river import drift

from models.drift import DriftMonitor, change_point

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


def test_statistics_are_tracked_separately_and_state_survives_pickling():
    rng = np.random.default_rng(1)
    monitor = DriftMonitor()
    for i in range(800):
        monitor.update({"a": rng.normal(), "b": rng.normal()}, float(i))
    restored = pickle.loads(pickle.dumps(monitor))
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
