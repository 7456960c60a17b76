"""Where the tool reads and writes. Every location can be moved with an environment variable,
so tests and several deployments never collide:

- ``INGEST_CONFIG_DIR`` (default ``configs/``): sources/, destinations/, templates/
- ``INGEST_RUNS_DIR`` (default ``runs/``): one JSON run record per run
- ``INGEST_DATA_DIR`` (default ``.ingest/``): preview DuckDB files, local destinations, dlt
  pipeline folders, logs, the bin of deleted configs and the audit log
- ``INGEST_SECRETS_FILE``: the local secrets file. Default ``.dlt/secrets.toml``, or
  ``$INGEST_DATA_DIR/secrets.toml`` when ``INGEST_DATA_DIR`` is set.
- ``INGEST_REST_ARROW`` (default ``1``): full, append and incremental REST loads go through
  dlt's Arrow path; ``0`` keeps them on dlt's JSON path (docs/rest-sources.md).
- ``INGEST_DUCKDB_MEMORY_LIMIT`` (default ``300MB``, merges unbounded): the memory a load into
  DuckDB may use before it spills to disk (docs/operations.md, "Memory of large loads").

Relative paths are taken from the current directory. Relative paths inside configs (a SQLite
file, a local folder of files) are taken from the project root: the folder holding the config
dir.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

DUCKDB_MEMORY_LIMIT = "300MB"
_MEMORY_SIZE = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)


def config_dir() -> Path:
    return Path(os.environ.get("INGEST_CONFIG_DIR", "configs")).absolute()


def runs_dir() -> str:
    """A local path or an fsspec URL (run records may live on object storage). Databricks'
    ``dbfs:/Volumes/<catalog>/<schema>/<volume>/...`` spelling means the ``volumes://`` URL."""
    value = os.environ.get("INGEST_RUNS_DIR", "runs")
    if value.startswith("dbfs:/Volumes/"):
        return "volumes://" + value.removeprefix("dbfs:/Volumes/")
    return value if "://" in value else str(Path(value).absolute())


def data_dir() -> Path:
    return Path(os.environ.get("INGEST_DATA_DIR", ".ingest")).absolute()


def secrets_file() -> Path:
    explicit = os.environ.get("INGEST_SECRETS_FILE")
    if explicit:
        return Path(explicit).absolute()
    if os.environ.get("INGEST_DATA_DIR"):
        return data_dir() / "secrets.toml"
    return Path(".dlt/secrets.toml").absolute()


def project_root() -> Path:
    """The folder relative paths inside configs are resolved against."""
    return config_dir().parent


def resolve_local_path(value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else project_root() / path



def rest_arrow() -> bool:
    """REST loads through dlt's Arrow path where it applies (on unless ``INGEST_REST_ARROW=0``;
    docs/rest-sources.md)."""
    return os.environ.get("INGEST_REST_ARROW", "1").strip().lower() not in ("0", "false", "no", "off")


def duckdb_memory_limit(merging: bool = False) -> str | None:
    """DuckDB's ``memory_limit`` for loads into DuckDB destinations (``INGEST_DUCKDB_MEMORY_LIMIT``).

    Unset: 300MB for tables loaded by insert (full, append, incremental), where DuckDB spills to a
    temporary folder next to the database file (a 20M-row load kept its time and peaked at 0.7 GB
    instead of 1.4 GB, bench/README.md); None (DuckDB's own default, 80 % of the machine's memory)
    for merge and scd2 tables, whose de-duplicating window DuckDB cannot spill (a 2M-row merge
    failed under 300MB). Set: that limit for every load."""
    value = os.environ.get("INGEST_DUCKDB_MEMORY_LIMIT", "").strip()
    if not value:
        return None if merging else DUCKDB_MEMORY_LIMIT
    if not _MEMORY_SIZE.match(value):
        raise ValueError(
            f"INGEST_DUCKDB_MEMORY_LIMIT: '{value}' is not a memory size; write a number and one of the units "
            f"B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), e.g. 300MB or 2GB, "
            f"or unset it for the default ({DUCKDB_MEMORY_LIMIT}, merges unbounded)")
    return value
