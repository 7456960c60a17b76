"""Runs a source config through dlt: previews into a local DuckDB file, real runs into the
configured destination. Every run, preview or real, success or failure, leaves a run record.

Each table of a real run runs in its own dlt pipeline (``<source>__<table>``) with its own state,
so a failing table never stops the others and its incremental cursor is its own. Tables extract
and normalize in parallel (``workers.tables_in_parallel``); loads into DuckDB are one at a
time (concurrent DDL on one DuckDB file conflicts). One table's steps are in
:mod:`ingestion_core.pipeline.table_load`; a preview of several tables runs them through one
pipeline (:mod:`ingestion_core.pipeline.preview`), falling back to a pipeline per table when it
fails. A real run holds its source's lock (:func:`ingestion_core.pipeline.locks.source_lock`)
from start to end: one run per source, whoever starts it.

Example::

    config = ConfigStore().load_source("demo_shop").config
    record = run_source(config, actor="ana", trigger="cli")
    record.status, record.rows_total
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ingestion_core.common import preload
from ingestion_core.common.cancellation import Cancel, wait_for_tables
from ingestion_core.config.models.source_file import SourceFileBase, TableSettings
from ingestion_core.config.models.tables import TableBase
from ingestion_core.config.store import SCHEMA_COMMENT, ConfigStore, dump_yaml
from ingestion_core.engine.destinations import DestinationPlan, build_destination
from ingestion_core.engine.destinations.duckdb import kept_open, preview_database, preview_plan
from ingestion_core.engine.errors import chain, describe, retry_table
from ingestion_core.engine.plan import ProgressCallback, RunPlan, pipelines_dir
from ingestion_core.engine.sources import ReadAgainError, get_source_kind, reader_module
from ingestion_core.observe.records import (
    ErrorInfo,
    RunRecord,
    TableResult,
    cancelled_error,
    new_run_id,
    record_path,
)
from ingestion_core.observe.run_log import LOGGER, run_logging
from ingestion_core.pipeline.locks import audit, source_lock
from ingestion_core.pipeline.preview import preview_together, samples
from ingestion_core.pipeline.table_load import (
    PHASES,
    drop_pending,
    ended,
    load_table,
    phases,
    quality_failed,
    record_failure,
)

DEFAULT_PREVIEW_LIMIT = 1000

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


    preload.load_heavy_modules(reader_module(config.source_type))  # before any thread can race the imports
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
                   sample_rows: int = 100, cancel: Cancel | None = None,
                   on_result: Callable[[PreviewResult], None] | None = None) -> PreviewResult:
    """The real code path limited to ``limit`` rows per table, into a DuckDB file of its own
    with its own pipeline state: it never touches real data or real incremental cursors.
    ``cancel.cancel(actor)`` (from another thread) stops its tables at their next chunk; the record
    then says ``cancelled`` and by whom, and the tables that finished keep their rows and samples.
    ``on_result`` gets the result (its record written) before the preview file is closed: closing
    it (DuckDB's checkpoint, 40-100 ms) need not stand between a test run's end and its rows on a
    page; whoever opens the file in this process waits for the close (the portal's explorer does)."""
    preload.load_heavy_modules(reader_module(config.source_type))  # before any thread can race the imports
    plan = _plan(config, "preview", preview_plan(config.name), actor, trigger, limit, on_progress, None)
    if cancel is not None:
        plan.cancel = cancel
    with kept_open(preview_database(config.name)):
        record = _execute(plan, config.enabled_tables(tables))
        result = PreviewResult(record, samples(plan, record, sample_rows))
        if on_result is not None:
            on_result(result)
    return result


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
            if not together or not pool.submit(preview_together, plan, tables).result():
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
    record.phases = phases(totals)
    if plan.cancel.is_set() and any(t.status == "cancelled" for t in record.tables):
        record.status = "cancelled"  # (a cancel from another thread: a portal test run's Cancel)
        if getattr(plan.cancel, "by", None):
            record.error = cancelled_error(plan.cancel.by)
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
            record_failure(plan, table, result, exc)
    ended(result)
    plan.publish()


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
        load_table(plan, table, table_settings, result, None)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        fallback = FALLBACKS.get(result.backend or "")
        if fallback is None or not fallback[1](table_settings, exc) or plan.cancel.is_set():
            raise
        LOGGER.warning("%s: %s failed (%s); reading again with %s", table.name, result.backend, describe(exc),
                       fallback[0])
        drop_pending(plan, table)
        result.attempts += 1
        load_table(plan, table, table_settings, result, fallback[0])


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """``exc`` or one of its causes / contexts is a ``kind`` (dlt wraps errors of the extract)."""
    return any(isinstance(link, kind) for link in chain(exc))


# --- a preview's tables in one pipeline ------------------------------------------------------


logging.getLogger("ingestion_core").addHandler(logging.NullHandler())
