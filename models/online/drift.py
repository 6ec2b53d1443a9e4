"""Per-camera drift detection: one river detector per monitored statistic.

The default detector is ADWIN, from "Learning from Time-Changing Data with Adaptive Windowing"
(Bifet and Gavaldà, 2007), with delta=0.002 and clock=8 (models/online/defaults.py), chosen by
measurement on deeppcb-patches (docs/drift.md): no false alarm in 20
stable runs of 4,000 events on five statistics, and a 20 % dimming found after a median of about
50 events; ``latentline evaluate-stream`` found a 20 % darker, 10 % flatter lighting 8 events
after it began, with no false alarm over 2,000 stable events, on four seeds. ADWIN also says
where the change began (the window it keeps), which gives an alert its start time and
before/after values without a second model.

>>> import random
>>> rng, monitor, alarms = random.Random(0), DriftMonitor(), []
>>> for t in range(3000):  # the statistic steps up at event 2000
...     alarms += monitor.update({"brightness": rng.gauss(0.0 if t < 2000 else 1.0, 0.5)}, captured_at=t)
>>> [(a.statistic, a.started_at, a.events_since_start, round(a.before, 1), round(a.after, 1)) for a in alarms]
[('brightness', 2000.0, 16, -0.0, 1.1)]
>>> change_point([0.0, 0.1, 0.0, 5.0, 5.1])  # the first value after the mean shift
3

State (``DriftMonitor.to_state``/``from_state``, format ``drift-monitor/1``, models/online/state.py) is
explicit: the detector's class name (from an allow-list) and constructor parameters, the
monitor's counters and, per statistic, its recent (capture time, value) pairs and how many
values its detector has taken since it (re)started (``seen``). No detector internals are
written. ``from_state`` rebuilds each detector by replay: a fresh detector built from the
parameters is fed the last ``min(seen, history)`` values in order, alarms ignored. A detector
that has taken at most ``history`` values since it started therefore comes back exactly as it
was (ADWIN and PageHinkley are deterministic; KSWIN only with a fixed seed). An older one
restarts with the last ``history`` values as its window: the older part of a long stable window
is forgotten, so a small shift right after a restart is found somewhat later than it would
have been, and a large one about as soon. Because the monitor restarts a detector itself after
every alarm, the values before an alarm are never replayed into the detector that followed it,
and a restart does not raise the same alarm twice.
"""

import collections
import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import pstdev
from typing import Any

from river import drift
from river.base import DriftDetector

from latentline.models.online import state as st
from latentline.models.online.defaults import (
    DRIFT_CLIP,
    DRIFT_CLOCK,
    DRIFT_DELTA,
    DRIFT_HOLD_EVENTS,
    DRIFT_MIN_STD,
    DRIFT_REFERENCE_EVENTS,
)
from latentline.models.online.pixel_stats import PREFIX as PIXEL_PREFIX
from latentline.schemas import Decision

STATE_KIND, STATE_VERSION = "drift-monitor", 2
READABLE_VERSIONS = (1, 2)  # a /1 record (no references) is read as /2 with none taken yet


def default_detector() -> DriftDetector:
    return drift.ADWIN(delta=DRIFT_DELTA, clock=DRIFT_CLOCK)


SCORE_STATISTIC = "anomaly_score"


def event_statistics(score: float, decision: Decision, summary, names: list[str],
                     pixels: dict[str, float] | None = None) -> dict[str, float]:
    """What one event feeds the monitor: the score and pixel statistics (models/online/
    pixel_stats.py) of every part, the latent summaries only of parts that look good (a defect
    moves them by itself; the line need not have changed). A small defect hardly moves a
    whole image's pixel statistics, and the camera's reference is taken with its defects in."""
    values = {SCORE_STATISTIC: float(score)} | dict(pixels or {})
    if decision is Decision.OK:
        values |= dict(zip(names, map(float, summary)))
    return values


