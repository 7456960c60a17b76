"""Runs a source config through dlt: previews into a local DuckDB file, real runs into the
configured destination. Every run, preview or real, success or failure, leaves a run record.

Each table of a real run runs in its own dlt pipeline (``<source>__<table>``) with its own state,
so a failing table never stops the others and its incremental cursor is its own. Tables extract
and normalize in parallel (``workers.tables_in_parallel``); loads into DuckDB are one at a
time (concurrent DDL on one DuckDB file conflicts). A preview of several tables runs them
through one pipeline (:func:`_preview_together`), falling back to a pipeline per table when it
fails. A real run holds its source's lock (:func:`ingestion_core.pipeline.locks.source_lock`)
from start to end: one run per source, whoever starts it.

Example::

    config = ConfigStore().load_source("demo_shop").config
    record = run_source(config, actor="ana", trigger="cli")
    record.status, record.rows_total
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingestion_core.common import preload
from ingestion_core.common.cancellation import RowCounter, raise_if_cancelled, stop_when_cancelled, wait_for_tables
from ingestion_core.config.models.source_file import SourceFileBase, TableSettings
from ingestion_core.config.models.tables import TableBase
from ingestion_core.config.store import SCHEMA_COMMENT, ConfigStore, dump_yaml
from ingestion_core.engine.destinations import DestinationPlan, build_destination
from ingestion_core.engine.destinations.duckdb import kept_open, preview_database, preview_plan
from ingestion_core.engine.errors import describe, error_class, explain, is_transient, retry_table
from ingestion_core.engine.hooks import AFTER_TABLE_FAILED, AFTER_TABLE_LOAD
from ingestion_core.engine.plan import (
    ProgressCallback,
    RunPlan,
    load_slot,
    pipeline_name,
    pipelines_dir,
)
from ingestion_core.engine.sources import BuildContext, ReadAgainError, get_source_kind
from ingestion_core.observe.records import (
    ErrorInfo,
    Phase,
    RunRecord,
    TableResult,
    new_run_id,
    record_path,
)
from ingestion_core.observe.run_log import LOGGER, run_logging
from ingestion_core.pipeline.locks import audit, source_lock
from ingestion_core.typemap.names import type_text as _type_text

DEFAULT_PREVIEW_LIMIT = 1000
PHASES = ("extract", "normalize", "load")
WRITE_DISPOSITIONS: dict[str, Any] = {
    "full": "replace", "append": "append", "incremental": "append",
    "merge": "merge",
    # scd2 compares row versions by a hash of the row's content (see row_hashes)
    "scd2": {"disposition": "merge", "strategy": "scd2", "row_version_column_name": "_ingest_row_hash"},
}
SCHEMA_CONTRACTS: dict[str, Any] = {
    "evolve": "evolve",
    # new tables are always allowed; freeze guards columns and types of an existing table
    "freeze": {"tables": "evolve", "columns": "freeze", "data_type": "freeze"},
    "discard_row": {"tables": "evolve", "columns": "discard_row", "data_type": "discard_row"},
    "discard_value": {"tables": "evolve", "columns": "discard_value", "data_type": "discard_value"},
}
# Loaded files are not kept in the pipeline folders (they would grow with every run).
os.environ.setdefault("LOAD__DELETE_COMPLETED_JOBS", "true")

# --- public entry points -------------------------------------------------------------------

def run_source(config: SourceFileBase, *, actor: str, trigger: str = "cli", tables: list[str] | None = None,
               destination: str | None = None, on_progress: ProgressCallback | None = None,
               store: ConfigStore | None = None, run_id: str | None = None,
               refresh_tables: list[str] | None = None) -> RunRecord:
    """The real load into the configured destination (or ``destination`` instead).

    One run per source at a time: the source's lock is held for the whole run, and
    :class:`~ingestion_core.pipeline.run_control.RunInProgressError` says which run holds it.
    ``refresh_tables`` are dropped and loaded again from ``initial_value`` (their table and
    incremental state, nothing else); without ``tables`` only they run."""


    preload.load_heavy_modules()  # before any thread of this run (or of the caller's) can race the imports
    store = store or ConfigStore()
    name = destination or config.destination
    selected = config.enabled_tables(tables or refresh_tables)
    refresh = refresh_set(config, selected, refresh_tables)
    plan_destination = build_destination(name, store.load_destination(name).config)
    plan = _plan(config, "run", plan_destination, actor, trigger, None, on_progress, run_id)
    plan.refresh = refresh
    with source_lock(config.name, run_id=plan.record.run_id, record_path=record_path(plan.record)):
        if refresh:
            audit(actor, "refresh", config.name, run_id=plan.record.run_id, tables=sorted(refresh))
        return _execute(plan, selected)


def refresh_set(config: SourceFileBase, selected: list[TableBase], refresh_tables: list[str] | None) -> frozenset[str]:
    """The tables of a run to refresh; each must be one the run loads."""
    names = {t.name for t in selected}
    unknown = sorted(set(refresh_tables or ()) - names)
    if unknown:
        raise KeyError(f"cannot refresh {', '.join(unknown)}: this run of {config.name} loads only "
                       f"{', '.join(sorted(names)) or 'no table'}; refresh one of those, or add it to --tables")
    return frozenset(refresh_tables or ())


def preview_source(config: SourceFileBase, *, actor: str, trigger: str = "cli", tables: list[str] | None = None,
                   limit: int = DEFAULT_PREVIEW_LIMIT, on_progress: ProgressCallback | None = None,
                   sample_rows: int = 100) -> PreviewResult:
    """The real code path limited to ``limit`` rows per table, into a DuckDB file of its own
    with its own pipeline state: it never touches real data or real incremental cursors."""
    preload.load_heavy_modules()  # before any thread of this run (or of the caller's) can race the imports
    plan = _plan(config, "preview", preview_plan(config.name), actor, trigger, limit, on_progress, None)
    with kept_open(preview_database(config.name)):
        record = _execute(plan, config.enabled_tables(tables))
        return PreviewResult(record, _samples(plan, record, sample_rows))


@dataclass
class PreviewResult:
    record: RunRecord
    samples: dict[str, list[dict[str, Any]]]

    def as_json(self) -> dict[str, Any]:
        """The ``ingest preview --json`` contract (fields are only ever added)."""
        return {
            "source": self.record.source, "run_id": self.record.run_id, "status": self.record.status,
            "duration_s": self.record.duration_s,
            "tables": [{
                "name": t.name, "status": t.status, "rows": t.rows, "backend": t.backend,
                "duration_s": t.duration_s, "columns": t.columns, "type_decisions": t.type_decisions,
                "sample": self.samples.get(t.name, []),
                "quality": t.quality, "error": t.error.model_dump() if t.error else None,
            } for t in self.record.tables],
        }


# --- planning ------------------------------------------------------------------------------

def _plan(config: SourceFileBase, kind: str, destination: DestinationPlan, actor: str, trigger: str,
          limit: int | None, on_progress: ProgressCallback | None, run_id: str | None) -> RunPlan:
    if not actor:
        raise ValueError("a run needs an actor (who starts it)")
    snapshot = dump_yaml(config, SCHEMA_COMMENT)
    now = datetime.now(UTC)
    record = RunRecord(
        run_id=run_id or new_run_id(config.name, now), kind=kind, source=config.name,  # type: ignore[arg-type]
        source_type=config.source_type, owner=config.owner, destination=destination.name,
        destination_type=destination.type, dataset=config.dataset_name, trigger=trigger,  # type: ignore[arg-type]
        actor=actor, started_at=now, limit=limit, workers=config.workers.model_dump(),
        config_hash=hashlib.sha256(snapshot.encode()).hexdigest()[:16], config_snapshot=snapshot,
    )
    return RunPlan(config, kind, destination, pipelines_dir(kind), record, limit, on_progress)


# --- execution -----------------------------------------------------------------------------

def _execute(plan: RunPlan, tables: list[TableBase]) -> RunRecord:
    from ingestion_core.quality import checks as quality  # noqa: F401  (registers the quality and schema-change hooks)

    record = plan.record
    get_source_kind(plan.config.source_type)  # its module, imported before the table threads start
    record.tables = [TableResult(name=t.name, mode=plan.config.settings_for(t).mode) for t in tables]
    with run_logging(record.run_id) as (log_path, error_log_path):
        record.log_path, record.error_log_path = str(log_path), str(error_log_path)
        plan.publish()
        LOGGER.info("%s %s of %s: %d table(s) into %s", record.kind, record.run_id, record.source,
                    len(tables), plan.destination.location)
        workers = min(plan.config.workers.tables_in_parallel, max(len(tables), 1))
        pool = ThreadPoolExecutor(workers, thread_name_prefix="table")
        try:
            together = plan.kind == "preview" and len(tables) > 1
            if not together or not pool.submit(_preview_together, plan, tables).result():
                list(pool.map(lambda pair: _run_table(plan, *pair), zip(tables, record.tables, strict=True)))
            pool.shutdown()
        except KeyboardInterrupt:  # SIGINT / SIGTERM: stop the tables, wait for them, record the cancel
            plan.cancel.set()
            LOGGER.warning("%s %s cancelled: waiting for the tables to stop", record.kind, record.run_id)
            wait_for_tables(pool)
            record.status = "cancelled"
            for result in record.tables:
                if result.status in ("pending", "running"):
                    result.status = "cancelled"
            _finish(plan)
            raise
        _finish(plan)
    return record


def _finish(plan: RunPlan) -> None:
    record = plan.record
    record.ended_at = datetime.now(UTC)
    record.duration_s = round((record.ended_at - record.started_at).total_seconds(), 3)
    record.rows_total = sum(t.rows for t in record.tables)
    record.records_total = sum(t.rows if t.records is None else t.records for t in record.tables)
    record.bytes_total = sum(t.bytes for t in record.tables)
    record.throughput_rows_per_s = round(record.rows_total / record.duration_s, 1) if record.duration_s else 0.0
    totals = {p: sum(t.phases[p].duration_s for t in record.tables if p in t.phases) for p in PHASES}
    record.phases = _phases(totals)
    if record.status != "cancelled":
        record.status = _overall_status(record.tables)  # type: ignore[assignment]
    failed = [t for t in record.tables if t.error]
    if failed and record.status in ("failed", "partial"):
        first = failed[0].error
        record.error = ErrorInfo(error_class=first.error_class, hint=first.hint, transient=first.transient,
                                 message=f"{len(failed)} of {len(record.tables)} table(s) failed; "
                                         f"{failed[0].name}: {first.message}")
    LOGGER.info("%s %s ended: %s, %d rows in %.1f s", record.kind, record.run_id, record.status,
                record.rows_total, record.duration_s)
    plan.publish()


def _overall_status(tables: list[TableResult]) -> str:
    statuses = {t.status for t in tables}
    if not tables or statuses <= {"success"}:
        return "success"
    if "success" not in statuses and "quality_failed" not in statuses:
        return "failed"
    if "failed" in statuses:
        return "partial"
    return "quality_failed"


def _phases(durations: dict[str, float]) -> dict[str, Phase]:
    total = sum(durations.values()) or 1.0
    return {p: Phase(duration_s=round(d, 3), pct=round(100 * d / total, 1)) for p, d in durations.items()}


def _run_table(plan: RunPlan, table: TableBase, result: TableResult) -> None:
    """Load one table, retrying transient errors with exponential backoff (tenacity); record
    its outcome. Never raises but for cancellation."""
    from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

    retries = plan.config.retries
    retrying = Retrying(
        stop=stop_after_attempt(1 if plan.kind == "preview" else retries.attempts),
        wait=wait_exponential(multiplier=retries.backoff_seconds, max=retries.max_backoff_seconds),
        retry=retry_if_exception(lambda exc: retry_table(exc) and not plan.cancel.is_set()),
        sleep=plan.cancel.wait,  # a cancel ends the back-off at once (and the next attempt stops)
        before_sleep=lambda state: LOGGER.warning("%s: attempt %d failed, retrying: %s", table.name,
                                                  state.attempt_number, describe(state.outcome.exception())),
        reraise=True,
    )
    result.status, result.started_at = "running", datetime.now(UTC)
    plan.publish()
    try:
        for attempt in retrying:
            with attempt:
                _load_with_fallback(plan, table, result)
        result.status, result.error = ("quality_failed" if quality_failed(result) else "success"), None
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # connectorx panics are BaseException: recorded like any failure
        if plan.cancel.is_set():  # stopped by the cancel (whatever dlt wrapped it in): not a failure
            LOGGER.info("%s: stopped, the run was cancelled", table.name)
            result.status = "cancelled"
        else:
            _record_failure(plan, table, result, exc)
    _ended(result)
    plan.publish()


def _record_failure(plan: RunPlan, table: TableBase, result: TableResult, exc: BaseException) -> None:
    message, hint = explain(exc, plan.record.log_path)
    LOGGER.error("%s failed after %d attempt(s): %s", table.name, result.attempts, message, exc_info=exc)
    result.status = "failed"
    result.error = ErrorInfo(error_class=error_class(exc), message=message, hint=hint,
                             transient=is_transient(exc))
    for hook in AFTER_TABLE_FAILED:
        hook(plan, table, result)


def quality_failed(result: TableResult) -> bool:
    """An error-severity check failed: the data stays loaded, the run says quality_failed."""
    return any(q.get("status") == "fail" and q.get("severity", "error") == "error" for q in result.quality)


FALLBACKS: dict[str, tuple[str, Callable[[TableSettings, BaseException], bool]]] = {
    # backend -> (the backend read again with, when): auto's connectorx failed (a panic included)
    "connectorx": ("pyarrow", lambda settings, exc: settings.backend == "auto"),
    # rows dlt's Arrow path cannot land the way its JSON normalizer would
    "rest_arrow": ("dicts", lambda settings, exc: _caused_by(exc, ReadAgainError)),
}


def _load_with_fallback(plan: RunPlan, table: TableBase, result: TableResult) -> None:
    """One attempt; when the backend has a fallback (:data:`FALLBACKS`) and it applies, the table
    is read again with the fallback at once."""
    table_settings = plan.config.settings_for(table)
    result.attempts += 1
    try:
        _load_table(plan, table, table_settings, result, None)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        fallback = FALLBACKS.get(result.backend or "")
        if fallback is None or not fallback[1](table_settings, exc) or plan.cancel.is_set():
            raise
        LOGGER.warning("%s: %s failed (%s); reading again with %s", table.name, result.backend, describe(exc),
                       fallback[0])
        _drop_pending(plan, table)
        result.attempts += 1
        _load_table(plan, table, table_settings, result, fallback[0])


def _caused_by(exc: BaseException | None, kind: type[BaseException]) -> bool:
    """``exc`` or one of its causes / contexts is a ``kind`` (dlt wraps errors of the extract)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ if exc.__cause__ is not None or exc.__suppress_context__ else exc.__context__
    return False


