"""How the worker's long-lived state is written to its changelog topics: explicit, versioned JSON.

Drift monitors and novelty detectors used to be pickled into the changelogs, so anyone able to
write those topics could run code in the worker. Now each record is a JSON document with a
``format`` such as ``drift-monitor/1`` (models/online/state.py), parsed and validated field by field;
a record that fails is rejected (logged and counted as ``latentline_state_rejected_total``),
never executed, and its key starts afresh.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from latentline.models.online import drift, novelty
from latentline.models.online.state import StateError, dumps_state, loads_state

StateRejected = StateError


@dataclass(frozen=True)
class Codec:
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]  # raises StateRejected


def _codec(cls, kind: str, version: int) -> Codec:
    return Codec(
        encode=lambda value: dumps_state(value.to_state()),
        decode=lambda data: cls.from_state(loads_state(data, kind, version)),
    )


DRIFT_CODEC = _codec(drift.DriftMonitor, drift.STATE_KIND, drift.READABLE_VERSIONS)
NOVELTY_CODEC = _codec(novelty.NoveltyDetector, novelty.STATE_KIND, novelty.STATE_VERSION)
