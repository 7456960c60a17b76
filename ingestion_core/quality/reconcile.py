"""Reconciliation: the rows the source holds against the rows that landed, after each load.

A source kind opts in by registering a row counter for its ``source.type``
(:func:`register_row_counter`); a kind without one says so in the result ("cannot count"),
the table does not fail. Built in:

- SQL tables: ``COUNT(*)`` on the source through SQLAlchemy, with the table's ``filter`` and,
  for incremental tables, the cursor window of this run (after the previous run's cursor up to
  this run's); previews count at most ``limit`` rows, so a preview stays fast on a huge table.
- files: the rows the readers read in this run (dlt's extract count): reconciling it catches
  rows lost or merged between reading and landing.

What landed is counted on the destination: the whole table for ``full`` mode and previews,
the current rows for ``scd2``, the rows of this load (``_dlt_load_id``) otherwise. The count
is taken right after the load, so rows written to the source meanwhile show as a difference;
``tolerance`` absorbs what a busy source makes normal.

Example::

    reconcile: true                                   # no difference allowed
    reconcile: {tolerance: '0.5%', severity: warn}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ingestion_core.config.models.checks import ReconcileCheck
from ingestion_core.config.models.source_file import SourceFileBase
from ingestion_core.config.models.tables import SqlTable, TableBase
from ingestion_core.engine.errors import describe
from ingestion_core.observe.records import TableResult
from ingestion_core.observe.run_log import LOGGER

if TYPE_CHECKING:
    from ingestion_core.quality.target import CheckTarget, Outcome


@dataclass(frozen=True)
class CursorWindow:
    """The rows an incremental run read: ``start < cursor <= end`` (``>=`` on a first run)."""

    column: str
    start: Any = None  # None: from the beginning
    start_inclusive: bool = True
    end: Any = None  # None: no upper bound


@dataclass(frozen=True)
class CountRequest:
    config: SourceFileBase
    table: TableBase
    window: CursorWindow | None
    limit: int | None  # a preview: count at most this many rows
    pipeline: Any  # the table's dlt pipeline, after its load


@dataclass(frozen=True)
class SourceCount:
    rows: int | None
    how: str = ""  # what was counted, for people
    problem: str = ""  # why there is no count


RowCounter = Callable[[CountRequest], tuple[int, str]]
ROW_COUNTERS: dict[str, RowCounter] = {}


def register_row_counter(*source_types: str) -> Callable[[RowCounter], RowCounter]:
    """Let a source kind count its rows: ``counter(request) -> (rows, what was counted)``."""
    def register(func: RowCounter) -> RowCounter:
        for kind in source_types:
            ROW_COUNTERS[kind] = func
        return func
    return register


def count_source(pipeline: Any, plan: Any, table: TableBase, result: TableResult) -> SourceCount:
    """The source side of a reconciliation. Never raises: a problem is said in the result."""
    counter = ROW_COUNTERS.get(plan.config.source_type)
    if counter is None:
        return SourceCount(None, problem=f"{plan.config.source_type} sources cannot count their rows, so this "
                                         "table cannot be reconciled; remove reconcile or use a row_count check")
    try:
        request = CountRequest(plan.config, table, incremental_window(pipeline, plan, table, result),
                               plan.limit, pipeline)
        rows, how = counter(request)
    except Exception as exc:
        LOGGER.warning("%s: the source count failed: %s", table.name, describe(exc))
        return SourceCount(None, problem=f"the source count failed: {describe(exc)}")
    return SourceCount(rows, how)


def incremental_window(pipeline: Any, plan: Any, table: TableBase, result: TableResult) -> CursorWindow | None:
    mode = plan.config.settings_for(table).mode
    if mode not in ("incremental", "merge") or not table.cursor:
        return None
    if plan.kind == "preview":  # a preview reads afresh from initial_value
        return CursorWindow(table.cursor, table.initial_value, True, None)
    end = _last_value(pipeline, table.name)
    previous = plan.last_table_result(table.name)
    cursor = (previous[1].get("cursor") or {}) if previous else {}
    if cursor.get("column") == table.cursor and cursor.get("last_value") not in (None, "None"):
        return CursorWindow(table.cursor, cursor["last_value"], False, end)
    return CursorWindow(table.cursor, table.initial_value, True, end)


def _last_value(pipeline: Any, resource: str) -> Any:
    for source_state in pipeline.state.get("sources", {}).values():
        for values in source_state.get("resources", {}).get(resource, {}).get("incremental", {}).values():
            return values.get("last_value")
    return None


# --- the destination side and the verdict ---------------------------------------------------

def landed_rows(target: CheckTarget) -> tuple[int, str]:
    """(rows, what was counted) on the destination, by mode."""
    from ingestion_core.quality.target import LOAD_ID, VALID_TO, where_sql

    conditions: list[str] = []
    args: list[Any] = []
    what = "rows in the table"
    if target.preview or target.mode == "full":
        pass
    elif target.mode == "scd2" and VALID_TO in target.columns:
        conditions, what = [f"{target.client.escape_column_name(VALID_TO)} IS NULL"], "current rows in the table"
    elif LOAD_ID in target.columns:
        (conditions, args), what = target.this_load(), "rows of this load"
    else:
        what = "rows in the table (this load's rows cannot be told apart)"
    rows = target.scalar(f"SELECT COUNT(*) FROM {target.table_sql}{where_sql(conditions)}", args)
    return int(rows), what


def outcome(target: CheckTarget, spec: ReconcileCheck, source: SourceCount | None) -> Outcome:
    from ingestion_core.quality.target import Outcome

    if source is None or source.rows is None:
        return Outcome(True, None, None, source.problem if source else "no source count", skipped=True)
    landed, what = landed_rows(target)
    expected = min(source.rows, target.limit) if target.preview and target.limit else source.rows
    allowed = spec.allowed_difference(expected)
    difference = landed - expected
    threshold = {"source_rows": expected, "tolerance": spec.tolerance, "allowed_difference": round(allowed, 3)}
    message = (f"{landed} {what} against {expected} {source.how}"
               + (f" (difference {difference:+d}, at most {allowed:g} allowed)" if difference else ""))
    return Outcome(abs(difference) <= allowed, landed, threshold, message)


# --- built-in counters -------------------------------------------------------------------------

@register_row_counter("postgres", "mysql", "mssql", "azure_sql", "oracle", "sqlite")
def count_sql_rows(request: CountRequest) -> tuple[int, str]:
    """``COUNT(*)`` with the table's filter and the run's cursor window, values bound."""
    import sqlalchemy as sa

    from ingestion_core.engine.sources.sql import coerce_initial_value, create_engine, filter_adapter, reflect_table

    table: SqlTable = request.table  # type: ignore[assignment]
    engine = create_engine(request.config)
    try:
        reflected = reflect_table(engine, table)
        rows = sa.select(sa.literal(1)).select_from(reflected)
        adapt = filter_adapter(table.filter)
        if adapt:
            rows = adapt(rows, reflected)
        window = request.window
        if window is not None:
            column = reflected.c[window.column]
            start, inclusive = _window_start(table, window, column)
            if start is not None:
                rows = rows.where(column >= start if inclusive else column > start)
            if window.end is not None:
                rows = rows.where(column <= coerce_initial_value(window.end, column))
            rows = rows.where(column.is_not(None))
        if request.limit:
            rows = rows.limit(request.limit)
        with engine.connect() as connection:
            count = connection.execute(sa.select(sa.func.count()).select_from(rows.subquery())).scalar_one()
    finally:
        engine.dispose()
    parts = ["source rows"] + (["matching the filter"] if table.filter else []) + (
        [f"in the cursor window of {request.window.column}"] if request.window else [])
    return int(count), " ".join(parts)


def _window_start(table: SqlTable, window: CursorWindow, column: Any) -> tuple[Any, bool]:
    """Where the run's reading started: after the previous cursor or, with lookback, at the
    previous cursor less the look-back (dlt's own lag arithmetic, never before initial_value)."""
    from ingestion_core.engine.sources import lookback_lag
    from ingestion_core.engine.sources.sql import coerce_initial_value, python_type

    start = coerce_initial_value(window.start, column)
    if start is None or window.start_inclusive or not table.lookback:
        return start, window.start_inclusive
    from dlt.extract.incremental.lag import apply_lag

    lag = lookback_lag(table, python_type(column))
    return apply_lag(lag, coerce_initial_value(table.initial_value, column), start, max), True


@register_row_counter("filesystem")
def count_rows_read(request: CountRequest) -> tuple[int, str]:
    """The rows the file readers read in this run (dlt's extract count)."""
    naming = request.pipeline.default_schema.naming
    landed = naming.normalize_table_identifier(request.table.name)
    extract = request.pipeline.last_trace.last_extract_info
    read = sum(metrics.items_count for load in (extract.metrics.values() if extract else [])
               for entry in load for name, metrics in entry["table_metrics"].items() if name == landed)
    return int(read), "rows read from the files"