def _pipeline(plan: RunPlan, name: str, mode: str = "") -> Any:
    import dlt

    return dlt.pipeline(
        pipeline_name=name, pipelines_dir=str(plan.pipelines_dir),
        destination=plan.destination.destination_for(mode), staging=plan.destination.staging,
        dataset_name=plan.config.dataset_name,
    )


def _drop_pending(plan: RunPlan, table: TableBase) -> None:
    with contextlib.suppress(Exception):
        _pipeline(plan, pipeline_name(plan.config.name, table.name)).abort_packages()


def _load_table(plan: RunPlan, table: TableBase, table_settings: TableSettings, result: TableResult,
                backend_override: str | None) -> None:
    raise_if_cancelled(plan.cancel, table.name)
    pipeline = _pipeline(plan, pipeline_name(plan.config.name, table.name), table_settings.mode)
    workers = plan.config.workers
    if pipeline.has_pending_data:  # a run killed mid-way: finish its package first (no row lost or doubled)
        LOGGER.info("%s: finishing the package a previous run left", table.name)
        pipeline.normalize(workers=workers.normalize)
        with load_slot(plan.destination):
            pipeline.load(workers=workers.load)
    resource = _resource(plan, table, table_settings, result, backend_override)
    loaded = _extract_normalize_load(plan, pipeline, [resource], _refresh_mode(plan, table), table.name)
    _after_load(plan, pipeline, table, result, *loaded)


