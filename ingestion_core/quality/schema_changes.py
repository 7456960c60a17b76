"""Schema-change events: each run compares what landed with the previous real run of the table
and records added / removed / retyped columns in ``TableResult.schema_changes``.

- added and retyped come from the landed schema (dlt's, the ``columns`` of the run record). dlt
  never changes a landed column's type: a value of another type lands in a variant column
  (``amount__v_text``), reported as ``amount`` retyped.
- removed needs the source's word, because dlt keeps a column the source dropped (it holds
  NULLs from then on). Source kinds that can list their columns (SQL tables: by reflection)
  register a column reader; what they declare is kept in ``TableResult.source_columns`` and
  compared run to run. Files and APIs send no schema: a column they stop sending is not
  reported as removed.
- A preview compares with the last real run: it shows what the next run will change.
- When a load fails, the declared columns still show what changed (a column added under
  ``schema_evolution: freeze``, a column gone).

Example event::

    {"change": "retyped", "column": "amount", "type": "text", "previous_type": "bigint",
     "previous_run_id": "20240601T060000-shop-1a2b3c", "note": "values land in amount__v_text"}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ingestion_core.config.models.source_file import SourceFileBase
from ingestion_core.config.models.tables import SqlTable, TableBase
from ingestion_core.engine.errors import describe
from ingestion_core.observe.records import TableResult
from ingestion_core.observe.run_log import LOGGER

ColumnReader = Callable[[SourceFileBase, TableBase, str], list[tuple[str, str | None]]]
COLUMN_READERS: dict[str, ColumnReader] = {}
VARIANT_MARK = "__v_"


def register_column_reader(*source_types: str) -> Callable[[ColumnReader], ColumnReader]:
    """Let a source kind list the columns it will send: ``reader(config, table, destination_type)
    -> [(name as in the source, dlt type text or None), ...]``."""
    def register(func: ColumnReader) -> ColumnReader:
        for kind in source_types:
            COLUMN_READERS[kind] = func
        return func
    return register


@register_column_reader("postgres", "mysql", "mssql", "azure_sql", "oracle", "sqlite")
def sql_columns(config: SourceFileBase, table: SqlTable, destination_type: str) -> list[tuple[str, str | None]]:
    """The columns of a SQL table the run reads, typed as the run lands them: the same type plan
    as the load (:func:`ingestion_core.engine.sources.sql.planned_columns`); None for a refused column."""
    from ingestion_core.engine.sources.sql import planned_columns

    return typed_columns(planned_columns(config, table, destination_type))


def typed_columns(planned: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str | None]]:
    """(name, landed dlt hints) -> (name, dlt type text, None for a refused column)."""
    from ingestion_core.typemap.names import type_text

    return [(name, type_text(landed) if landed.get("data_type") else None) for name, landed in planned]


def declared_columns(config: SourceFileBase, table: TableBase, destination_type: str, naming: Any,
                     planned: list[tuple[str, dict[str, Any]]] | None = None) -> dict[str, str | None] | None:
    """Landed name -> dlt type of the columns the source declares, or None when its kind cannot tell.
    ``planned``: the columns the load itself read (RunPlan.source_columns), which spares reading
    the source's columns (a reflection) again."""
    reader = COLUMN_READERS.get(config.source_type)
    if reader is None:
        return None
    try:
        columns = typed_columns(planned) if planned is not None else reader(config, table, destination_type)
        return {naming.normalize_identifier(name): kind for name, kind in columns}
    except Exception as exc:  # a source gone since the load: no events rather than a failed table
        LOGGER.warning("%s: could not list the source's columns: %s", table.name, describe(exc))
        return None


def record_schema_changes(pipeline: Any, plan: Any, table: TableBase, result: TableResult) -> None:
    """The AFTER_TABLE_LOAD hook. Never raises."""
    try:
        schema = pipeline.default_schema
        declared = declared_columns(plan.config, table, plan.destination.type, schema.naming,
                                    plan.source_columns.get(table.name))
        result.source_columns = list(declared) if declared is not None else None
        previous = plan.last_table_result(table.name)
        if previous is None:
            return
        landed = schema.naming.normalize_table_identifier(table.name)
        variants = {name for name, c in schema.get_table_columns(landed).items() if c.get("variant")} \
            if landed in schema.tables else set()
        result.schema_changes = compare(previous[1], result.columns, result.source_columns, variants, previous[0])
    except Exception as exc:
        LOGGER.warning("%s: schema changes not recorded: %s", table.name, describe(exc))


def record_failed_table(plan: Any, table: TableBase, result: TableResult) -> None:
    """The AFTER_TABLE_FAILED hook: the declared columns against the last run, when the source
    kind can list them; they often explain the failure (a column retyped, or added under
    ``schema_evolution: freeze``). Types are compared without precision. Never raises."""
    try:
        from dlt.common.normalizers.naming.snake_case import NamingConvention

        if result.error is not None and result.error.transient:  # the source is unreachable: do not wait twice
            return
        previous = plan.last_table_result(table.name)
        if previous is None:
            return
        declared = declared_columns(plan.config, table, plan.destination.type, NamingConvention())
        if declared is None:
            return
        result.source_columns = list(declared)
        before = {c.get("name"): c.get("type") for c in previous[1].get("columns") or []}
        landed = [{"name": name, "type": kind if _base(kind) != _base(before.get(name)) else before.get(name)}
                  for name, kind in declared.items()]
        result.schema_changes = compare(previous[1], landed, list(declared), set(), previous[0])
    except Exception as exc:
        LOGGER.warning("%s: schema changes not recorded: %s", table.name, describe(exc))


def _base(kind: str | None) -> str | None:
    return kind.split("(", 1)[0] if kind else kind


def compare(previous: dict[str, Any], columns: list[dict[str, Any]], declared: list[str] | None,
            variants: set[str], previous_run_id: str) -> list[dict[str, Any]]:
    """Events between the previous run's table entry and this run's landed ``columns``."""
    before = {c["name"]: c.get("type") for c in previous.get("columns") or []}
    now = {c["name"]: c.get("type") for c in columns}
    events: list[dict[str, Any]] = []

    def event(change: str, column: str, kind: str | None, old: str | None, **extra: Any) -> None:
        events.append({"change": change, "column": column, "type": kind, "previous_type": old,
                       "previous_run_id": previous_run_id, **extra})

    for name, kind in now.items():
        base = name.rsplit(VARIANT_MARK, 1)[0] if name in variants else None
        if name in before:
            if before[name] != kind:
                event("retyped", name, kind, before[name])
        elif base and base in before:
            event("retyped", base, kind, before[base], note=f"values land in {name}")
        else:
            event("added", name, kind, None)
    if declared is not None:
        delivered_before = previous.get("source_columns")
        if delivered_before is None:  # an older record: what had landed stands in
            delivered_before = list(before)
        reported = {e["column"] for e in events}
        for name in declared:  # back after a removal: landed long ago, so not new to the schema
            if name not in delivered_before and name in before and name not in reported:
                event("added", name, now.get(name), None, note="the source sends it again")
        for name in delivered_before:
            if name not in declared:
                event("removed", name, None, before.get(name))
    return events
