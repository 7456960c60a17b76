"""Destination kinds, registered by ``type``: each turns a destination config into what a dlt
pipeline needs (the destination, staging, file format, table format, merge strategy).

Previews always land in a local DuckDB file: :func:`preview_plan`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingestion_core import settings


@dataclass
class DestinationPlan:
    name: str
    type: str
    destination: Any
    staging: Any = None
    loader_file_format: str | None = "parquet"
    table_format: str | None = None
    merge_strategy: str = "delete-insert"
    serial_load: bool = False  # one load at a time (DuckDB: concurrent DDL conflicts)
    location: str = ""  # where the data lands, for people (no secrets)


DESTINATIONS: dict[str, Callable[[str, Any], DestinationPlan]] = {}


def register_destination(kind: str):
    def register(func: Callable[[str, Any], DestinationPlan]) -> Callable[[str, Any], DestinationPlan]:
        DESTINATIONS[kind] = func
        return func
    return register


def build_destination(name: str, config: Any) -> DestinationPlan:
    from ingestion_core.destinations import databricks, duckdb, filesystem  # noqa: F401  (register)

    try:
        builder = DESTINATIONS[config.type]
    except KeyError:
        raise LookupError(f"no destination kind '{config.type}'; known: {', '.join(sorted(DESTINATIONS))}") from None
    return builder(name, config)


def preview_plan(source_name: str) -> DestinationPlan:
    """A DuckDB file per source under INGEST_DATA_DIR/preview, apart from every real destination."""
    from ingestion_core.destinations.duckdb import duckdb_plan

    return duckdb_plan(f"preview_{source_name}", preview_database(source_name))


def preview_database(source_name: str) -> Path:
    return settings.data_dir() / "preview" / f"preview_{source_name}.duckdb"
