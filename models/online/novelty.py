"""New defect types: unexplained anomalies clustered online until a dense group stands out.

river's DBSTREAM, from "Clustering Data Streams Based on Shared Density between Micro-Clusters"
(Hahsler and Bolaños, 2016), clusters the anomalies' directions of deviation
(LatentReference.directions: unit vectors of the defect descriptor in a whitened space of good
images' descriptors, so severity does not split one kind of defect into several and good
surface around the defect does not blur it). A micro-cluster whose faded weight passes
``min_weight`` and that holds at least ``min_members`` recent anomalies becomes a candidate.
Later anomalies near a candidate join it instead of raising another; once an operator labels
one of its members the candidate closes and its region counts as named.

Defaults measured with ``latentline evaluate-stream`` (docs/drift.md; models/online/defaults.py):
on deeppcb-patches, with the defect classifier in front and spur absent from train/, spur was
raised after 29 spur events with every exemplar a spur, as one candidate, and no candidate came
from the good parts' false positives over 2,000 stable events. Directions of the pooled latent,
which bundles fitted before keep, needed 52 to 99 spur events and split spur into several
candidates.

>>> rng = np.random.default_rng(0)
>>> def unit(v):
...     return (v / np.linalg.norm(v)).astype(np.float32)
>>> kind, detector, raised = unit(rng.normal(size=16)), NoveltyDetector(), []
>>> for i in range(200):  # every other anomaly of one new kind, the rest scattered
...     direction = unit(kind + rng.normal(scale=0.08, size=16)) if i % 2 else unit(rng.normal(size=16))
...     if candidate := detector.observe(Anomaly(f"e{i}", "cam-1", f"s3://img/e{i}.png", i, direction)):
...         raised.append((i, candidate.candidate_id))
>>> raised  # one candidate; the kind's later anomalies joined it
[(17, 'novelty-1')]
>>> detector.label("e19", "spur", "operator").is_open
False

State (``NoveltyDetector.to_state``/``from_state``, format ``novelty-detector/2``, which still
reads ``/1``, models/online/state.py) is explicit: the constructor parameters (``/2`` added
``model_version``, the bundle whose deviation space the directions are in), the candidates with
their members, and the buffer of recent anomalies. DBSTREAM's micro-clusters are not written:
``from_state`` rebuilds them by replaying the buffer, in order, into a fresh DBSTREAM (no
promotion during replay). While every anomaly DBSTREAM has learned is still in the buffer, the
clusters come back exactly; otherwise they hold only what the buffer remembers. What is lost is
little: DBSTREAM forgets a micro-cluster within a few hundred anomalies anyway (weights halve
every 1/fading_factor anomalies), the buffer holds the last ``buffer_size``, and the anomalies a
candidate took from it belong to a region where new anomalies join that candidate before
reaching DBSTREAM.
"""

from dataclasses import dataclass, field

import numpy as np
from river import cluster

from latentline.models.online import state as st
from latentline.models.online.defaults import NOVELTY_MIN_MEMBERS, NOVELTY_MIN_WEIGHT, NOVELTY_RADIUS
from latentline.schemas import Decision, TypeStatus

STATE_KIND, STATE_VERSION = "novelty-detector", 2
READABLE_VERSIONS = (1, 2)  # a /1 record names no model: read as /2 with model_version None


def is_unexplained(decision: Decision, type_status: TypeStatus | None = None) -> bool:
    """Which events novelty detection learns from: every anomaly, review included (it triples
    how many parts of a new kind reach the clusters at 1 % false positives), unless the defect
    classifier named it as a known type (``type_status``: None when the model has no types)."""
    return decision is not Decision.OK and type_status is not TypeStatus.KNOWN


@dataclass(frozen=True)
class Anomaly:
    """An anomaly nothing known explains, as novelty detection keeps it (``schemas.Sighting`` is
    its record on the ``latentline.novelty`` topic)."""

    event_id: str
    camera_id: str
    image_uri: str
    captured_at: float  # epoch seconds
    direction: np.ndarray  # unit vector, float32


