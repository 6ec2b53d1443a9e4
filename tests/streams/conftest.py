"""In-memory stand-ins for the framework ports (streams/worker/ports.py)."""

import json

import pytest

from latentline.models.online.drift import DriftMonitor
from latentline.models.online.novelty import NoveltyDetector
from latentline.streams.worker.state_codecs import DRIFT_CODEC, NOVELTY_CODEC, Codec

JSON_CODEC = Codec(lambda value: json.dumps(value).encode(), json.loads)


def codec_for(value) -> Codec:
    """The codec the worker's table uses for this kind of value (streams/worker/app.py)."""
    if isinstance(value, DriftMonitor):
        return DRIFT_CODEC
    return NOVELTY_CODEC if isinstance(value, NoveltyDetector) else JSON_CODEC


class RecordingPublisher:
    """Stands in for the broker's producer: keeps what would be sent, in order."""

    def __init__(self):
        self.sent: list[tuple[str, str | None, bytes]] = []

    async def send(self, topic, key, value):
        self.sent.append((topic, key, value))

    def on(self, topic: str) -> list[bytes]:
        return [value for t, _, value in self.sent if t == topic]


class DictState:
    """A StateTable without partitions, with the real table's contract (streams/worker/app.py FaustState):
    values are stored as bytes through the worker's codecs, and ``get`` returns the live object
    last put until ``restart()`` drops the objects, as a worker that starts anew does."""

    def __init__(self):
        self.data: dict[str, tuple[Codec, bytes]] = {}
        self.live: dict[str, object] = {}

    def get(self, key):
        if key not in self.data:
            return None
        if key not in self.live:
            codec, data = self.data[key]
            self.live[key] = codec.decode(data)
        return self.live[key]

    def put(self, handle, key, value):
        codec = codec_for(value)
        self.data[key] = (codec, codec.encode(value))
        self.live[key] = value

    def delete(self, handle, key):
        self.data.pop(key, None)
        self.live.pop(key, None)

    def restart(self) -> None:
        self.live.clear()

    def items(self):
        return [(key, self.get(key)) for key in list(self.data)]


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def state() -> DictState:
    return DictState()
