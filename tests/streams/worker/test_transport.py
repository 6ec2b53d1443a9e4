"""The worker's consumer waits at the broker for the configured time, not Faust's fixed 1.5 s."""

import asyncio

from streams.settings import Settings
from streams.worker.app import create_app


def test_the_worker_consumer_uses_the_fetch_wait_setting(tmp_path):
    async def created():
        app = create_app(Settings(fetch_max_wait_ms=40, state_dir=tmp_path))
        thread = app.consumer._thread
        return thread._create_worker_consumer(app.transport)

    consumer = asyncio.run(created())
    assert consumer._fetch_max_wait_ms == 40