@dataclass
class Candidate:
    candidate_id: str
    centre: np.ndarray
    members: list[Anomaly]
    size: int
    cameras: set[str]
    first_seen: float
    last_seen: float
    label: str | None = None
    labelled_by: str | None = None

    @property
    def is_open(self) -> bool:
        return self.label is None

    def exemplars(self, count: int) -> list[Anomaly]:
        """The members closest to the centre: the clearest examples for a person to look at."""
        return sorted(self.members, key=lambda s: float(np.linalg.norm(s.direction - self.centre)))[:count]

    @property
    def radius(self) -> float:
        return float(np.mean([np.linalg.norm(s.direction - self.centre) for s in self.members]))


@dataclass
class NoveltyDetector:
    clustering_threshold: float = NOVELTY_RADIUS
    fading_factor: float = 0.01
    min_weight: float = NOVELTY_MIN_WEIGHT
    min_members: int = NOVELTY_MIN_MEMBERS
    buffer_size: int = 300
    max_members: int = 64
    prefix: str = "novelty"
    # the bundle whose deviation space its directions are in (None: not recorded, /1 records)
    model_version: str | None = None
    candidates: list[Candidate] = field(default_factory=list, init=False)
    buffer: list[Anomaly] = field(default_factory=list, init=False)

    def __post_init__(self):
        self.clusters = cluster.DBSTREAM(
            clustering_threshold=self.clustering_threshold, fading_factor=self.fading_factor
        )

    def observe(self, anomaly: Anomaly) -> Candidate | None:
        """Returns a candidate when this anomaly makes one; None otherwise. A direction that is
        not finite is skipped: it would poison the clusters and could not be stored."""
        if not np.all(np.isfinite(anomaly.direction)):
            return None
        known = self._nearest_candidate(anomaly.direction)
        if known is not None:
            _join(known, anomaly, self.max_members)
            return None
        self.clusters.learn_one(_as_dict(anomaly.direction))
        self.buffer = (self.buffer + [anomaly])[-self.buffer_size :]
        return self._promote()

    def serves(self, model_version: str, dimension: int) -> bool:
        """Whether directions from this model belong in its clusters: each bundle has its own
        deviation space, so distances to another model's clusters mean nothing. A detector
        that names no model (a /1 record) takes the first model whose directions have the
        length of those it holds."""
        if self.model_version is None:
            held = [c.centre for c in self.candidates] + [s.direction for s in self.buffer]
            if held and len(held[0]) != dimension:
                return False
            self.model_version = model_version
        return self.model_version == model_version

    def label(self, event_id: str, label: str, labelled_by: str) -> Candidate | None:
        """Close the open candidate that holds ``event_id``; returns it, or None."""
        for candidate in self.candidates:
            if candidate.is_open and any(s.event_id == event_id for s in candidate.members):
                candidate.label, candidate.labelled_by = label, labelled_by
                return candidate
        return None

    def to_state(self) -> dict:
        """This detector as a ``novelty-detector/2`` record of plain values
        (models.online.state.dumps_state)."""
        return {
            "format": f"{STATE_KIND}/{STATE_VERSION}",
            "params": {name: getattr(self, name) for name in _PARAMS},
            "candidates": [_candidate_state(c) for c in self.candidates],
            "buffer": [_anomaly_state(s) for s in self.buffer],
        }

    @classmethod
    def from_state(cls, record: dict) -> "NoveltyDetector":
        """The detector a record describes, its clusters rebuilt by replay (module docstring).
        Raises models.online.state.StateError for anything but a well-formed ``novelty-detector/1``
        or ``/2``."""
        st.exact_keys(record, ("format", "params", "candidates", "buffer"))
        st.check_format(record, STATE_KIND, READABLE_VERSIONS)
        params = st.require(record, "params", dict)
        if record["format"] == f"{STATE_KIND}/1":
            params = params | {"model_version": None}
        with st.within("params"):
            detector = cls(**_params_from_state(params))
        detector.candidates = _items(record, "candidates", lambda c: _candidate_from_state(c, detector))
        detector.buffer = _items(record, "buffer", _anomaly_from_state)
        _check_record(detector)
        for anomaly in detector.buffer:  # replay: the clusters learn what they learned before
            detector.clusters.learn_one(_as_dict(anomaly.direction))
        return detector

    def _nearest_candidate(self, direction: np.ndarray) -> Candidate | None:
        if not self.candidates:
            return None
        distances = [float(np.linalg.norm(direction - c.centre)) for c in self.candidates]
        best = int(np.argmin(distances))
        return self.candidates[best] if distances[best] <= self.clustering_threshold else None

    def _promote(self) -> Candidate | None:
        for micro in list(self.clusters.micro_clusters.values()):
            if micro.weight < self.min_weight:
                continue
            centre = np.array([micro.center[i] for i in range(len(micro.center))], dtype=np.float32)
            radius = self.clustering_threshold
            near = [s for s in self.buffer if np.linalg.norm(s.direction - centre) <= radius]
            if len(near) >= self.min_members:
                return self._open(near)
        return None

    def _open(self, members: list[Anomaly]) -> Candidate:
        centre = np.mean([s.direction for s in members], axis=0)
        candidate = Candidate(
            candidate_id=f"{self.prefix}-{len(self.candidates) + 1}",
            centre=(centre / max(np.linalg.norm(centre), 1e-12)).astype(np.float32),
            members=members[-self.max_members :],
            size=len(members),
            cameras={s.camera_id for s in members},
            first_seen=min(s.captured_at for s in members),
            last_seen=max(s.captured_at for s in members),
        )
        taken = {s.event_id for s in members}
        self.buffer = [s for s in self.buffer if s.event_id not in taken]
        self.candidates.append(candidate)
        return candidate


