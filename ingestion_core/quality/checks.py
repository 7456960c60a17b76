"""Data-quality checks, run on the destination after every load and every preview.

The checks of a table run through the dlt pipeline's own SQL client, so the same code checks
DuckDB, Databricks and Parquet / Delta files (dlt reads those through DuckDB). Identifiers are
normalized the way dlt normalized them (``schema.naming``) and quoted by the destination's
dialect; values are bound parameters. A ``custom_sql`` query is parsed first (one read-only
SELECT, see :mod:`ingestion_core.common.sql_guard`) and then runs on a read-only connection.

Which rows are checked: the whole table (scd2: its current rows), except that on append and
incremental tables the row-level checks (not_null, accepted_values, regex, range) look at the
rows this run loaded (``_dlt_load_id``), so a bad row from last month does not fail every
run after it. ``scope: table | load`` on a check overrides this.

Each result is a dict in ``TableResult.quality``: check, name, table, column, status (pass /
warn / fail / skipped), severity, scope, observed, threshold, sample (failing rows, secrets
masked), message, duration_s. An error-severity ``fail`` makes the table ``quality_failed``
(the runner's ``quality_failed``): the data stays loaded, ``ingest run`` exits 2.

Example (what the runner does after loading a table)::

    check_loaded_table(pipeline, plan, table, result)
    [(q["check"], q["status"]) for q in result.quality]   # [('not_null', 'pass'), ...]
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from ingestion_core.common.sql_guard import TABLE_PLACEHOLDER, Execute, read_only_executor, read_only_problem
from ingestion_core.config.models.base import parse_duration
from ingestion_core.config.models.checks import (
    AcceptedValuesCheck,
    CheckSpec,
    CustomSqlCheck,
    FreshnessCheck,
    NotNullCheck,
    NullRateCheck,
    RangeCheck,
    ReconcileCheck,
    RegexCheck,
    RowCountCheck,
    UniqueCheck,
)
from ingestion_core.config.models.tables import TableBase
from ingestion_core.config.secrets import mask, mask_data
from ingestion_core.engine.errors import describe
from ingestion_core.engine.hooks import AFTER_TABLE_FAILED, AFTER_TABLE_LOAD
from ingestion_core.engine.plan import RunPlan
from ingestion_core.engine.plan import load_slot as destination_slot
from ingestion_core.observe.records import TableResult
from ingestion_core.observe.run_log import LOGGER
from ingestion_core.quality import reconcile, schema_changes
from ingestion_core.quality.target import (  # noqa: F401  (the checks' vocabulary, named here too)
    LOAD_ID,
    SAMPLE_COLUMNS,
    SAMPLE_ROWS,
    SAMPLE_TEXT,
    VALID_TO,
    CheckError,
    CheckTarget,
    Outcome,
    json_value,
    where_sql,
)

# Arrow-backed tables (SQL sources) get a _dlt_load_id like JSON-normalized ones, so that the
# rows of one load can be told apart (load-scoped checks, reconciliation). dlt may add its
# own columns to any table, frozen schemas included.
os.environ.setdefault("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")

# Failing these on a preview proves nothing when the preview stopped at its row limit.
LIMITED_BY_PREVIEW = {"row_count", "freshness"}


# --- the checks, registered by kind ----------------------------------------------------------

CheckRunner = Callable[[CheckTarget, Any, list[str], list[Any]], Outcome]
CHECK_RUNNERS: dict[str, CheckRunner] = {}


def register_check(kind: str) -> Callable[[CheckRunner], CheckRunner]:
    """Add the runner of a check kind: ``runner(target, spec, conditions, args) -> Outcome``."""
    def register(func: CheckRunner) -> CheckRunner:
        CHECK_RUNNERS[kind] = func
        return func
    return register


def _failing_rows(target: CheckTarget, conditions: list[str], args: list[Any], threshold: Any,
                  focus: list[str], what: str) -> Outcome:
    failing = int(target.scalar(f"SELECT COUNT(*) FROM {target.table_sql}{where_sql(conditions)}", args))
    if not failing:
        return Outcome(True, 0, threshold, f"no {what}")
    return Outcome(False, failing, threshold, f"{failing} {what}", target.sample(conditions, args, focus))


@register_check("row_count")
def _row_count(target: CheckTarget, spec: RowCountCheck, conditions: list[str], args: list[Any]) -> Outcome:
    rows = int(target.scalar(f"SELECT COUNT(*) FROM {target.table_sql}{where_sql(conditions)}", args))
    bounds = {k: v for k, v in (("min", spec.min), ("max", spec.max)) if v is not None}
    low = spec.min is not None and rows < spec.min
    high = spec.max is not None and rows > spec.max
    text = " and ".join(f"at {'least' if k == 'min' else 'most'} {v}" for k, v in bounds.items())
    return Outcome(not (low or high), rows, bounds, f"{rows} row(s); expected {text}")


@register_check("not_null")
def _not_null(target: CheckTarget, spec: NotNullCheck, conditions: list[str], args: list[Any]) -> Outcome:
    landed, column = target.column(spec.column)
    return _failing_rows(target, [*conditions, f"{column} IS NULL"], args, 0, [landed], f"row(s) with {landed} NULL")


@register_check("null_rate")
def _null_rate(target: CheckTarget, spec: NullRateCheck, conditions: list[str], args: list[Any]) -> Outcome:
    landed, column = target.column(spec.column)
    _, rows = target.rows(f"SELECT COUNT(*), COUNT({column}) FROM {target.table_sql}{where_sql(conditions)}", args)
    total, present = (int(v or 0) for v in rows[0])
    if not total:
        return Outcome(True, None, spec.max, f"no rows to measure {landed} on", skipped=True)
    rate = (total - present) / total
    text = f"{total - present} of {total} row(s) have {landed} NULL ({rate:.2%}); at most {spec.max:.2%} allowed"
    if rate <= spec.max:
        return Outcome(True, round(rate, 6), spec.max, text)
    return Outcome(False, round(rate, 6), spec.max, text,
                   target.sample([*conditions, f"{column} IS NULL"], args, [landed]))


@register_check("unique")
def _unique(target: CheckTarget, spec: UniqueCheck, conditions: list[str], args: list[Any]) -> Outcome:
    resolved = [target.column(c) for c in spec.columns]
    keys = ", ".join(sql for _, sql in resolved)
    present = [f"{sql} IS NOT NULL" for _, sql in resolved]  # like a UNIQUE constraint, NULL keys never clash
    groups = (f"SELECT {keys}, COUNT(*) AS _dlt_check_rows FROM {target.table_sql}{where_sql([*conditions, *present])} "
              f"GROUP BY {keys} HAVING COUNT(*) > 1")
    duplicated = int(target.scalar(f"SELECT COUNT(*) FROM ({groups}) duplicated_keys", args))
    label = ", ".join(name for name, _ in resolved)
    if not duplicated:
        return Outcome(True, 0, 0, f"every ({label}) is unique")
    _, rows = target.rows(f"{groups} ORDER BY _dlt_check_rows DESC LIMIT {SAMPLE_ROWS}", args)
    sample = [{**dict(zip([n for n, _ in resolved], map(json_value, row[:-1]), strict=True)), "rows": row[-1]}
              for row in rows]
    return Outcome(False, duplicated, 0, f"{duplicated} value(s) of ({label}) appear more than once", sample)


@register_check("accepted_values")
def _accepted_values(target: CheckTarget, spec: AcceptedValuesCheck, conditions: list[str],
                     args: list[Any]) -> Outcome:
    landed, column = target.column(spec.column)
    values = [bind_value(v, target.columns[landed], spec.column) for v in spec.values]
    marks = ", ".join(["%s"] * len(values))
    return _failing_rows(target, [*conditions, f"{column} IS NOT NULL", f"{column} NOT IN ({marks})"],
                         [*args, *values], spec.values, [landed], f"row(s) with a {landed} not in the list")


REGEX_SQL: dict[str, str] = {
    # search semantics everywhere: anchor the pattern (^...$) to match the whole value
    "duckdb": "NOT regexp_matches(CAST({column} AS VARCHAR), %s)",
    "motherduck": "NOT regexp_matches(CAST({column} AS VARCHAR), %s)",
    "filesystem": "NOT regexp_matches(CAST({column} AS VARCHAR), %s)",
    "databricks": "NOT (CAST({column} AS STRING) RLIKE %s)",
}


@register_check("regex")
def _regex(target: CheckTarget, spec: RegexCheck, conditions: list[str], args: list[Any]) -> Outcome:
    landed, column = target.column(spec.column)
    template = REGEX_SQL.get(target.destination_type)
    if template is None:
        raise CheckError(f"regex checks are not available on {target.destination_type} destinations "
                         f"(available on {', '.join(sorted(REGEX_SQL))}); use a custom_sql check")
    return _failing_rows(target, [*conditions, f"{column} IS NOT NULL", template.format(column=column)],
                         [*args, spec.pattern], spec.pattern, [landed], f"row(s) whose {landed} does not match")


@register_check("range")
def _range(target: CheckTarget, spec: RangeCheck, conditions: list[str], args: list[Any]) -> Outcome:
    landed, column = target.column(spec.column)
    outside, bound_args, bounds = [], [], {}
    for key, value, op in (("min", spec.min, "<"), ("max", spec.max, ">")):
        if value is not None:
            outside.append(f"{column} {op} %s")
            bound_args.append(bind_value(value, target.columns[landed], spec.column))
            bounds[key] = value
    return _failing_rows(target, [*conditions, " OR ".join(outside)], [*args, *bound_args], bounds, [landed],
                         f"row(s) with {landed} out of range")


@register_check("freshness")
def _freshness(target: CheckTarget, spec: FreshnessCheck, conditions: list[str], args: list[Any]) -> Outcome:
    landed, column = target.column(spec.column)
    newest = target.scalar(f"SELECT MAX({column}) FROM {target.table_sql}{where_sql(conditions)}", args)
    if newest is None:
        return Outcome(False, None, spec.max_age, f"no row has a {landed}: nothing to judge freshness by")
    moment = as_utc(newest, landed)
    age = dt.datetime.now(dt.UTC) - moment
    fresh = age <= parse_duration(spec.max_age)
    return Outcome(fresh, round(age.total_seconds()), spec.max_age,
                   f"newest {landed} is {moment.isoformat()} ({human_age(age)} old); at most {spec.max_age} allowed")


# --- custom_sql ------------------------------------------------------------------------------


def run_custom_sql(execute: Execute, target_sql: str, spec: CustomSqlCheck, dialect: str | None) -> Outcome:
    """Run a custom_sql check with ``execute`` (a read-only connection); ``{table}`` becomes
    ``target_sql``. The query is parsed again in the destination's dialect first."""
    problem = read_only_problem(spec.sql, [dialect] if dialect else ())
    if problem:
        raise CheckError(problem)
    query = spec.sql.strip().rstrip(";").replace(TABLE_PLACEHOLDER, target_sql)
    if spec.result_kind == "number":
        names, rows = execute(query)
        if len(rows) != 1 or len(rows[0]) != 1:
            raise CheckError(f"custom_sql returns: number needs one row with one column; the query returned "
                             f"{len(rows)} row(s) of {len(names)} column(s)")
        value = _number(rows[0][0])
        bounds = {k: v for k, v in (("min_value", spec.min_value), ("max_value", spec.max_value)) if v is not None}
        ok = value is not None and (spec.min_value is None or value >= spec.min_value) and (
            spec.max_value is None or value <= spec.max_value)
        return Outcome(ok, value, bounds, f"the query returned {value}")
    _, counted = execute(f"SELECT COUNT(*) FROM ({query}) custom_check")
    failing = int(counted[0][0])
    if not failing:
        return Outcome(True, 0, 0, "the query returned no rows")
    names, rows = execute(f"SELECT * FROM ({query}) custom_check LIMIT {SAMPLE_ROWS}")
    shown = [i for i, name in enumerate(names) if not name.startswith("_dlt")][:SAMPLE_COLUMNS]
    sample = [{names[i]: json_value(row[i]) for i in shown} for row in rows]
    return Outcome(False, failing, 0, f"the query returned {failing} failing row(s)", sample)


