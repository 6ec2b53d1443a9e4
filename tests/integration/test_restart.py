"""State that must survive a worker restart: which events already have their verdict."""

import pytest

from tests.integration.conftest import make_stack

pytestmark = pytest.mark.integration


def test_event_resent_across_a_restart_gets_no_second_verdict(broker_url, store_url, bundle_dir,
                                                                tmp_path, pcb_dir):
    stack = make_stack(broker_url, store_url, bundle_dir, tmp_path)
    first, second = sorted((pcb_dir / "test" / "good").iterdir())[:2]
    sent = {}

    async def publish_first(producer, simulator):
        sent["event"] = await simulator.publish(first, "cam-r")
        return [sent["event"].event_id]

    with stack.worker("before"):
        stack.run(publish_first)

    async def resend_and_continue(producer, simulator):
        # the answered event arrives again, then a new one
        await producer.send_and_wait(stack.settings.events_topic, sent["event"].to_bytes(), key=b"cam-r")
        return [sent["event"].event_id, (await simulator.publish(second, "cam-r")).event_id]

    with stack.worker("after"):
        outcomes = stack.run(resend_and_continue)
        duplicates = stack.metrics()["latentline_duplicate_events_total"]
    assert outcomes.duplicates == 0, "the resent event got a second verdict"
    assert len(outcomes.verdicts) == 2
    assert duplicates == 1
