"""What the pipeline needs from the framework and its helpers: publishing, partition-aware state,
the idempotency ledger and the watchers of answered events.

streams/worker/app.py implements both on Faust; unit tests use plain in-memory versions.
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

    def delete(self, handle: Any, key: str) -> None: ...

    def items(self) -> Iterator[tuple[str, Any]]: ...


class Ledger(Protocol):
    """Which event ids already have a verdict: makes redelivery idempotent (streams/worker/ledger.py)."""

    def answered(self, event_id: str) -> bool: ...

    def record(self, handle: Any, partition: int, event_id: str) -> None: ...

    def purge(self, handles: dict[int, Any]) -> int: ...


class Watcher(Protocol):
    """Sees every answered event (drift, novelty, review); returns the deliveries it queued."""

    def observe(self, observations: list) -> list[Awaitable]: ...