def _number(value: Any) -> float | int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CheckError(f"custom_sql returns: number, but the query returned {str(value)[:40]!r}") from None
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


# --- running the checks of a table -----------------------------------------------------------

def check_loaded_table(pipeline: Any, plan: RunPlan, table: TableBase, result: TableResult) -> None:
    """The AFTER_TABLE_LOAD hook: run the table's checks (and reconciliation) and write the
    results into ``result.quality``. Never raises: a check that cannot run is a failed check."""
    specs = [c.spec for c in table.checks] + ([table.reconcile] if table.reconcile else [])
    if not specs:
        result.quality = []
        return
    started = time.monotonic()
    try:
        source = reconcile.count_source(pipeline, plan, table, result) if table.reconcile else None
        with destination_slot(plan.destination):
            result.quality = _run_all(pipeline, plan, table, result, specs, source)
    except Exception as exc:  # the destination went away, a dlt error...: every check says why
        LOGGER.error("%s: quality checks could not run: %s", table.name, describe(exc))
        result.quality = [_result(table, spec, None, None, f"checks could not run: {describe(exc)}")
                          for spec in specs]
    LOGGER.info("%s: %d check(s) in %.2f s: %s", table.name, len(result.quality), time.monotonic() - started,
                ", ".join(f"{q['name']} {q['status']}" for q in result.quality))


