"""DuckDB: the embedded default. A file under INGEST_DATA_DIR unless the config gives a path."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingestion_core.common import settings
from ingestion_core.engine.destinations import DestinationPlan, register_destination, resolve_config_once
from ingestion_core.engine.errors import HintedError

LOGGER = logging.getLogger("ingestion_core.engine.destinations.duckdb")

LOADER_PARQUET = {"compression": "none"}
"""The Parquet loader files of a DuckDB destination: written, read once by the DuckDB on the same
machine and deleted, so compressing them only costs CPU (snappy: 0.6 s of 1M rows, 0.4 s without;
the file is 95 MB instead of 67 MB). dlt's ``[data_writer]`` settings other than its defaults still
win (``DATA_WRITER__COMPRESSION=zstd`` compresses them)."""


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
    from dlt.common.destination.configuration import ParquetFormatConfiguration
    from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

    # the path as a mapping, not as the first argument: parsing that imports DuckDB (to tell a
    # connection from a path), which planning a run does not need yet (tests/unit/test_import_cost.py)
    database = {"database": str(path)}
    if memory_limit is None:
        credentials = DuckDbCredentials(database, statements=["RESET GLOBAL memory_limit"])
    else:
        credentials = DuckDbCredentials(database, global_config={"memory_limit": memory_limit})
    return resolve_config_once(dlt.destinations.duckdb(
        credentials, parquet_format=ParquetFormatConfiguration(**LOADER_PARQUET)))


@register_destination("duckdb")
def build(name: str, config: Any) -> DestinationPlan:
    path = settings.resolve_local_path(config.path) if config.path else settings.data_dir() / f"{name}.duckdb"
    return duckdb_plan(name, path)


def preview_plan(source_name: str) -> DestinationPlan:
    """A DuckDB file per source under INGEST_DATA_DIR/preview, apart from every real destination."""
    return duckdb_plan(f"preview_{source_name}", preview_database(source_name))


def preview_database(source_name: str) -> Path:
    return settings.data_dir() / "preview" / f"preview_{source_name}.duckdb"


PREVIEW_WAIT_S = 120.0  # how long a preview waits for another process to release the file


class PreviewFileBusyError(HintedError):
    """Another process held the preview file for longer than a preview waits."""


@contextlib.contextmanager
def kept_open(path: Path, wait_s: float = PREVIEW_WAIT_S) -> Iterator[None]:
    """Keep the DuckDB database at ``path`` open in this process for the block. DuckDB's Python
    client shares one open database between the connections of a process, so every connection
    opened to it meanwhile (a preview of 4 tables opens 9: dlt's state and load clients, each
    table's checks, the samples) joins the open database instead of opening the file, replaying
    its log and checkpointing when it closes: ~30-80 ms each, a third of a small preview
    (measured: /work/scratch-t1/count_connects.py, bench/bench_ab.py). For a preview's own file
    only: while it is held, no other process can open the file, so a preview of the same source
    in another process (a terminal's ``ingest preview`` while the portal test-runs it) waits up to
    ``wait_s`` for it, then says who holds it (PreviewFileBusyError)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = _connect_when_free(path, wait_s)
    try:
        yield
    finally:
        connection.close()


def _connect_when_free(path: Path, wait_s: float) -> Any:
    """A connection to ``path``, once no other process holds its lock (within ``wait_s``)."""
    import duckdb
    from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

    def locked(exc: BaseException) -> bool:
        return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()

    def waiting(state: Any) -> None:
        if state.attempt_number == 1:
            LOGGER.info("%s is in use by %s: waiting up to %g s for it", path.name,
                        _holder(state.outcome.exception()), wait_s)

    try:
        for attempt in Retrying(retry=retry_if_exception(locked), stop=stop_after_delay(wait_s),
                                wait=wait_exponential(multiplier=0.05, max=1.0), before_sleep=waiting, reraise=True):
            with attempt:
                return duckdb.connect(str(path))
    except duckdb.IOException as exc:
        if not locked(exc):
            raise
        raise PreviewFileBusyError(
            f"the preview file {path} is in use by {_holder(exc)} and was not released within {wait_s:g} s",
            "another test run of this source is going (an `ingest preview` in a terminal, or the portal of "
            "another machine user), or a program has the file open: wait for it to end, or close that "
            "program, and try again") from None
    raise AssertionError("unreachable")  # Retrying either returns, or raises


def _holder(exc: BaseException | None) -> str:
    """``process 1379`` from DuckDB's 'Conflicting lock is held in <program> (PID 1379)'."""
    found = re.search(r"PID (\d+)", str(exc))
    return f"process {found.group(1)}" if found else "another process"