@dataclass(frozen=True)
class DriftAlarm:
    statistic: str
    detector: str
    events_since_start: int
    started_at: float  # capture time (epoch seconds) of the first event after the change
    before: float  # means in the statistic's own (raw) units
    after: float
    reference_std: float | None = None  # spread of the camera's reference, for standardised statistics

    @property
    def direction(self) -> str:
        return "up" if self.after >= self.before else "down"

    @property
    def change_in_std(self) -> float | None:
        """The change in reference standard deviations (standardised statistics only)."""
        return None if self.reference_std is None else (self.after - self.before) / self.reference_std


@dataclass
class _Track:
    """One statistic of one camera: its detector, its recent (capture time, raw value) pairs and
    how many values the detector has taken since it (re)started. A standardised statistic also
    has its reference (mean, std), None while its first ``reference_events`` values are still
    being collected (those count in ``seen``; the detector takes them all once the reference is
    fitted on them)."""

    detector: DriftDetector
    recent: collections.deque = field(default_factory=collections.deque)
    seen: int = 0
    reference: tuple[float, float] | None = None


class DriftMonitor:
    """Feed it one camera's statistics event by event; it returns the alarms they raise.

    ``hold_events``: after an alarm the camera counts as drifting for this many of its events.
    ``history``: values remembered per statistic to date the change and give before/after means,
    and what a restored detector is replayed from (module docstring).
    """

    # history=1024, not 256: a detector restored from a record restarts with at most ``history``
    # values, and ADWIN(0.002, clock=8) restarted with 256 after 4,000 stable N(0, 1) values
    # missed a 0.25-sigma shift in 20 of 30 seeds within 3,000 events (uninterrupted: found after
    # a median of 368); with 1024 it found all (median 464); 0.5 and 1 sigma as uninterrupted.
    # The dating of a slow alarm needs the longer history too. Cost per camera: a record of about
    # 230 kB for six statistics, 460 kB with the pixel statistics of a grey camera (13), 530 kB
    # of a colour one (15): inside Kafka's default 1 MB message.
    def __init__(self, detector: DriftDetector | None = None, hold_events: int = DRIFT_HOLD_EVENTS,
                 history: int = 1024, reference_events: int | None = None,
                 standardised: tuple[str, ...] = (PIXEL_PREFIX,), clip: float = DRIFT_CLIP,
                 min_std: float = DRIFT_MIN_STD):
        """``reference_events``, ``standardised``, ``clip``, ``min_std``: a statistic whose name
        starts with one of ``standardised`` is fed to its detector as (value - mean) / std of the
        camera's own first ``reference_events`` values (default DRIFT_REFERENCE_EVENTS, at most
        ``history``; again after each of its alarms), the std at least ``min_std``, the result
        clipped to +-``clip``. ADWIN's bound is written for values of about unit range (raw pixel
        statistics spread by 0.01 left it deaf), and one odd image must not move a window's mean
        by much (docs/drift.md)."""
        if reference_events is None:
            reference_events = max(2, min(DRIFT_REFERENCE_EVENTS, history))
        if not 2 <= reference_events <= max(history, 2):
            raise ValueError(f"reference_events must be within 2..history ({history}), "
                             f"not {reference_events}")
        self.detector = detector or default_detector()
        self.hold_events = hold_events
        self.history = history
        self.reference_events, self.standardised = reference_events, tuple(standardised)
        self.clip, self.min_std = clip, min_std
        self.tracks: dict[str, _Track] = {}
        self.events = 0
        self.last_alarm_event: int | None = None

    def is_standardised(self, statistic: str) -> bool:
        return statistic.startswith(self.standardised) if self.standardised else False

    @property
    def drifting(self) -> bool:
        return self.last_alarm_event is not None and self.events - self.last_alarm_event < self.hold_events

    def update(self, statistics: dict[str, float], captured_at: float) -> list[DriftAlarm]:
        """``statistics``: the values this event contributes (a statistic may be absent). A
        non-finite value is skipped: it would leave the detector's means NaN for good."""
        self.events += 1
        alarms = []
        for name, value in statistics.items():
            value = float(value)
            if math.isfinite(value) and (alarm := self._update_one(name, value, float(captured_at))):
                alarms.append(alarm)
        if alarms:
            self.last_alarm_event = self.events
        return alarms

    def _update_one(self, name: str, value: float, captured_at: float) -> DriftAlarm | None:
        track = self.tracks.get(name)
        if track is None:
            track = _Track(copy.deepcopy(self.detector), collections.deque(maxlen=self.history))
            self.tracks[name] = track
        track.recent.append((captured_at, value))
        track.seen += 1
        if not self.is_standardised(name):
            track.detector.update(value)
        elif track.reference is not None:
            track.detector.update(self._z(value, track.reference))
        elif track.seen == self.reference_events:  # the reference is complete: fit it, feed it
            track.reference = self._fit_reference([v for _, v in track.recent][-track.seen :])
            track.detector, track.seen = self._replayed([v for _, v in track.recent][-track.seen :], track)
            return None
        else:
            return None
        if not track.detector.drift_detected:
            return None
        alarm = _alarm(name, track)
        # river's detectors restart by themselves on their next value; restarting here instead
        # says in the monitor what the detector holds (``seen``), which the state relies on. A
        # standardised statistic learns its new normal from the next ``reference_events``.
        track.detector, track.seen, track.reference = copy.deepcopy(self.detector), 0, None
        return alarm

    def _fit_reference(self, values: list[float]) -> tuple[float, float]:
        return mean(values), max(pstdev(values), self.min_std)

    def _z(self, value: float, reference: tuple[float, float]) -> float:
        return min(max((value - reference[0]) / reference[1], -self.clip), self.clip)

    def _replayed(self, values: list[float], track: _Track) -> tuple[DriftDetector, int]:
        if track.reference is not None:
            values = [self._z(v, track.reference) for v in values]
        return _replay(self.detector, values)

    def to_state(self) -> dict:
        """This monitor as a ``drift-monitor/2`` record of plain values (models.online.state.dumps_state)."""
        return {
            "format": f"{STATE_KIND}/{STATE_VERSION}",
            "detector": _detector_state(self.detector),
            "hold_events": self.hold_events,
            "history": self.history,
            "reference_events": self.reference_events,
            "standardised": list(self.standardised),
            "clip": self.clip,
            "min_std": self.min_std,
            "events": self.events,
            "last_alarm_event": self.last_alarm_event,
            "tracks": {
                name: {"seen": t.seen, "recent": [[time, value] for time, value in t.recent],
                       "reference": None if t.reference is None else list(t.reference)}
                for name, t in self.tracks.items()
            },
        }

    @classmethod
    def from_state(cls, record: dict) -> "DriftMonitor":
        """The monitor a record describes, detectors rebuilt by replay (module docstring). Raises
        models.online.state.StateError for anything but a well-formed ``drift-monitor/2`` record
        (or ``/1``, from before pixel statistics: read with this version's defaults)."""
        record = _upgraded(record)
        st.exact_keys(record, _MONITOR_KEYS)
        st.check_format(record, STATE_KIND, STATE_VERSION)
        with st.within("detector"):
            template = _detector_from_state(st.require(record, "detector", dict))
        history = st.count(record, "history", 1)
        with st.within("'reference_events'"):
            reference_events = st.integer(st.count(record, "reference_events", 2), 2, max(history, 2))
        with st.within("'clip'"):
            clip = st.finite(st.require(record, "clip", float), 1e-9)
        with st.within("'min_std'"):
            min_std = st.finite(st.require(record, "min_std", float), 1e-12)
        monitor = cls(template, hold_events=st.count(record, "hold_events"), history=history,
                      reference_events=reference_events, standardised=_prefixes(record), clip=clip,
                      min_std=min_std)
        monitor.events = st.count(record, "events")
        monitor.last_alarm_event = _last_alarm(record, monitor.events)
        for name, track in st.require(record, "tracks", dict).items():
            with st.within(f"tracks[{name!r}]"):
                monitor.tracks[st.text(name)] = monitor._track_from_state(track, st.text(name))
        return monitor

    def _track_from_state(self, record: dict, name: str) -> _Track:
        st.exact_keys(record, ("seen", "recent", "reference"))
        seen, pairs = st.count(record, "seen"), st.require(record, "recent", list)
        if len(pairs) > self.history:
            raise st.StateError(f"{len(pairs)} recent pairs, more than history ({self.history})")
        if len(pairs) < min(seen, self.history):  # every value the detector took was also kept
            raise st.StateError(f"'seen' is {seen} but only {len(pairs)} recent pairs are kept")
        recent = collections.deque(maxlen=self.history)
        for i, pair in enumerate(pairs):
            with st.within(f"recent[{i}]"):
                recent.append(tuple(st.vector(pair, 2)))
        track = _Track(copy.deepcopy(self.detector), recent, seen, _reference(record, self, name))
        if self.is_standardised(name) and track.reference is None:
            if seen >= self.reference_events:
                raise st.StateError(f"'seen' is {seen} but no reference was fitted")
            return track  # still collecting: its detector has taken nothing yet
        values = [value for _, value in recent][len(recent) - min(seen, len(recent)) :]
        track.detector, fed = self._replayed(values, track)
        track.seen = seen if fed == len(values) else fed
        return track


