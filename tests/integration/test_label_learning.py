"""Operators teach a defect type the model never saw, on the real broker and object store:
review requests say what to look at, labels arrive on inspection.labels, and later events of
that type come out as that type, on a worker started after the labels too."""

import time
from datetime import UTC, datetime

import pytest

from latentline.schemas import Label, ReviewReason, TypeStatus
from tests.integration.conftest import make_stack, send_raw

pytestmark = pytest.mark.integration

N_LABELS = 8


def publisher_of(paths, camera: str, sent: dict | None = None):
    """A scenario publishing ``paths``; ``sent`` records event id -> path."""
    async def scenario(producer, simulator):
        ids = []
        for path in paths:
            ids.append((await simulator.publish(path, camera)).event_id)
            if sent is not None:
                sent[ids[-1]] = path
        return ids

    return scenario


def test_labels_for_a_new_type_make_later_events_of_it_come_out_as_it(
    broker_url, store_url, bundle_dir, tmp_path, pcb_dir
):
    stack = make_stack(broker_url, store_url, bundle_dir, tmp_path, examples_sync_seconds=0.5)
    spurs = sorted((pcb_dir / "test" / "spur").iterdir())[:40]
    with stack.worker("first"):
        sent: dict = {}
        before = stack.run(publisher_of(spurs, "cam-s", sent))
        typed = {v.event_id: v for v in before.verdicts.values() if v.classification is not None}
        assert not any(v.classification.best_guess == "spur" for v in typed.values())
        assert len(typed) >= N_LABELS, "enough spur parts must be anomalous to be labelled"
        # every spur part the model could not name went to review, with its image
        unnamed = {i for i, v in typed.items() if v.classification.status is not TypeStatus.KNOWN}
        reviewed = {r.event_id: r for r in before.reviews}
        assert unnamed <= set(reviewed)
        some = reviewed[next(iter(unnamed))]
        assert {ReviewReason.AMBIGUOUS_TYPE, ReviewReason.UNKNOWN_TYPE} & set(some.reasons)
        assert some.image_uri == before.verdicts[some.event_id].image_uri

        chosen = sorted(typed, key=lambda i: sent[i].name)[:N_LABELS]  # the same images every run
        labels = [Label(event_id=i, label="spur", labelled_by="op-3", labelled_at=datetime.now(UTC))
                  for i in chosen]

        async def label_them(producer, simulator):
            for label in labels:
                await send_raw(producer, stack.settings.labels_topic, label.to_bytes(), key=label.event_id)
            return []

        examples = stack.metrics()["latentline_classifier_examples"]  # the fitted ones
        stack.run(label_them)
        # every label in: the first one alone already makes spur a sixth type
        assert wait_for_metric(stack, "latentline_classifier_examples", examples + N_LABELS)
        assert wait_for_metric(stack, "latentline_classifier_types", 6.0)
        assert stack.metrics()["latentline_labels_total"] == N_LABELS  # all learned (none failed)

        taught = [sent[i] for i in chosen]
        resent: dict = {}
        after = stack.run(publisher_of(taught, "cam-s", resent))
    assert_named_spur(after, resent)

    with stack.worker("restarted"):  # a new worker reads the labelled examples from the store
        assert wait_for_metric(stack, "latentline_classifier_examples", examples + N_LABELS)
        assert wait_for_metric(stack, "latentline_classifier_types", 6.0)
        resent = {}
        again = stack.run(publisher_of(taught, "cam-t", resent))
    assert_named_spur(again, resent)


def assert_named_spur(outcomes, sent: dict) -> None:
    """The images labelled earlier, sent again as new events, come out as spur: the most probable
    type of all but one, and named automatically for some. A type taught from eight labels in two
    views sits near the automatic-naming confidence (0.7 to 0.85 against 0.84 here), so how many
    clear it varies with the fitted bundle; `latentline evaluate` measures that rate
    (new_type_learning), this test the path through the broker, the store and a restart."""
    types = [outcomes.verdicts[i].classification for i in sent]
    assert sum(t is not None and t.best_guess == "spur" for t in types) >= len(sent) - 1, types
    assert any(t is not None and t.defect_type == "spur" for t in types), types


def wait_for_metric(stack, name: str, value: float, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.metrics().get(name) == value:
            return True
        time.sleep(0.5)
    return False
