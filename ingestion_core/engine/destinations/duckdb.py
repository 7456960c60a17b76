"""DuckDB: the embedded default. A file under INGEST_DATA_DIR unless the config gives a path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ingestion_core.common import settings
from ingestion_core.engine.destinations import DestinationPlan, register_destination, resolve_config_once


def duckdb_plan(name: str, path: Path) -> DestinationPlan:
    path.parent.mkdir(parents=True, exist_ok=True)
    limit, merge_limit = settings.duckdb_memory_limit(), settings.duckdb_memory_limit(merging=True)
    return DestinationPlan(
        name=name, type="duckdb", destination=_destination(path, limit),
        merge_destination=None if merge_limit == limit else _destination(path, merge_limit),
        serial_load=True, location=str(path),
    )


def _destination(path: Path, memory_limit: str | None) -> Any:
    """dlt's DuckDB destination whose every connection carries ``memory_limit`` (None: DuckDB's
    own default). Set on each connection dlt opens, so that what a connection to the same file
    set before (the limit is the database's, not the connection's) never carries over."""
    import dlt
    from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

    if memory_limit is None:
        credentials = DuckDbCredentials(str(path), statements=["RESET GLOBAL memory_limit"])
    else:
        credentials = DuckDbCredentials(str(path), global_config={"memory_limit": memory_limit})
    return resolve_config_once(dlt.destinations.duckdb(credentials))


@register_destination("duckdb")
def build(name: str, config: Any) -> DestinationPlan:
    path = settings.resolve_local_path(config.path) if config.path else settings.data_dir() / f"{name}.duckdb"
    return duckdb_plan(name, path)


def preview_plan(source_name: str) -> DestinationPlan:
    """A DuckDB file per source under INGEST_DATA_DIR/preview, apart from every real destination."""
    return duckdb_plan(f"preview_{source_name}", preview_database(source_name))


def preview_database(source_name: str) -> Path:
    return settings.data_dir() / "preview" / f"preview_{source_name}.duckdb"
