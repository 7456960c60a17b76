"""The preview explorer: SQL over a source's preview DuckDB file, and downloads of its tables.

The walls are DuckDB's own, not a keyword check: the file is opened read-only, with external
access disabled (no file, URL, other database, extension or secret can be reached, so
``SELECT * FROM read_text('.dlt/secrets.toml')`` is refused by DuckDB itself) and the
configuration locked (a query cannot turn access back on). A row cap bounds what comes back
and a timer interrupts a query that runs too long.

Example::

    preview_tables("demo_shop")                        # ['customers', 'orders']
    result = query_preview("demo_shop", "SELECT count(*) FROM orders")
    result.rows.to_pylist()                           # [{'count_star()': 1000}]
    export_table("demo_shop", "orders", "parquet")    # the bytes of a Parquet file
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from ingestion_core.common.atomic import flock_within
from ingestion_core.config.secrets import mask
from ingestion_core.engine.destinations.duckdb import preview_database
from ingestion_core.engine.plan import load_slot_path

MEMORY_LIMIT = "1GB"  # one query must not take the portal's machine down
BUSY_WAIT_S = 5.0  # how long a query waits for a test run that is writing the preview
EXPORT_FORMATS = ("csv", "parquet")


class ExplorerError(ValueError):
    """A query or download that cannot be answered; the message is for the user.

    ``reason``: ``no_preview``, ``busy``, ``refused``, ``timeout``, ``sql`` or ``input``."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class QueryResult:
    columns: list[str]
    rows: Any  # pyarrow.Table, at most max_rows rows
    truncated: bool  # the query returned more rows than max_rows
    duration_s: float


def preview_tables(source: str) -> list[str]:
    """The tables of the source's preview (dlt's own tables left out); [] when there is no preview yet."""
    if not preview_database(source).exists():
        return []
    with _connect(source, BUSY_WAIT_S) as (connection, dataset):
        return _tables(connection, dataset)


def query_preview(source: str, sql: str, *, max_rows: int = 1000, timeout_s: float = 10.0) -> QueryResult:
    """Run ``sql`` on the preview of ``source``: bare table names are the preview's tables. At
    most ``max_rows`` rows come back (``truncated`` says there were more); a query still running
    after ``timeout_s`` seconds is interrupted. Raises :class:`ExplorerError`."""
    if not sql or not sql.strip():
        raise ExplorerError("the query is empty: write a SELECT, e.g. SELECT * FROM <table> LIMIT 10", "input")
    if max_rows < 1 or timeout_s <= 0:
        raise ExplorerError(f"max_rows must be at least 1 and timeout_s above 0 (got {max_rows}, {timeout_s})",
                            "input")
    started = time.monotonic()
    with _connect(source, timeout_s) as (connection, _dataset):
        table, truncated = _run(connection, sql, max_rows, timeout_s)
    return QueryResult(table.column_names, table, truncated, round(time.monotonic() - started, 3))


def export_table(source: str, table: str, fmt: Literal["csv", "parquet"], limit: int = 100_000) -> bytes:
    """The first ``limit`` rows of a preview table as a CSV or Parquet file (dlt's own columns
    left out), for download."""
    if fmt not in EXPORT_FORMATS:
        raise ExplorerError(f"format '{fmt}' is not one of {', '.join(EXPORT_FORMATS)}", "input")
    with _connect(source, BUSY_WAIT_S) as (connection, dataset):
        tables = _tables(connection, dataset)
        if table not in tables:
            raise ExplorerError(f"the preview of {source} has no table '{table}'; its tables: "
                                f"{', '.join(tables) or 'none'}", "input")
        data, _ = _run(connection, f'SELECT * FROM "{dataset}"."{table}" LIMIT {int(limit)}', int(limit), 60.0)
    data = data.drop_columns([c for c in data.column_names if c.startswith("_dlt")])
    buffer = io.BytesIO()
    if fmt == "csv":
        import pyarrow.csv

        pyarrow.csv.write_csv(data, buffer)
    else:
        import pyarrow.parquet

        pyarrow.parquet.write_table(data, buffer)
    return buffer.getvalue()


# --- the connection ------------------------------------------------------------------------

