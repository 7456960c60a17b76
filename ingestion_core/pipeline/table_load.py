"""One table through dlt: its pipeline, its resource with the table's hints (write disposition,
keys, schema contract, limit, cancel), dlt's extract / normalize / load, then its figures and the
after-load hooks (quality checks, schema changes). The runner (:mod:`ingestion_core.pipeline.runner`)
decides which tables run, retries and falls back; a preview of several tables runs these steps
once for all of them (:mod:`ingestion_core.pipeline.preview`)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from ingestion_core.common.cancellation import RowCounter, raise_if_cancelled, stop_when_cancelled
from ingestion_core.config.models.source_file import TableSettings
from ingestion_core.config.models.tables import TableBase
from ingestion_core.engine.errors import HintedError, describe, error_class, explain, is_transient
from ingestion_core.engine.hooks import AFTER_TABLE_FAILED, AFTER_TABLE_LOAD
from ingestion_core.engine.plan import RunPlan, load_slot, pipeline_name
from ingestion_core.engine.sources import BuildContext, get_source_kind
from ingestion_core.observe.records import ErrorInfo, Phase, TableResult
from ingestion_core.observe.run_log import LOGGER
from ingestion_core.typemap.names import type_text as _type_text

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


def phases(durations: dict[str, float]) -> dict[str, Phase]:
    total = sum(durations.values()) or 1.0
    return {p: Phase(duration_s=round(d, 3), pct=round(100 * d / total, 1)) for p, d in durations.items()}


def record_failure(plan: RunPlan, table: TableBase, result: TableResult, exc: BaseException) -> None:
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


def pipeline_for(plan: RunPlan, name: str, mode: str = "") -> Any:
    import dlt

    return dlt.pipeline(
        pipeline_name=name, pipelines_dir=str(plan.pipelines_dir),
        destination=plan.destination.destination_for(mode), staging=plan.destination.staging,
        dataset_name=plan.config.dataset_name,
    )


def drop_pending(plan: RunPlan, table: TableBase) -> None:
    with contextlib.suppress(Exception):
        pipeline_for(plan, pipeline_name(plan.config.name, table.name)).abort_packages()


def load_table(plan: RunPlan, table: TableBase, table_settings: TableSettings, result: TableResult,
                backend_override: str | None) -> None:
    raise_if_cancelled(plan.cancel, table.name)
    pipeline = pipeline_for(plan, pipeline_name(plan.config.name, table.name), table_settings.mode)
    refresh = refresh_mode(plan, table)
    if pipeline.has_pending_data:
        finish_pending(plan, pipeline, table, refresh)
    resource = table_resource(plan, table, table_settings, result, backend_override)
    loaded = extract_normalize_load(plan, pipeline, [resource], refresh, table.name)
    after_load(plan, pipeline, table, result, *loaded)


def finish_pending(plan: RunPlan, pipeline: Any, table: TableBase, refresh: str | None) -> None:
    """The package a previous run left unloaded (killed mid-way, or failed in normalize or load):
    loaded first, so no row is lost or doubled. A refreshed table (and a preview) drops it instead:
    the table is loaded again in full, and a package that cannot load (rows the destination table
    refuses) would otherwise fail every later run, the refresh that fixes it included."""
    if refresh:
        LOGGER.warning("%s: the package a previous run left unloaded is dropped: the table is loaded again in full",
                       table.name)
        pipeline.abort_packages()
        return
    LOGGER.info("%s: finishing the package a previous run left", table.name)
    workers = plan.config.workers
    try:
        pipeline.normalize(workers=workers.normalize)
        with load_slot(plan.destination):
            pipeline.load(workers=workers.load)
    except Exception as exc:
        if is_transient(exc):
            raise
        raise HintedError(
            f"{table.name}: the rows a previous run read could not be loaded, and are loaded before any new "
            f"row: {describe(exc)}",
            f"fix what the message says, or run a full refresh of the table (`ingest run {plan.config.name} "
            f"--refresh {table.name}`, or Full refresh on the source's home, Settings tab): it drops those rows "
            f"and loads the table again in full") from exc


def table_resource(plan: RunPlan, table: TableBase, table_settings: TableSettings, result: TableResult,
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
    resource = with_hints(resource, plan, table, table_settings)
    resource.add_map(stop_when_cancelled(plan.cancel, table.name, RowCounter(result, plan.publish)))
    return resource


def extract_normalize_load(plan: RunPlan, pipeline: Any, resources: list[Any], refresh: str | None,
                            what: str) -> tuple[Any, dict[str, float]]:
    """dlt's three steps over ``resources`` (a cancel is checked between them): the load info and
    the steps' durations."""
    workers = plan.config.workers
    timings: dict[str, float] = {}
    with timed(timings, "extract"):
        pipeline.extract(resources, loader_file_format=plan.destination.loader_file_format, refresh=refresh)
    raise_if_cancelled(plan.cancel, what)
    with timed(timings, "normalize"):
        pipeline.normalize(workers=workers.normalize)
    raise_if_cancelled(plan.cancel, what)
    with timed(timings, "load"), load_slot(plan.destination):
        load_info = pipeline.load(workers=workers.load)
    load_info.raise_on_failed_jobs()
    return load_info, timings


def after_load(plan: RunPlan, pipeline: Any, table: TableBase, result: TableResult, load_info: Any,
                timings: dict[str, float], share: float = 1.0) -> None:
    """A loaded table's figures (its share of the steps' durations when several tables loaded
    together), then the after-load hooks (quality checks, schema changes)."""
    collect_metrics(pipeline, load_info, table, result, alone=share == 1.0)
    plan.landed_names[table.name] = pipeline.default_schema.naming.normalize_table_identifier(table.name)
    result.phases = phases({p: timings[p] * share for p in PHASES})
    for hook in AFTER_TABLE_LOAD:  # the quality checks take the load slot themselves
        hook(pipeline, plan, table, result)


def ended(result: TableResult) -> None:
    result.ended_at = datetime.now(UTC)
    result.duration_s = round((result.ended_at - result.started_at).total_seconds(), 3)


def refresh_mode(plan: RunPlan, table: TableBase) -> str | None:
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


def with_hints(resource: Any, plan: RunPlan, table: TableBase, table_settings: TableSettings) -> Any:
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
def timed(timings: dict[str, float], phase: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        timings[phase] = time.monotonic() - started


def collect_metrics(pipeline: Any, load_info: Any, table: TableBase, result: TableResult, alone: bool = True) -> None:
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