def _join(candidate: Candidate, anomaly: Anomaly, max_members: int) -> None:
    candidate.size += 1
    candidate.cameras.add(anomaly.camera_id)
    candidate.last_seen = max(candidate.last_seen, anomaly.captured_at)
    if len(candidate.members) < max_members:
        candidate.members.append(anomaly)


def _as_dict(vector: np.ndarray) -> dict[int, float]:
    return {i: float(v) for i, v in enumerate(vector)}


# State codec (module docstring). Bounds on strings (models.online.state.MAX_NAME, MAX_URI) are above
# what the wire schemas let in (identifiers of 128 characters, S3 keys of 1024 bytes).


def _positive(value) -> float:
    if st.finite(value) <= 0:
        raise st.StateError(f"{value} is not positive")
    return float(value)


# The constructor parameters a record gives, and how each is checked.
_PARAMS = {
    "clustering_threshold": _positive,
    "fading_factor": lambda v: _positive(st.finite(v, 0, 1)),
    "min_weight": lambda v: st.finite(v, 0),
    "min_members": lambda v: st.integer(v, 1),
    "buffer_size": lambda v: st.integer(v, 1),
    "max_members": lambda v: st.integer(v, 1),
    "prefix": st.text,
    "model_version": lambda v: None if v is None else st.text(v),
}
_ANOMALY_KEYS = ("event_id", "camera_id", "image_uri", "captured_at", "direction")
_CANDIDATE_KEYS = ("candidate_id", "centre", "members", "size", "cameras", "first_seen", "last_seen",
                   "label", "labelled_by")


def _floats(vector: np.ndarray) -> list[float]:
    """float32 values at their shortest decimal (8-9 digits, not 17): the same float32 values
    come back, from 40 % fewer bytes."""
    return [float(str(v)) for v in np.asarray(vector, np.float32)]


def _anomaly_state(s: Anomaly) -> dict:
    return {"event_id": s.event_id, "camera_id": s.camera_id, "image_uri": s.image_uri,
            "captured_at": float(s.captured_at), "direction": _floats(s.direction)}


def _candidate_state(c: Candidate) -> dict:
    return {"candidate_id": c.candidate_id, "centre": _floats(c.centre),
            "members": [_anomaly_state(s) for s in c.members], "size": c.size,
            "cameras": sorted(c.cameras), "first_seen": float(c.first_seen), "last_seen": float(c.last_seen),
            "label": c.label, "labelled_by": c.labelled_by}


