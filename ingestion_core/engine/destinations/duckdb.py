"""DuckDB: the embedded default. A file under INGEST_DATA_DIR unless the config gives a path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ingestion_core.common import settings
from ingestion_core.engine.destinations import DestinationPlan, register_destination, resolve_config_once


def duckdb_plan(name: str, path: Path) -> DestinationPlan:
    import dlt

    path.parent.mkdir(parents=True, exist_ok=True)
    return DestinationPlan(
        name=name, type="duckdb", destination=resolve_config_once(dlt.destinations.duckdb(str(path))),
        serial_load=True, location=str(path),
    )


@register_destination("duckdb")
def build(name: str, config: Any) -> DestinationPlan:
    path = settings.resolve_local_path(config.path) if config.path else settings.data_dir() / f"{name}.duckdb"
    return duckdb_plan(name, path)


def preview_plan(source_name: str) -> DestinationPlan:
    """A DuckDB file per source under INGEST_DATA_DIR/preview, apart from every real destination."""
    return duckdb_plan(f"preview_{source_name}", preview_database(source_name))


def preview_database(source_name: str) -> Path:
    return settings.data_dir() / "preview" / f"preview_{source_name}.duckdb"
