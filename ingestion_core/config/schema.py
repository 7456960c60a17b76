"""JSON Schemas of the config files, for editors (yaml-language-server) and `ingest schema`."""

from __future__ import annotations

import json
from typing import Any

from ingestion_core.config.models.destinations import DESTINATION_ADAPTER
from ingestion_core.config.models.source_file import SOURCE_FILE_ADAPTER

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def source_file_schema() -> dict[str, Any]:
    schema = SOURCE_FILE_ADAPTER.json_schema()
    return {"$schema": DRAFT, "title": "Ingestion source file",
            "description": "configs/sources/<name>.yaml: one source, its tables and settings.", **schema}


def destination_file_schema() -> dict[str, Any]:
    schema = DESTINATION_ADAPTER.json_schema()
    return {"$schema": DRAFT, "title": "Ingestion destination file",
            "description": "configs/destinations/<name>.yaml: where real runs load.", **schema}


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=False) + "\n"