_MONITOR_KEYS = ("format", "detector", "hold_events", "history", "reference_events", "standardised", "clip",
                 "min_std", "events", "last_alarm_event", "tracks")


def _upgraded(record: dict) -> dict:
    """A ``drift-monitor/1`` record as /2: no statistic standardised yet, this version's defaults."""
    if not isinstance(record, dict) or record.get("format") != f"{STATE_KIND}/1":
        return record
    tracks = record.get("tracks")
    if isinstance(tracks, dict):
        tracks = {k: v | {"reference": None} if isinstance(v, dict) else v for k, v in tracks.items()}
    history = record.get("history")
    events = min(DRIFT_REFERENCE_EVENTS, history) if isinstance(history, int) and history >= 2 else 2
    return record | {"format": f"{STATE_KIND}/{STATE_VERSION}", "tracks": tracks, "reference_events": events,
                     "standardised": [PIXEL_PREFIX], "clip": DRIFT_CLIP, "min_std": DRIFT_MIN_STD}


def _prefixes(record: dict) -> tuple[str, ...]:
    prefixes = st.require(record, "standardised", list)
    with st.within("'standardised'"):
        return tuple(st.text(p) for p in prefixes)


def _reference(record: dict, monitor: DriftMonitor, name: str) -> tuple[float, float] | None:
    value = st.require(record, "reference", (list, type(None)))
    if value is None:
        return None
    if not monitor.is_standardised(name):
        raise st.StateError(f"{name} is not standardised but has a reference")
    with st.within("'reference'"):
        centre, spread = st.vector(value, 2)
        return centre, st.finite(spread, monitor.min_std)