def _params_from_state(record: dict) -> dict:
    st.exact_keys(record, _PARAMS)
    params = {}
    for name, check in _PARAMS.items():
        with st.within(repr(name)):
            params[name] = check(record[name])
    return params


def _items(record: dict, key: str, parse) -> list:
    items = []
    for i, item in enumerate(st.require(record, key, list)):
        with st.within(f"{key}[{i}]"):
            items.append(parse(item))
    return items


MAX_DIMENSION = 1024  # directions are 16- or 32-d; the bound keeps a forged record's replay cheap


def _vector(record: dict, key: str) -> np.ndarray:
    with st.within(repr(key)):
        values = st.require(record, key, list)
        if len(values) > MAX_DIMENSION:
            raise st.StateError(f"{len(values)} values, more than {MAX_DIMENSION}")
        with np.errstate(over="ignore"):
            vector = np.asarray(st.vector(values), np.float32)
        if not np.all(np.isfinite(vector)):
            raise st.StateError("a value is beyond the float32 range")
        return vector


def _name(record: dict, key: str, max_length: int = st.MAX_NAME) -> str:
    with st.within(repr(key)):
        return st.text(st.require(record, key, str), max_length)


def _anomaly_from_state(record: dict) -> Anomaly:
    st.exact_keys(record, _ANOMALY_KEYS)
    return Anomaly(
        event_id=_name(record, "event_id"),
        camera_id=_name(record, "camera_id"),
        image_uri=_name(record, "image_uri", st.MAX_URI),
        captured_at=st.require(record, "captured_at", float),
        direction=_vector(record, "direction"),
    )


def _candidate_from_state(record: dict, detector: NoveltyDetector) -> Candidate:
    st.exact_keys(record, _CANDIDATE_KEYS)
    members = _items(record, "members", _anomaly_from_state)
    label, by = (st.require(record, key, (str, type(None))) for key in ("label", "labelled_by"))
    candidate = Candidate(
        candidate_id=_name(record, "candidate_id"), centre=_vector(record, "centre"), members=members,
        size=st.count(record, "size", 1), cameras=set(_items(record, "cameras", st.text)),
        first_seen=st.require(record, "first_seen", float), last_seen=st.require(record, "last_seen", float),
        label=None if label is None else _name(record, "label"),
        labelled_by=None if by is None else _name(record, "labelled_by"),
    )
    _check_candidate(candidate, detector.max_members)
    return candidate


def _check_candidate(c: Candidate, max_members: int) -> None:
    """What every candidate the detector makes satisfies (``_open``, ``_join``, ``label``)."""
    if not 1 <= len(c.members) <= min(max_members, c.size):
        raise st.StateError(f"{len(c.members)} members, not within 1..min(max_members, size)")
    if not {s.camera_id for s in c.members} <= c.cameras:
        raise st.StateError("a member's camera is missing from 'cameras'")
    if c.first_seen > c.last_seen:
        raise st.StateError(f"first_seen {c.first_seen} is after last_seen {c.last_seen}")
    if (c.label is None) != (c.labelled_by is None):
        raise st.StateError("'label' and 'labelled_by' are given together or not at all")


def _check_record(detector: NoveltyDetector) -> None:
    """Across the record: bounds from the parameters, unique ids, one dimension for all vectors."""
    if len(detector.buffer) > detector.buffer_size:
        raise st.StateError(f"buffer of {len(detector.buffer)} anomalies, more than buffer_size")
    ids = [c.candidate_id for c in detector.candidates]
    if len(set(ids)) != len(ids):
        raise st.StateError("candidate ids repeat")
    members = [s for c in detector.candidates for s in c.members]
    vectors = [c.centre for c in detector.candidates] + [s.direction for s in members + detector.buffer]
    if len(dimensions := {len(v) for v in vectors}) > 1:
        raise st.StateError(f"vectors of different dimensions {sorted(dimensions)} in one record")
