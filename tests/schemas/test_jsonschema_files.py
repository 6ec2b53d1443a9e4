"""The checked-in JSON Schema files must match the pydantic models."""

import json

import pytest

from latentline.schemas import TOPICS
from latentline.schemas.jsonschema import SCHEMA_DIR, rendered

REGENERATE = "run `python -m schemas.jsonschema` to regenerate schemas/json/"


@pytest.mark.parametrize("name", sorted(rendered()))
def test_checked_in_schema_is_current(name):
    path = SCHEMA_DIR / name
    assert path.is_file(), f"{path} is missing; {REGENERATE}"
    assert path.read_text() == rendered()[name], f"{path} is stale; {REGENERATE}"


def test_no_stray_schema_files():
    on_disk = {p.name for p in SCHEMA_DIR.glob("*.json")}
    assert on_disk == set(rendered()), f"schemas/json/ does not match the topics; {REGENERATE}"


@pytest.mark.parametrize("topic", TOPICS, ids=lambda t: t.name)
def test_every_topic_has_a_schema_file(topic):
    path = SCHEMA_DIR / f"{topic.name}.schema.json"
    assert path.is_file(), f"no schema file for topic {topic.name}; {REGENERATE}"
    schema = json.loads(path.read_text())
    assert schema["$id"] == f"latentline/{topic.name}.schema.json"
    assert schema["description"] == topic.description
    assert "schema_version" in schema["properties"]
    assert schema.get("additionalProperties") is False