def _run_all(pipeline: Any, plan: RunPlan, table: TableBase, result: TableResult, specs: list[CheckSpec],
             source: reconcile.SourceCount | None) -> list[dict[str, Any]]:
    results: dict[int, dict[str, Any]] = {}
    with pipeline.sql_client() as client:
        target = _target(pipeline, client, plan, table, result)
        dialect = client.capabilities.sqlglot_dialect
        for index, spec in enumerate(specs):
            if isinstance(spec, ReconcileCheck):
                results[index] = _timed(table, spec, "table", lambda s=spec: reconcile.outcome(target, s, source))
            elif not isinstance(spec, CustomSqlCheck):
                scope, conditions, args = target.scope(spec)
                runner = CHECK_RUNNERS[spec.kind]
                results[index] = _timed(table, spec, scope, lambda r=runner, s=spec, c=conditions, a=args:
                                        r(target, s, c, a), target)
    custom = [(i, s) for i, s in enumerate(specs) if isinstance(s, CustomSqlCheck)]
    if custom:
        with read_only_executor(plan, pipeline) as execute:
            for index, spec in custom:
                results[index] = _timed(table, spec, "table", lambda s=spec: run_custom_sql(
                    execute, target.table_sql, s, dialect))
    return [results[i] for i in range(len(specs))]