def _resource(plan: RunPlan, table: TableBase, table_settings: TableSettings, result: TableResult,
              backend_override: str | None) -> Any:
    """The table's dlt resource with its hints, counted chunk by chunk and stopped by a cancel."""
    ctx = BuildContext(plan.config, table, table_settings, plan.destination.type, plan.limit, backend_override,
                       "" if plan.kind == "preview" else pipeline_name(plan.config.name, table.name), plan.cancel,
                       plan.destination.loader_file_format)
    try:
        resource = get_source_kind(plan.config.source_type).resource(ctx)
    except Exception as exc:  # a refused column: its decisions still show in the preview
        result.type_decisions = getattr(exc, "type_decisions", None) or result.type_decisions
        raise
    result.backend = getattr(resource, "backend", None)
    result.type_decisions = getattr(resource, "type_decisions", None) or []
    if getattr(resource, "planned_columns", None) is not None:
        plan.source_columns[table.name] = resource.planned_columns
    resource = _with_hints(resource, plan, table, table_settings)
    resource.add_map(stop_when_cancelled(plan.cancel, table.name, RowCounter(result, plan.publish)))
    return resource


def _extract_normalize_load(plan: RunPlan, pipeline: Any, resources: list[Any], refresh: str | None,
                            what: str) -> tuple[Any, dict[str, float]]:
    """dlt's three steps over ``resources`` (a cancel is checked between them): the load info and
    the steps' durations."""
    workers = plan.config.workers
    timings: dict[str, float] = {}
    with _timed(timings, "extract"):
        pipeline.extract(resources, loader_file_format=plan.destination.loader_file_format, refresh=refresh)
    raise_if_cancelled(plan.cancel, what)
    with _timed(timings, "normalize"):
        pipeline.normalize(workers=workers.normalize)
    raise_if_cancelled(plan.cancel, what)
    with _timed(timings, "load"), load_slot(plan.destination):
        load_info = pipeline.load(workers=workers.load)
    load_info.raise_on_failed_jobs()
    return load_info, timings


