"""In-memory stand-ins for the framework ports (streams/ports.py)."""

import pickle

import pytest


class RecordingPublisher:
    """Stands in for the broker's producer: keeps what would be sent, in order."""

    def __init__(self):
        self.sent: list[tuple[str, str | None, bytes]] = []

    async def send(self, topic, key, value):
        self.sent.append((topic, key, value))

    def on(self, topic: str) -> list[bytes]:
        return [value for t, _, value in self.sent if t == topic]


class DictState:
    """A StateTable without partitions; values round-trip through pickle like the real one."""

    def __init__(self):
        self.data: dict[str, bytes] = {}

    def get(self, key):
        value = self.data.get(key)
        return None if value is None else pickle.loads(value)

    def put(self, handle, key, value):
        self.data[key] = pickle.dumps(value)

    def items(self):
        return [(k, pickle.loads(v)) for k, v in self.data.items()]


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def state() -> DictState:
    return DictState()