def _target(pipeline: Any, client: Any, plan: RunPlan, table: TableBase, result: TableResult) -> CheckTarget:
    schema = pipeline.default_schema
    landed = schema.naming.normalize_table_identifier(table.name)
    columns = dict(schema.get_table_columns(landed)) if landed in schema.tables else {}
    trace = pipeline.last_trace
    load_info = trace.last_load_info if trace else None
    return CheckTarget(
        client=client, table=table, landed=landed, table_sql=client.make_qualified_table_name(landed),
        columns=columns, naming=schema.naming, mode=plan.config.settings_for(table).mode,
        preview=plan.kind == "preview", load_ids=list(load_info.loads_ids) if load_info else [],
        destination_type=plan.destination.type, limit=plan.limit,
        limited=bool(plan.limit) and result.rows >= plan.limit,
    )


def _timed(table: TableBase, spec: CheckSpec, scope: str, run: Callable[[], Outcome],
           target: CheckTarget | None = None) -> dict[str, Any]:
    started = time.monotonic()
    try:
        outcome, error = run(), None
    except CheckError as exc:
        outcome, error = None, str(exc)
    except Exception as exc:  # the database refused the query: the check failed, the run goes on
        outcome, error = None, f"the check's query failed: {describe(exc)}"
    entry = _result(table, spec, scope, outcome, error)
    if target is not None and target.limited and outcome and not outcome.passed and spec.kind in LIMITED_BY_PREVIEW:
        entry["status"] = "skipped"
        entry["message"] += f"; not judged on a preview, which holds only the first {target.limit} rows"
    entry["duration_s"] = round(time.monotonic() - started, 4)
    return entry