def _after_load(plan: RunPlan, pipeline: Any, table: TableBase, result: TableResult, load_info: Any,
                timings: dict[str, float], share: float = 1.0) -> None:
    """A loaded table's figures (its share of the steps' durations when several tables loaded
    together), then the after-load hooks (quality checks, schema changes)."""
    _collect_metrics(pipeline, load_info, table, result, alone=share == 1.0)
    plan.landed_names[table.name] = pipeline.default_schema.naming.normalize_table_identifier(table.name)
    result.phases = _phases({p: timings[p] * share for p in PHASES})
    for hook in AFTER_TABLE_LOAD:  # the quality checks take the load slot themselves
        hook(pipeline, plan, table, result)


# --- a preview's tables in one pipeline ------------------------------------------------------

def _preview_together(plan: RunPlan, tables: list[TableBase]) -> bool:
    """A preview of several tables through one dlt pipeline: one extract, normalize and load for
    all of them, instead of one of each per table (dlt's fixed cost per pipeline step is most of a
    small preview). A table whose resource cannot be built (a refused column) fails alone. True
    when every other table loaded; False when the pipeline failed, and then nothing of it counts:
    the caller previews each table on its own, so one table's error never hides the others'."""

    started, built = datetime.now(UTC), []
    for table, result in zip(tables, plan.record.tables, strict=True):
        result.status, result.started_at, result.attempts = "running", started, 1
        try:
            built.append((table, result, _resource(plan, table, plan.config.settings_for(table), result, None)))
        except Exception as exc:
            _record_failure(plan, table, result, exc)
            _ended(result)
    plan.publish()
    if not built:
        return True
    pipeline = _pipeline(plan, f"{plan.config.name}___preview")  # ___: never the pipeline of a table
    try:
        if pipeline.has_pending_data:  # a preview killed mid-way: its data is disposable
            pipeline.abort_packages()
        loaded = _extract_normalize_load(plan, pipeline, [r for _, _, r in built], "drop_sources", "preview")
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        if plan.cancel.is_set():
            for _, result, _ in built:
                result.status = "cancelled"
            return True
        LOGGER.warning("preview: the tables together failed (%s); each table again on its own", describe(exc))
        with contextlib.suppress(Exception):
            pipeline.abort_packages()
        for result in plan.record.tables:
            result.status, result.error, result.attempts, result.rows_so_far = "pending", None, 0, 0
        return False
    for table, result, _ in built:
        _after_load(plan, pipeline, table, result, *loaded, share=1 / len(built))
        result.status = "quality_failed" if quality_failed(result) else "success"
        _ended(result)
    plan.publish()
    return True


