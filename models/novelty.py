"""New defect types: unexplained anomalies clustered online until a dense group stands out.

river's DBSTREAM clusters the anomalies' directions of deviation (LatentReference.directions,
unit vectors, so severity does not split one kind of defect into several). A micro-cluster whose
faded weight passes ``min_weight`` and that holds at least ``min_members`` recent sightings
becomes a candidate. Later sightings near a candidate join it instead of raising another; once
an operator labels one of its members the candidate closes and its region counts as named.

Defaults measured on deeppcb-patches (README, "Drift and new defect types"): spur, absent from
train/, raised within 50-70 spur events with every exemplar a spur, and no candidate from the
good parts' false positives over 2,000 stable events.
"""

from dataclasses import dataclass, field

import numpy as np
from river import cluster

from schemas import Decision, TypeStatus


def is_unexplained(decision: Decision, type_status: TypeStatus | None = None) -> bool:
    """Which events novelty detection learns from: every anomaly, review included (it triples
    how many parts of a new kind reach the clusters at 1 % false positives), unless the defect
    classifier named it as a known type (``type_status``: None when the model has no types)."""
    return decision is not Decision.OK and type_status is not TypeStatus.KNOWN


@dataclass(frozen=True)
class Sighting:
    """An anomaly nothing known explains."""

    event_id: str
    camera_id: str
    image_uri: str
    captured_at: float  # epoch seconds
    direction: np.ndarray  # unit vector, float32


@dataclass
class Candidate:
    candidate_id: str
    centre: np.ndarray
    members: list[Sighting]
    size: int
    cameras: set[str]
    first_seen: float
    last_seen: float
    label: str | None = None
    labelled_by: str | None = None

    @property
    def is_open(self) -> bool:
        return self.label is None

    def exemplars(self, count: int) -> list[Sighting]:
        """The members closest to the centre: the clearest examples for a person to look at."""
        return sorted(self.members, key=lambda s: float(np.linalg.norm(s.direction - self.centre)))[:count]

    @property
    def radius(self) -> float:
        return float(np.mean([np.linalg.norm(s.direction - self.centre) for s in self.members]))


@dataclass
class NoveltyDetector:
    clustering_threshold: float = 0.9
    fading_factor: float = 0.01
    min_weight: float = 8.0
    min_members: int = 6
    buffer_size: int = 300
    max_members: int = 64
    prefix: str = "novelty"
    candidates: list[Candidate] = field(default_factory=list, init=False)
    buffer: list[Sighting] = field(default_factory=list, init=False)

    def __post_init__(self):
        self.clusters = cluster.DBSTREAM(
            clustering_threshold=self.clustering_threshold, fading_factor=self.fading_factor
        )

    def observe(self, sighting: Sighting) -> Candidate | None:
        """Returns a candidate when this sighting makes one; None otherwise."""
        known = self._nearest_candidate(sighting.direction)
        if known is not None:
            _join(known, sighting, self.max_members)
            return None
        self.clusters.learn_one(_as_dict(sighting.direction))
        self.buffer = (self.buffer + [sighting])[-self.buffer_size :]
        return self._promote()

    def label(self, event_id: str, label: str, labelled_by: str) -> Candidate | None:
        """Close the open candidate that holds ``event_id``; returns it, or None."""
        for candidate in self.candidates:
            if candidate.is_open and any(s.event_id == event_id for s in candidate.members):
                candidate.label, candidate.labelled_by = label, labelled_by
                return candidate
        return None

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

    def _open(self, members: list[Sighting]) -> Candidate:
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


def _join(candidate: Candidate, sighting: Sighting, max_members: int) -> None:
    candidate.size += 1
    candidate.cameras.add(sighting.camera_id)
    candidate.last_seen = max(candidate.last_seen, sighting.captured_at)
    if len(candidate.members) < max_members:
        candidate.members.append(sighting)


def _as_dict(vector: np.ndarray) -> dict[int, float]:
    return {i: float(v) for i, v in enumerate(vector)}
