"""What a quality check runs against and what it returns: the landed table (:class:`CheckTarget`),
the :class:`Outcome`, and the SQL and value helpers the checks and the reconciliation share.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ingestion_core.config.models.checks import CheckSpec
from ingestion_core.config.models.tables import TableBase

SAMPLE_ROWS = 5
SAMPLE_COLUMNS = 12
SAMPLE_TEXT = 200
LOAD_ID = "_dlt_load_id"
VALID_TO = "_dlt_valid_to"
ROW_LEVEL = {"not_null", "null_rate", "accepted_values", "regex", "range"}
APPENDING_MODES = {"append", "incremental"}


class CheckError(Exception):
    """A check that cannot run (a missing column, a type it cannot compare): said to the user."""


@dataclass
class Outcome:
    passed: bool
    observed: Any = None
    threshold: Any = None
    message: str = ""
    sample: list[dict[str, Any]] = field(default_factory=list)
    skipped: bool = False  # could not be judged (e.g. the source cannot count): said, not failed


@dataclass
class CheckTarget:
    """The landed table the checks of one table run against, and how to address it."""

    client: Any  # dlt SqlClientBase, open
    table: TableBase
    landed: str  # the table name as dlt normalized it
    table_sql: str  # qualified and quoted by the dialect
    columns: dict[str, dict[str, Any]]  # landed columns of the dlt schema
    naming: Any
    mode: str
    preview: bool
    load_ids: list[str]
    destination_type: str
    limit: int | None = None  # a preview's row limit
    limited: bool = False  # a preview that stopped at its limit: the table may hold more rows

    def column(self, name: str) -> tuple[str, str]:
        """(landed name, quoted SQL) of a configured column; CheckError when it did not land."""
        landed = self.naming.normalize_identifier(name)
        if landed not in self.columns:
            shown = ", ".join(c for c in self.columns if not c.startswith("_dlt")) or "(none)"
            raise CheckError(f"column '{name}' (landed as '{landed}') is not in the loaded table "
                             f"{self.landed}; its columns are {shown}")
        return landed, self.client.escape_column_name(landed)

    def default_scope(self, spec: CheckSpec) -> str:
        if spec.scope:
            return spec.scope
        appending = self.mode in APPENDING_MODES and not self.preview
        return "load" if appending and spec.kind in ROW_LEVEL else "table"

    def scope(self, spec: CheckSpec) -> tuple[str, list[str], list[Any]]:
        """(effective scope, SQL conditions, their arguments) selecting the rows to check."""
        if self.default_scope(spec) == "load" and LOAD_ID in self.columns:
            return "load", *self.this_load()
        if self.mode == "scd2" and VALID_TO in self.columns and not self.preview:
            return "table", [f"{self.client.escape_column_name(VALID_TO)} IS NULL"], []
        return "table", [], []

    def this_load(self) -> tuple[list[str], list[Any]]:
        """(conditions, arguments) selecting the rows of this run's load(s); none when nothing loaded."""
        if not self.load_ids:
            return ["1 = 0"], []
        marks = ", ".join(["%s"] * len(self.load_ids))
        return [f"{self.client.escape_column_name(LOAD_ID)} IN ({marks})"], list(self.load_ids)

    def rows(self, sql: str, args: list[Any] | None = None) -> tuple[list[str], list[tuple]]:
        with self.client.execute_query(sql, *(args or [])) as cursor:
            names = [d[0] for d in cursor.description or []]
            return names, list(cursor.fetchall())

    def scalar(self, sql: str, args: list[Any] | None = None) -> Any:
        _, rows = self.rows(sql, args)
        return rows[0][0] if rows else None

    def sample(self, conditions: list[str], args: list[Any], focus: list[str]) -> list[dict[str, Any]]:
        """Up to SAMPLE_ROWS failing rows: the checked columns and the primary key first."""
        keys = [self.naming.normalize_identifier(k) for k in self.table.primary_key]
        user = [c for c in self.columns if not c.startswith("_dlt")]
        chosen = list(dict.fromkeys([*focus, *[k for k in keys if k in self.columns], *user]))[:SAMPLE_COLUMNS]
        select = ", ".join(self.client.escape_column_name(c) for c in chosen)
        _, rows = self.rows(f"SELECT {select} FROM {self.table_sql}{where_sql(conditions)} LIMIT {SAMPLE_ROWS}", args)
        return [dict(zip(chosen, map(json_value, row), strict=True)) for row in rows]


def where_sql(conditions: list[str]) -> str:
    """`` WHERE (a) AND (b)``, or nothing."""
    return f" WHERE {' AND '.join(f'({c})' for c in conditions)}" if conditions else ""


def json_value(value: Any) -> Any:
    """A value fit for the JSON run record: exact decimals as text, bytes as a short hex."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value[:SAMPLE_TEXT] if isinstance(value, str) else value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        return f"<{len(data)} bytes: {data[:16].hex()}{'...' if len(data) > 16 else ''}>"
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return str(value)[:SAMPLE_TEXT]