def check_label(spec: CheckSpec) -> str:
    """How a check is named in results and history, e.g. ``not_null(order_id)``."""
    if isinstance(spec, CustomSqlCheck):
        return spec.name or "custom_sql"
    columns = getattr(spec, "columns", None) or ([spec.column] if getattr(spec, "column", None) else [])
    return f"{spec.kind}({', '.join(columns)})" if columns else spec.kind


def _result(table: TableBase, spec: CheckSpec, scope: str | None, outcome: Outcome | None,
            error: str | None) -> dict[str, Any]:
    passed = outcome is not None and outcome.passed
    columns = getattr(spec, "columns", None) or ([spec.column] if getattr(spec, "column", None) else [])
    status = "pass" if passed else ("fail" if spec.severity == "error" else "warn")
    entry: dict[str, Any] = {
        "check": spec.kind, "name": check_label(spec), "table": table.name, "column": ", ".join(columns) or None,
        "status": "skipped" if outcome is not None and outcome.skipped else status,
        "severity": spec.severity, "scope": scope,
        "observed": json_value(outcome.observed) if outcome else None,
        "threshold": json_value(outcome.threshold) if outcome else None,
        "message": mask(error or (outcome.message if outcome else "")),
        "sample": mask_data(outcome.sample) if outcome else [],
    }
    if error:
        entry["error"] = entry["message"]
    return entry


def skip_checks(plan: RunPlan, table: TableBase, result: TableResult) -> None:
    """The AFTER_TABLE_FAILED hook: checks of a table whose load failed are recorded as skipped."""
    specs = [c.spec for c in table.checks] + ([table.reconcile] if table.reconcile else [])
    result.quality = [{**_result(table, spec, None, None, None), "status": "skipped",
                       "message": "not run: the load of this table failed"} for spec in specs]


# --- values ----------------------------------------------------------------------------------

def bind_value(value: Any, column: dict[str, Any], name: str) -> Any:
    """A configured value as the type of the landed column, to bind as a parameter."""
    kind = column.get("data_type")
    try:
        return _CONVERTERS.get(kind, _unsupported)(value, column)
    except (ValueError, TypeError, InvalidOperation):
        raise CheckError(f"value {value!r} does not fit column {name} ({kind}); write a {kind} value") from None


def _as_bool(value: Any, _: dict[str, Any]) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "false", "1", "0"):
        return text in ("true", "1")
    raise ValueError(value)


def _as_int(value: Any, _: dict[str, Any]) -> Any:
    number = Decimal(str(value))
    return int(number) if number == number.to_integral_value() else number


def _as_timestamp(value: Any, column: dict[str, Any]) -> dt.datetime:
    moment = dt.datetime.fromisoformat(str(value))
    if column.get("timezone", True):
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _unsupported(value: Any, column: dict[str, Any]) -> Any:
    raise CheckError(f"columns of type {column.get('data_type')} cannot be compared with a value")


_CONVERTERS: dict[Any, Callable[[Any, dict[str, Any]], Any]] = {
    "text": lambda v, _: ("true" if v else "false") if isinstance(v, bool) else str(v),
    "bigint": _as_int,
    "double": lambda v, _: float(v),
    "decimal": lambda v, _: Decimal(str(v)),
    "bool": _as_bool,
    "timestamp": _as_timestamp,
    "date": lambda v, _: dt.date.fromisoformat(str(v)),
    "time": lambda v, _: dt.time.fromisoformat(str(v)),
}


def as_utc(value: Any, name: str) -> dt.datetime:
    """A timestamp, date or ISO text as an aware UTC datetime (naive values are taken as UTC)."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise CheckError(f"{name} holds {value[:40]!r}, which is not a date or timestamp") from None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time.min, dt.UTC)
    raise CheckError(f"{name} is not a date or timestamp column (its newest value is {str(value)[:40]!r})")


def human_age(age: dt.timedelta) -> str:
    seconds = age.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


for _hook in (schema_changes.record_schema_changes, check_loaded_table):
    if _hook not in AFTER_TABLE_LOAD:
        AFTER_TABLE_LOAD.append(_hook)
for _failed_hook in (schema_changes.record_failed_table, skip_checks):
    if _failed_hook not in AFTER_TABLE_FAILED:
        AFTER_TABLE_FAILED.append(_failed_hook)
