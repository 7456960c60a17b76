"""Run records: one JSON file per run (preview or real, success or failure), and queries over
them with DuckDB (``read_json`` over the folder, local or an fsspec URL).

The format is versioned (``record_version``) and published as a JSON Schema
(docs/run-record.schema.json, from :class:`RunRecord`). It only grows: fields are added,
never renamed or removed. A record is rewritten whole at each phase (running -> per-table
progress -> final): by temp file + rename locally, by one PUT on object stores.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ingestion_core.common import settings

RECORD_VERSION = 1
Status = Literal["running", "success", "failed", "partial", "quality_failed", "cancelled"]
EXIT_CODES = {"success": 0, "failed": 1, "quality_failed": 2, "partial": 3, "cancelled": 130}
FINAL = ("success", "failed", "partial", "quality_failed", "cancelled")


class Phase(BaseModel):
    duration_s: float = Field(0.0, description="Seconds spent in the phase.")
    pct: float = Field(0.0, description="Share of the summed phase time, in percent.")


class ErrorInfo(BaseModel):
    error_class: str = Field(description="Class of the root cause, e.g. OperationalError.")
    message: str = Field(description="What happened, secrets masked.")
    hint: str = Field("", description="What to do about it.")
    transient: bool = Field(False, description="Whether a retry could help.")


def cancelled_error(actor: str) -> ErrorInfo:
    """The error of a run or test run someone stopped: who, and what to do."""
    return ErrorInfo(error_class="Cancelled", message=f"cancelled by {actor}",
                     hint="run it again when wanted; tables that finished before the stop are loaded")


class TableResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    mode: str
    status: Literal["pending", "running", "success", "failed", "quality_failed", "skipped", "cancelled"] = "pending"
    backend: str | None = None
    rows: int = Field(0, description="Rows loaded into the table (child tables included).")
    records: int | None = Field(
        None, description="Records of the table itself (its root table), child tables left out: what the source "
        "yielded. None in records written before this field existed (then rows is the best count).")
    child_rows: dict[str, int] = Field(
        default_factory=dict, description="Rows per child table (landed name: rows), e.g. a REST record's nested "
        "list unpacked into <table>__<field>; rows = records + the sum of these.")
    rows_so_far: int = Field(
        0, description="Records read from the source so far, counted per chunk while the table loads and published "
        "at most once a second (the Status tab shows it growing); at the end, what the extract read.")
    bytes: int = Field(0, description="Bytes of the files extracted for the table.")
    files: int = Field(0, description="Load jobs (files) loaded.")
    duration_s: float = 0.0
    started_at: datetime | None = None
    ended_at: datetime | None = None
    phases: dict[str, Phase] = Field(default_factory=dict)
    attempts: int = 0
    request_retries: int = Field(
        0, description="HTTP requests sent again (REST sources: 429, 5xx, timeouts, lost connections), over all "
        "attempts. The source's retry_attempts per request are the table's whole retry budget: a table whose "
        "request ran out of them is not attempted again.")
    cursor: dict[str, Any] | None = Field(None, description="Incremental cursor: column and last value.")
    quality: list[dict[str, Any]] = Field(default_factory=list, description="Quality check results.")
    schema_changes: list[dict[str, Any]] = Field(default_factory=list, description="Columns added / removed / retyped.")
    columns: list[dict[str, Any]] = Field(default_factory=list, description="Landed schema: name, type, nullable.")
    type_decisions: list[dict[str, Any]] = Field(
        default_factory=list,
        description="How each source column lands: column, source_type, landed_type, decision (exact, "
        "converted: a documented lossless type change, refused) and note. See docs/type-mappings.md.",
    )
    source_columns: list[str] | None = Field(
        None, description="Columns the source declared for this run (names as landed), when its kind can tell; "
        "schema changes compare them between runs to see removed columns.")
    error: ErrorInfo | None = None


class RunRecord(BaseModel):
    """One run of one source. See docs/run-records.md for every field."""

    model_config = ConfigDict(extra="forbid")

    record_version: int = RECORD_VERSION
    run_id: str
    kind: Literal["run", "preview"]
    source: str
    source_type: str
    owner: str
    destination: str
    destination_type: str
    dataset: str
    trigger: Literal["cli", "portal", "job", "schedule", "test"] = "cli"
    actor: str
    status: Status = "running"
    started_at: datetime
    ended_at: datetime | None = None
    heartbeat_at: datetime | None = None
    duration_s: float = 0.0
    host: str = Field(default_factory=socket.gethostname)
    pid: int = Field(default_factory=os.getpid)
    limit: int | None = Field(None, description="Preview row limit per table.")
    phases: dict[str, Phase] = Field(
        default_factory=dict, description="extract / normalize / load, summed over tables."
    )
    tables: list[TableResult] = Field(default_factory=list)
    rows_total: int = Field(0, description="Rows loaded, child tables included (sum of the tables' rows).")
    records_total: int | None = Field(
        None, description="Records of the root tables, child tables left out (sum of the tables' records); None "
        "in records written before this field existed.")
    bytes_total: int = 0
    throughput_rows_per_s: float = 0.0
    workers: dict[str, int] = Field(default_factory=dict)
    error: ErrorInfo | None = None
    config_hash: str = ""
    config_snapshot: str = Field("", description="The source YAML as saved: references only, never secrets.")
    log_path: str = ""
    error_log_path: str = ""

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.status, 1)


def new_run_id(source: str, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now.strftime('%Y%m%dT%H%M%S')}-{source}-{os.urandom(3).hex()}"


def record_path(record: RunRecord) -> str:
    day = record.started_at.astimezone(UTC)
    return f"{settings.runs_dir().rstrip('/')}/{day:%Y/%m/%d}/{record.run_id}.json"


def write_record(record: RunRecord) -> str:
    """Write the whole record atomically (temp + rename, or one PUT on object stores)."""
    record.heartbeat_at = datetime.now(UTC)
    path = record_path(record)
    text = record.model_dump_json() + "\n"  # one line: DuckDB can then skip a malformed file
    if "://" in path:
        import fsspec

        ensure_protocol(path)
        with fsspec.open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        from ingestion_core.common.atomic import atomic_write_text

        atomic_write_text(Path(path), text)
    return path


def ensure_protocol(url: str) -> None:
    """``volumes://`` is this package's own fsspec protocol: registered on import of its module
    (an installed package also declares it as an ``fsspec.specs`` entry point)."""
    if url.startswith("volumes://"):
        import ingestion_core.storage.volumes  # noqa: F401


def load_record(path: str | Path) -> RunRecord:
    """A record by its path: local, or an fsspec URL (``volumes://...``, ``s3://...``)."""
    if "://" in str(path):
        import fsspec

        ensure_protocol(str(path))
        with fsspec.open(str(path), "r", encoding="utf-8") as handle:
            return RunRecord.model_validate_json(handle.read())
    return RunRecord.model_validate_json(Path(path).read_text(encoding="utf-8"))


def find_record(run_id: str) -> RunRecord | None:
    runs = settings.runs_dir().rstrip("/")
    if "://" in runs:
        from fsspec.core import url_to_fs

        ensure_protocol(runs)
        fs, root = url_to_fs(runs)
        found = fs.glob(f"{root}/*/*/*/{run_id}.json")
        return load_record(fs.unstrip_protocol(found[0])) if found else None
    for path in Path(runs).glob(f"*/*/*/{run_id}.json"):
        return load_record(path)
    return None


def is_abandoned(record: RunRecord | dict[str, Any], stale_after: timedelta = timedelta(minutes=30)) -> bool:
    """A record still 'running' whose process is gone (same host) or silent for too long."""
    get = record.get if isinstance(record, dict) else lambda key: getattr(record, key)
    if get("status") != "running":
        return False
    if get("host") == socket.gethostname():
        try:
            os.kill(int(get("pid")), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    beat = get("heartbeat_at") or get("started_at")
    return datetime.now(UTC) - beat > stale_after


# --- queries -------------------------------------------------------------------------------

RECORD_COLUMNS = {
    "run_id": "VARCHAR", "kind": "VARCHAR", "source": "VARCHAR", "source_type": "VARCHAR", "owner": "VARCHAR",
    "destination": "VARCHAR", "destination_type": "VARCHAR", "dataset": "VARCHAR", "trigger": "VARCHAR",
    "actor": "VARCHAR", "status": "VARCHAR", "started_at": "TIMESTAMPTZ", "ended_at": "TIMESTAMPTZ",
    "heartbeat_at": "TIMESTAMPTZ", "duration_s": "DOUBLE", "host": "VARCHAR", "pid": "BIGINT",
    "rows_total": "BIGINT", "records_total": "BIGINT", "bytes_total": "BIGINT", "throughput_rows_per_s": "DOUBLE",
    "error": "STRUCT(error_class VARCHAR, message VARCHAR, hint VARCHAR, transient BOOLEAN)",
    "phases": "JSON", "tables": "JSON", "config_hash": "VARCHAR", "log_path": "VARCHAR",
}


def _glob() -> str:
    return f"{settings.runs_dir().rstrip('/')}/*/*/*/*.json"


_SHARED_DATABASE: Any = None  # the in-memory DuckDB the queries' cursors belong to
_SHARED_LOCK = threading.Lock()


def records_connection() -> Any:
    """A DuckDB connection that can read the runs folder (close it after use: ``with``).

    Local folders and the object stores DuckDB reads itself: a cursor of one in-memory database
    per process (~1 ms, where a new database costs ~30 ms: a page draw makes ~10 of these
    queries, and a run one per table). ``volumes://`` (a Unity Catalog volume, through the
    workspace's Files API): a connection of its own with the volume filesystem registered."""
    import duckdb

    from ingestion_core.storage.volumes import PROTOCOL, register_with_duckdb

    runs = settings.runs_dir()
    if runs.startswith(f"{PROTOCOL}://"):
        connection = duckdb.connect()
        register_with_duckdb(connection, runs)
        return connection
    global _SHARED_DATABASE
    with _SHARED_LOCK:
        if _SHARED_DATABASE is None:
            _SHARED_DATABASE = duckdb.connect()
        return _SHARED_DATABASE.cursor()


def _read_json(source: str, columns: dict[str, str], filename: bool = False) -> str:
    spec = ", ".join(f"'{k}': '{v}'" for k, v in columns.items())
    return (f"read_json({source}, columns={{{spec}}}, format='newline_delimited', ignore_errors=true"
            f"{', filename=true' if filename else ''})")


def query_runs(
    sql_where: str = "TRUE", params: list[Any] | None = None, limit: int | None = None,
    files: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Runs, newest first, as dicts. ``sql_where`` uses the scalar columns of RECORD_COLUMNS;
    ``files``: only these record files (default: the whole runs folder).

    Two passes: the scalar columns of every record pick the runs (cheap), then only those
    files are read whole (per-table results and phases)."""
    if files is None and "://" not in settings.runs_dir() and not any(Path(settings.runs_dir()).glob("*/*/*/*.json")):
        return []
    scalar = {k: v for k, v in RECORD_COLUMNS.items() if v != "JSON"}
    pick = (f"SELECT filename FROM {_read_json('?', scalar, filename=True)} "
            f"WHERE run_id IS NOT NULL AND ({sql_where}) ORDER BY started_at DESC")
    if limit:
        pick += f" LIMIT {int(limit)}"
    import duckdb

    with records_connection() as connection:
        try:
            files = [row[0] for row in connection.execute(pick, [files or _glob(), *(params or [])]).fetchall()]
        except duckdb.IOException as exc:  # a runs folder on a volume or a bucket with no record yet
            if "No files found" in str(exc):
                return []
            raise
        if not files:
            return []
        cursor = connection.execute(
            f"SELECT * FROM {_read_json('?', RECORD_COLUMNS)} ORDER BY started_at DESC", [files])
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:
        for key in ("phases", "tables"):
            if isinstance(row.get(key), str):
                row[key] = json.loads(row[key])
    return rows


def latest_runs(source: str | None = None, status: str | None = None, limit: int = 50,
                kind: str | None = None, trigger: str | None = None,
                files: list[str] | None = None, batched: bool = True) -> list[dict[str, Any]]:
    """The newest ``limit`` runs matching the filters, newest first; ``files``: only these record
    files. ``batched``: the newest days first (:func:`newest_days_first`), the rest only when they
    do not hold ``limit`` runs: the scheduler asks for a source's last run every tick, whatever
    the size of the history."""
    clauses, params = [], []
    for column, value in (("source", source), ("status", status), ("kind", kind), ("trigger", trigger)):
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    where = " AND ".join(clauses) or "TRUE"
    if files is not None or not limit or not batched:
        return with_abandoned(query_runs(where, params, limit, files=files))
    runs: list[dict[str, Any]] = []
    for batch in newest_days_first():  # days partition the runs by started_at: the batches keep the order
        if batch is None:
            return with_abandoned(query_runs(where, params, limit))
        runs += query_runs(where, params, limit - len(runs), files=batch)
        if len(runs) >= limit:
            break
    return with_abandoned(runs)


def table_history(source: str, table: str, limit: int = 100, kind: str = "run") -> list[dict[str, Any]]:
    """One row per run of one table, newest first: status, rows, bytes, duration, error."""
    rows = []
    for run in latest_runs(source=source, kind=kind, limit=limit):
        for entry in run.get("tables") or []:
            if entry.get("name") == table:
                rows.append({"run_id": run["run_id"], "started_at": run["started_at"], "run_status": run["status"],
                             **{k: entry.get(k) for k in ("status", "rows", "bytes", "files", "duration_s",
                                                          "backend", "error", "cursor")}})
    return rows


def last_table_result(source: str, table: str, exclude_run_id: str | None = None,
                      limit: int = 50) -> tuple[str, dict[str, Any]] | None:
    """(run_id, table entry) of the newest real run that loaded ``table`` (status success or
    quality_failed) among the source's newest ``limit`` real runs, leaving out ``exclude_run_id``;
    None when there is none."""
    return last_table_results(source, [table], exclude_run_id, limit).get(table)


def last_table_results(source: str, tables: list[str], exclude_run_id: str | None = None,
                       limit: int = 50) -> dict[str, tuple[str, dict[str, Any]]]:
    """:func:`last_table_result` of each of ``tables`` at once (those with none left out): one
    read of the records for a run's tables, not one a table.

    Every table of every run asks this (schema changes, reconciliation), so it reads the newest
    days first (:func:`newest_days_first`), not the whole history, and stops at the first batch
    that has every result."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    seen = 0
    for files in newest_days_first():
        whole = files is None  # the whole folder: from the newest run on again
        if whole:
            found = {}
        runs = latest_runs(source=source, kind="run", limit=limit if whole else limit - seen, files=files,
                           batched=False)
        for run in runs:
            if run["run_id"] == exclude_run_id:
                continue
            for entry in run.get("tables") or []:
                name = entry.get("name")
                if name in tables and name not in found and entry.get("status") in ("success", "quality_failed"):
                    found[name] = run["run_id"], entry
        seen = limit if whole else seen + len(runs)
        if seen >= limit or len(found) == len(set(tables)):
            break
    return found


def newest_days_first() -> Iterator[list[str] | None]:
    """Where to look for the newest runs, in order: the record files (one glob a day) of a local
    runs folder's newest day, then of the 7 days before it, then (when there are older days) None:
    the whole folder, for the answer afresh. A runs folder on an object store or volume: None at once."""
    root = settings.runs_dir()
    days = [] if "://" in root else sorted(Path(root).glob("*/*/*"), reverse=True)  # YYYY/MM/DD: text order
    for batch in (days[:1], days[1:8]):
        globs = [f"{day}/*.json" for day in batch if any(day.glob("*.json"))]  # DuckDB refuses an empty glob
        if globs:
            yield globs
    if "://" in root or len(days) > 8:
        yield None


def check_history(source: str, table: str | None = None, check: str | None = None,
                  limit: int = 100) -> list[dict[str, Any]]:
    """One row per quality-check result, newest first."""
    rows = []
    for run in latest_runs(source=source, limit=limit):
        for entry in run.get("tables") or []:
            if table and entry.get("name") != table:
                continue
            for result in entry.get("quality") or []:
                if check and result.get("check") != check:
                    continue
                rows.append({"run_id": run["run_id"], "started_at": run["started_at"], "kind": run["kind"],
                             "table": entry.get("name"), **result})
    return rows


def with_abandoned(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Marks runs still 'running' whose process is gone as status 'abandoned'."""
    for run in runs:
        if is_abandoned(run):
            run["status"] = "abandoned"
    return runs


def run_record_schema() -> dict[str, Any]:
    """The published JSON Schema of a run record (docs/run-record.schema.json)."""
    schema = RunRecord.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"run-record-v{RECORD_VERSION}",
            **schema}