def _ended(result: TableResult) -> None:
    result.ended_at = datetime.now(UTC)
    result.duration_s = round((result.ended_at - result.started_at).total_seconds(), 3)


def _refresh_mode(plan: RunPlan, table: TableBase) -> str | None:
    """A preview starts afresh each time: its tables and state (also kept in the preview DuckDB,
    from where dlt would restore them) are dropped, so it reads from initial_value. A refreshed
    table of a real run drops its own table and state the same way."""
    if plan.kind == "preview":
        return "drop_sources"
    if table.name in plan.refresh:
        LOGGER.info("%s: full refresh: the table and its incremental state are dropped and loaded again",
                    table.name)
        return "drop_resources"
    return None


def _with_hints(resource: Any, plan: RunPlan, table: TableBase, table_settings: TableSettings) -> Any:
    preview = plan.kind == "preview"
    disposition = "replace" if preview else WRITE_DISPOSITIONS[table_settings.mode]
    key = list(table.primary_key)
    if not preview and table.lookback and table_settings.mode == "incremental":
        # rows read again by the look-back are loaded once; a changed row (new cursor value) is still a new
        # version (a cursor that is not a column, a file's modification_date, cannot tell versions apart)
        disposition = "merge"
        if getattr(resource, "cursor_in_rows", True):
            key = list(dict.fromkeys([*key, table.cursor]))
    if disposition == "merge":
        disposition = {"disposition": "merge", "strategy": plan.destination.merge_strategy}
    resource = resource.with_name(table.name)
    hints: dict[str, Any] = {
        "table_name": table.name, "write_disposition": disposition,
        "schema_contract": "evolve" if preview else SCHEMA_CONTRACTS[table_settings.schema_evolution],
    }
    if key:
        hints["primary_key"] = key
    if plan.destination.table_format:
        hints["table_format"] = plan.destination.table_format
    resource.apply_hints(**hints)
    if not preview and table_settings.mode == "scd2":
        resource.add_map(row_hashes)
    if plan.limit:
        resource.add_limit(1)  # one chunk of `limit` rows; reaches SQL sources as a LIMIT
    return resource