def _alarm(name: str, track: _Track) -> DriftAlarm:
    times, values = zip(*track.recent)
    split = change_point(values)
    return DriftAlarm(
        statistic=name,
        detector=_describe(track.detector),
        events_since_start=len(values) - split,
        started_at=times[split],
        before=mean(values[:split]),
        after=mean(values[split:]),
        reference_std=None if track.reference is None else track.reference[1],
    )


def change_point(values) -> int:
    """Index of the first value after the most likely mean shift (largest two-sample z)."""
    x = list(values)
    n = len(x)
    if n < 2:
        return 0
    total, prefix, best, best_split = sum(x), 0.0, -1.0, n - 1
    for k in range(1, n):
        prefix += x[k - 1]
        gap = abs(prefix / k - (total - prefix) / (n - k)) * (k * (n - k) / n) ** 0.5
        if gap > best:
            best, best_split = gap, k
    return best_split


def mean(values) -> float:
    return sum(values) / len(values)


def _describe(detector: DriftDetector) -> str:
    params = ", ".join(f"{k}={v}" for k, v in detector._get_params().items())
    return f"{type(detector).__name__}({params})"


# The detectors a record may name, with the constructor parameters it gives and how each is
# checked. The name picks a class from this table, never an import; parameters not listed keep
# river's defaults (KSWIN's initial ``window`` is left out: replay fills the window).
_Check = Callable[[Any], Any]


