"""Generate the checked-in JSON Schema files: ``python -m latentline.schemas.jsonschema``."""

import json
from pathlib import Path

from latentline.schemas.topics import TOPICS

SCHEMA_DIR = Path(__file__).parent / "json"


def rendered() -> dict[str, str]:
    """File name -> JSON text, one per topic record."""
    out = {}
    for topic in TOPICS:
        schema = topic.record.model_json_schema()
        schema["$id"] = f"latentline/{topic.name}.schema.json"
        schema["description"] = topic.description
        out[f"{topic.name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def write(directory: Path = SCHEMA_DIR) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in rendered().items():
        (directory / name).write_text(text)


if __name__ == "__main__":
    write()