ROW_HASH = "_ingest_row_hash"


def row_hashes(item: Any) -> Any:
    """Adds a hash of each row's content: scd2 opens a new version only when it changes.

    (dlt's Arrow path would otherwise give every row a random id, and every run would look like
    a change of every row.)"""
    import pyarrow as pa

    if isinstance(item, pa.Table):
        import pandas as pd

        hashes = pd.util.hash_pandas_object(item.drop_columns([c for c in item.column_names if c == ROW_HASH])
                                            .to_pandas(), index=False)
        return item.append_column(ROW_HASH, pa.array(hashes.astype("int64").to_numpy()))
    rows = item if isinstance(item, list) else [item]
    for row in rows:
        row[ROW_HASH] = hashlib.sha256(repr(sorted((k, str(v)) for k, v in row.items() if k != ROW_HASH))
                                       .encode()).hexdigest()[:16]
    return item


@contextlib.contextmanager
def _timed(timings: dict[str, float], phase: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        timings[phase] = time.monotonic() - started


def _collect_metrics(pipeline: Any, load_info: Any, table: TableBase, result: TableResult, alone: bool = True) -> None:
    """Rows, records, bytes, files and columns of the table; ``alone`` False: the pipeline loaded
    other tables too, and only the table's own (its name, and its child tables ``<name>__...``) count."""
    trace = pipeline.last_trace
    schema = pipeline.default_schema
    landed = schema.naming.normalize_table_identifier(table.name)
    user_tables = lambda name: not name.startswith("_dlt") and (  # noqa: E731
        alone or name == landed or name.startswith(f"{landed}__"))
    normalize = trace.last_normalize_info
    counts = {t: n for t, n in (normalize.row_counts if normalize else {}).items() if user_tables(t)}
    result.rows = sum(counts.values())
    if landed in counts or not counts:  # the root table and its children (<landed>__<field>) apart
        result.records = counts.get(landed, 0)
        result.child_rows = {t: n for t, n in counts.items() if t != landed}
    extract = trace.last_extract_info
    result.bytes = sum(m.file_size for metrics in (extract.metrics.values() if extract else [])
                       for entry in metrics for t, m in entry["table_metrics"].items() if user_tables(t))
    result.files = sum(1 for metrics in load_info.metrics.values() for entry in metrics
                       for job in entry["job_metrics"].values() if user_tables(job.table_name))
    if landed in schema.tables:
        result.columns = [
            {"name": c["name"], "type": _type_text(c), "nullable": c.get("nullable", True)}
            for c in schema.get_table_columns(landed).values() if not c["name"].startswith("_dlt")
        ]
    if table.cursor:
        result.cursor = cursor_state(pipeline, table.name)


def cursor_state(pipeline: Any, resource: str) -> dict[str, Any] | None:
    """The incremental cursor of a table's pipeline (or of its state dict): column and last value."""
    from dlt.common.jsonpath import extract_simple_field_name

    state = pipeline if isinstance(pipeline, dict) else pipeline.state
    for source_state in state.get("sources", {}).values():
        incremental = source_state.get("resources", {}).get(resource, {}).get("incremental", {})
        for cursor, values in incremental.items():  # a quoted path ('"updated at"') names a plain column
            return {"column": extract_simple_field_name(cursor) or cursor, "last_value": str(values.get("last_value"))}
    return None


def _samples(plan: RunPlan, record: RunRecord, rows: int) -> dict[str, list[dict[str, Any]]]:
    """The first rows of each previewed table, read back from the preview DuckDB file."""
    import duckdb

    samples: dict[str, list[dict[str, Any]]] = {}
    path = plan.destination.location
    if not Path(path).exists():
        return samples
    with duckdb.connect(path) as connection:  # read-write like the open database it joins (kept_open)
        for result in record.tables:
            if result.status not in ("success", "quality_failed"):
                continue
            landed = plan.landed_names.get(result.name) or _pipeline(
                plan, pipeline_name(plan.config.name, result.name)
            ).default_schema.naming.normalize_table_identifier(result.name)
            cursor = connection.execute(f'SELECT * FROM "{plan.config.dataset_name}"."{landed}" LIMIT {int(rows)}')
            names = [d[0] for d in cursor.description]
            samples[result.name] = [
                {k: v for k, v in zip(names, row, strict=True) if not k.startswith("_dlt")}
                for row in cursor.fetchall()
            ]
    return samples


logging.getLogger("ingestion_core").addHandler(logging.NullHandler())