@contextlib.contextmanager
def _connect(source: str, wait_s: float) -> Iterator[tuple[Any, str]]:
    """A read-only connection on the preview with external access off and the configuration
    locked, its search path on the preview's dataset. A test run loading the preview holds the
    file's load slot: the connection waits for it (up to ``wait_s``) and holds the slot shared,
    so no load starts while it reads."""
    import duckdb

    path = preview_database(source)
    if not path.exists():
        raise ExplorerError(f"there is no preview of {source} yet: run a test run first (Test run in the portal, "
                            f"or `ingest preview {source}`)", "no_preview")
    with _shared_slot(str(path), wait_s):
        try:
            connection = duckdb.connect(str(path), read_only=True,
                                        config={"enable_external_access": False, "memory_limit": MEMORY_LIMIT})
        except duckdb.IOException as exc:
            raise ExplorerError(f"the preview of {source} is being written right now (a test run); try again in "
                                f"a moment ({_message(exc)})", "busy") from None
        try:
            dataset = _dataset(connection, source)
            connection.execute(f"SET search_path = '{dataset}'")
            connection.execute("SET lock_configuration = true")
            yield connection, dataset
        finally:
            connection.close()


@contextlib.contextmanager
def _shared_slot(location: str, wait_s: float) -> Iterator[None]:
    lock = load_slot_path(location)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        if not flock_within(handle, fcntl.LOCK_SH, wait_s):
            raise ExplorerError("the preview is being written right now (a test run); try again when it has "
                                "finished", "busy")
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _dataset(connection: Any, source: str) -> str:
    """The dataset dlt loaded the preview into: the schema holding its ``_dlt_loads`` table
    (the newest one when the dataset was renamed between previews)."""
    rows = connection.execute(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = '_dlt_loads' "
        "AND table_schema NOT LIKE '%\\_staging' ESCAPE '\\' ORDER BY table_schema").fetchall()
    if not rows:
        raise ExplorerError(f"the preview of {source} holds no table yet: run a test run first", "no_preview")
    if len(rows) == 1:
        return rows[0][0]
    newest = [(connection.execute(f'SELECT max(inserted_at) FROM "{schema}"._dlt_loads').fetchone()[0], schema)
              for (schema,) in rows]
    return max((at, schema) for at, schema in newest if at is not None)[1]


def _tables(connection: Any, dataset: str) -> list[str]:
    rows = connection.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
                              "AND table_name NOT LIKE '\\_dlt%' ESCAPE '\\' ORDER BY table_name", [dataset]).fetchall()
    return [name for (name,) in rows]


# --- running a query -----------------------------------------------------------------------

def _run(connection: Any, sql: str, max_rows: int, timeout_s: float) -> tuple[Any, bool]:
    """At most ``max_rows`` rows of the query as a pyarrow Table, and whether there were more."""
    import duckdb
    import pyarrow as pa

    timer = threading.Timer(timeout_s, connection.interrupt)
    timer.daemon = True
    timer.start()
    try:
        result = connection.execute(sql)
        if result.description is None:  # a statement without rows
            return pa.table({}), False
        reader = result.to_arrow_reader(min(max_rows + 1, 10_000))
        batches, rows = [], 0
        for batch in reader:
            batches.append(batch)
            rows += batch.num_rows
            if rows > max_rows:
                break
        table = pa.Table.from_batches(batches, schema=reader.schema)
    except duckdb.InterruptException:
        raise ExplorerError(f"the query ran longer than {timeout_s:g} s and was stopped: narrow it with a WHERE, "
                            "an aggregate or a LIMIT", "timeout") from None
    except duckdb.Error as exc:
        raise _explained(exc) from None
    finally:
        timer.cancel()
    return table.slice(0, max_rows), rows > max_rows


REFUSED = ("file system operations are disabled", "configuration has been locked", "read-only mode",
           "external extensions is disabled", "disabled through configuration", "disabled by configuration")


def _explained(exc: Exception) -> ExplorerError:
    text = _message(exc)
    if any(marker in str(exc) for marker in REFUSED):
        return ExplorerError("refused: the explorer only reads the preview's tables; files, other databases, "
                             f"extensions, settings and writes are off limits ({text})", "refused")
    return ExplorerError(f"SQL error: {text}", "sql")


def _message(exc: Exception) -> str:
    return mask(" ".join(str(exc).strip().splitlines()[:3]))
