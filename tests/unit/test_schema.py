"""The committed JSON Schemas match the models, and describe every field (the form's help text)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ingestion_core.cli.main import main
from ingestion_core.config.schema import destination_file_schema, render, source_file_schema

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
REGENERATE = {
    "source.schema.json": ".venv/bin/python -m ingestion_core schema > configs/source.schema.json",
    "destination.schema.json": ".venv/bin/python -m ingestion_core schema --destination > "
                               "configs/destination.schema.json",
}


@pytest.mark.parametrize(("file", "args"), [("source.schema.json", ["schema"]),
                                            ("destination.schema.json", ["schema", "--destination"])])
def test_committed_schema_is_what_ingest_schema_prints(file: str, args: list[str],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 0
    printed = capsys.readouterr().out
    committed = (CONFIGS / file).read_text("utf-8")
    assert committed == printed, f"configs/{file} is out of date with the models; regenerate it: {REGENERATE[file]}"


def _properties(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, definition in schema.get("$defs", {}).items():
        for key, prop in definition.get("properties", {}).items():
            found.append((f"{name}.{key}", prop))
    return found


def _described(prop: dict[str, Any], schema: dict[str, Any]) -> bool:
    """Pydantic leaves out a field's description when it repeats the referenced model's docstring."""
    ref = prop.get("$ref", "").rsplit("/", 1)[-1]
    return bool(prop.get("description") or (ref and schema["$defs"][ref].get("description")))


@pytest.mark.parametrize("schema", [source_file_schema(), destination_file_schema()], ids=["source", "destination"])
def test_every_field_has_a_description(schema: dict[str, Any]) -> None:
    missing = [name for name, prop in _properties(schema) if not _described(prop, schema)]
    assert missing == [], f"fields without description (they become the form's help text): {missing}"


def test_secret_fields_are_marked_in_the_schema() -> None:
    text = render(source_file_schema())
    assert '"x-secret": true' in text and '"format": "secret-reference"' in text
    postgres = source_file_schema()["$defs"]["PostgresSource"]["properties"]["password"]
    assert any(option.get("x-secret") for option in postgres.get("anyOf", [postgres]))


def test_schema_is_valid_json_with_the_yaml_language_server_header() -> None:
    for file in REGENERATE:
        schema = json.loads((CONFIGS / file).read_text("utf-8"))
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
