"""What the pipeline needs from the framework: publishing and partition-aware state.

streams/app.py implements both on Faust; unit tests use plain in-memory versions.
"""

from collections.abc import Awaitable, Iterator
from typing import Any, Protocol


class Publisher(Protocol):
    async def send(self, topic: str, key: str | None, value: bytes) -> Awaitable[Any]:
        """Queue a message; the returned awaitable completes when the broker has it."""


class StateTable(Protocol):
    """A key-value table whose writes belong to the partition of the message being handled
    (``handle``: the framework's event), so the state follows its partition on a rebalance."""

    def get(self, key: str) -> Any: ...

    def put(self, handle: Any, key: str, value: Any) -> None: ...

    def items(self) -> Iterator[tuple[str, Any]]: ...