def _real(low: float = -math.inf, high: float = math.inf) -> _Check:
    return lambda value: st.finite(value, low, high)


def _int(low: int = 1) -> _Check:
    return lambda value: st.integer(value, low)


def _fraction(value: Any) -> float:
    """Strictly between 0 and 1: a confidence or a significance level."""
    if st.finite(value, 0, 1) in (0, 1):
        raise st.StateError(f"{value} is not strictly between 0 and 1")
    return float(value)


def _mode(value: Any) -> str:
    if value not in ("both", "up", "down"):
        raise st.StateError(f"{value!r} is not one of 'both', 'up', 'down'")
    return value


def _seed(value: Any) -> int | None:
    return None if value is None else st.integer(value, -st.MAX_INT)


DETECTORS: dict[str, tuple[type[DriftDetector], dict[str, _Check]]] = {
    "ADWIN": (drift.ADWIN, {"delta": _fraction, "clock": _int(), "max_buckets": _int(),
                            "min_window_length": _int(), "grace_period": _int()}),
    "PageHinkley": (drift.PageHinkley, {"min_instances": _int(), "delta": _real(0), "threshold": _real(0),
                                        "alpha": _real(0, 1), "mode": _mode}),
    "KSWIN": (drift.KSWIN, {"alpha": _fraction, "window_size": _int(2), "stat_size": _int(), "seed": _seed}),
}


def _checked(checks: dict[str, _Check], params: dict) -> dict:
    values = {}
    for key, check in checks.items():
        with st.within(repr(key)):
            values[key] = check(params[key])
    return values


def _detector_state(detector: DriftDetector) -> dict:
    name = type(detector).__name__
    if DETECTORS.get(name, (None,))[0] is not type(detector):
        raise st.StateError(f"{name} has no state format (known: {sorted(DETECTORS)})")
    checks = DETECTORS[name][1]
    with st.within(f"detector {name}"):  # checked on write too: a bad record fails now, not at restart
        params = _checked(checks, {key: getattr(detector, key) for key in checks})
    return {"name": name, "params": params}


def _detector_from_state(record: dict) -> DriftDetector:
    st.exact_keys(record, ("name", "params"))
    name = st.require(record, "name", str)
    if name not in DETECTORS:
        raise st.StateError(f"unknown detector {name[:64]!r} (known: {sorted(DETECTORS)})")
    kind, checks = DETECTORS[name]
    with st.within("'params'"):
        params = _checked(checks, st.exact_keys(st.require(record, "params", dict), checks))
    try:  # river refuses some combinations itself (KSWIN: stat_size >= window_size)
        return kind(**params)
    except (TypeError, ValueError, OverflowError) as error:
        raise st.StateError(f"{name}({params}) refused: {error}") from None


def _last_alarm(record: dict, events: int) -> int | None:
    last = st.require(record, "last_alarm_event", (int, type(None)))
    if last is not None and not 0 <= last <= events:
        raise st.StateError(f"'last_alarm_event' {last} is not within the {events} events seen")
    return last


def _replay(template: DriftDetector, values: list[float]) -> tuple[DriftDetector, int]:
    """A fresh copy of ``template`` fed ``values``, and how many it holds. An alarm during replay
    is not reported (it was, or the change is older than the replayed window); it restarts the
    detector as it would live."""
    detector, fed = copy.deepcopy(template), 0
    for value in values:
        detector.update(value)
        fed += 1
        if detector.drift_detected:
            detector, fed = copy.deepcopy(template), 0
    return detector, fed
