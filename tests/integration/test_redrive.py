"""``latentline redrive``: a dead letter whose cause is fixed gets its verdict once re-published."""

import asyncio

import pytest

from latentline.schemas import ErrorKind
from latentline.streams.worker.redrive import RedriveFilter, redrive
from latentline.streams.worker.store import ObjectStore, sha256_hex
from tests.integration.conftest import make_stack, send_raw
from tests.integration.test_pipeline import event_for, sample

pytestmark = pytest.mark.integration


def test_missing_objects_redriven_after_upload_get_their_verdicts(broker_url, store_url, bundle_dir,
                                                                 tmp_path, pcb_dir):
    stack = make_stack(broker_url, store_url, bundle_dir, tmp_path)
    bucket = stack.settings.image_bucket
    images = [p.read_bytes() for p in sample(pcb_dir, "good", 2, seed=11)]
    events = [event_for(f"s3://{bucket}/late/{i}.png", data) for i, data in enumerate(images)]
    other = event_for(f"s3://{bucket}/late/never.png", None)

    async def publish_too_early(producer, simulator):
        for event in [*events, other]:
            await send_raw(producer, stack.settings.events_topic, event.to_bytes(), key=event.camera_id)
        return [e.event_id for e in [*events, other]]

    with stack.worker():
        first = stack.run(publish_too_early)
        assert {d.error_kind for d in first.dead_letters} == {ErrorKind.MISSING_OBJECT}
        store = ObjectStore(stack.settings)
        for event, data in zip(events, images):  # the camera's upload arrives late
            assert sha256_hex(data) == event.sha256
            store.put(event.image_uri, data)
        chosen = RedriveFilter(kinds=frozenset({ErrorKind.MISSING_OBJECT}),
                               event_ids=frozenset(e.event_id for e in events))
        dry = asyncio.run(redrive(stack.settings, chosen, dry_run=True))
        assert dry.read == 2 and dry.redriven == 2
        report = asyncio.run(redrive(stack.settings, chosen))
        assert report.redriven == 2 and report.by_kind == {"missing_object": 2}

        async def nothing_new(producer, simulator):
            return [e.event_id for e in events]

        outcomes = stack.run(nothing_new, until=lambda o: {e.event_id for e in events} <= set(o.verdicts))
    assert {e.event_id for e in events} <= set(outcomes.verdicts)
    assert other.event_id not in outcomes.verdicts, "a letter outside the filter stays where it is"
    assert outcomes.duplicates == 0
