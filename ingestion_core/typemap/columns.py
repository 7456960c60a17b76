"""The vocabulary of type fidelity, below the planner and its rules: how one column lands
(:class:`ColumnPlan`), what a rule sees (:class:`ColumnInfo`), the rule registry of each dialect
family, and the ``column_types`` choices a table config may make (:func:`parse_column_type`).

:mod:`ingestion_core.typemap.rules` registers the rules per dialect here;
:mod:`ingestion_core.typemap.fidelity` plans a table with them.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ingestion_core.typemap.names import type_text

if TYPE_CHECKING:  # kept out of imports: the config models import parse_column_type
    import sqlalchemy as sa

Decision = Literal["exact", "converted", "refused"]
Reader = Callable[[Any], Any]  # column expression -> the expression the SELECT reads instead
TYPE_KEYS = ("data_type", "precision", "scale", "timezone")
GUARD_MARK = "ingest: column "  # PostgreSQL guards raise errors whose text starts with this
DIALECT_FAMILY = {"postgres": "postgres", "mysql": "mysql", "sqlite": "sqlite", "mssql": "mssql",
                  "azure_sql": "mssql", "oracle": "oracle"}
DECIMAL_MAX_PRECISION = 38  # DuckDB, Databricks and Parquet decimals hold 38 digits
CONNECTORX_COLUMN = re.compile(r"deserializing column (\d+)")


class ColumnTypeError(ValueError):
    """A column cannot land exactly: the message names it and the choices."""

    def __init__(self, message: str, columns: list[str], type_decisions: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.columns = columns
        self.type_decisions = type_decisions or []


def choices_text(column: str) -> str:
    return (f"choices: land it as text with column_types: {{{column}: text}}, "
            f"or leave it out with exclude_columns: [{column}]")


@dataclass(frozen=True)
class ColumnPlan:
    """How one column lands. ``landed`` holds dlt's type hints (data_type, precision, scale,
    timezone); ``read`` replaces the column in the SELECT for every backend, ``cx_read`` for
    connectorx only (e.g. decimals it would round, read as text and converted in Arrow)."""

    name: str
    source_type: str
    decision: Decision
    landed: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    read: Reader | None = None
    cx_read: Reader | None = None
    keeps_order: bool = True
    pyarrow_only: str = ""  # why connectorx cannot read the column exactly (then pyarrow reads the table)

    @property
    def landed_type(self) -> str:
        return type_text(self.landed)  # the landed schema of the run names it the same way

    def record(self) -> dict[str, Any]:
        """What the run record and the preview show for the column."""
        return {"column": self.name, "source_type": self.source_type, "landed_type": self.landed_type,
                "decision": self.decision, "note": self.note}


@dataclass(frozen=True)
class ColumnInfo:
    """What a rule sees: the column, its SQLAlchemy type (domains unwrapped), the type as the
    source declares it, the dialect family and facts probed once per table."""

    column: sa.Column
    type: Any
    declared: str
    family: str
    facts: dict[str, Any]

    @property
    def name(self) -> str:
        return self.column.name

    def plan(self, decision: Decision, landed: dict[str, Any], note: str, read: Reader | None = None,
             keeps_order: bool = True, cx_read: Reader | None = None, pyarrow_only: str = "") -> ColumnPlan:
        return ColumnPlan(self.name, self.declared, decision, landed, note, read, cx_read, keeps_order, pyarrow_only)


Rule = Callable[[ColumnInfo], ColumnPlan | None]


class _RuleRegistry(dict):
    """Rules by dialect family. A family's own rules may live in a module of their own, imported by
    name when the family is first asked for (:func:`ingestion_core.typemap.rules.load_rules`), so
    ``TYPE_RULES["postgres"]`` is always the whole list, in registration order."""

    def __getitem__(self, family: str) -> list[Rule]:
        _load_family(family)
        return super().__getitem__(family)

    def get(self, family: str, default: Any = None) -> Any:  # type: ignore[override]
        _load_family(family)
        return super().get(family, default)


def _load_family(family: str) -> None:
    importlib.import_module("ingestion_core.typemap.rules").load_rules(family)


TYPE_RULES: dict[str, list[Rule]] = _RuleRegistry()
TEXT_CASTS: dict[str, Reader] = {}
"""How each dialect family reads a column as text (the ``text`` choice of column_types)."""
FACT_PROBES: dict[str, Callable[[Any, Any], dict[str, Any]]] = {}
"""Per family: one round trip at plan time for what rules need (declared types, money scale)."""


def type_rule(*families: str) -> Callable[[Rule], Rule]:
    """Register a rule for dialect families (``*``: every family, after its own rules); rules
    run in registration order, the first plan wins."""
    def register(func: Rule) -> Rule:
        for family in families:
            TYPE_RULES.setdefault(family, []).append(func)
        return func
    return register


def as_text(family: str, expression: Any) -> Any:
    cast = TEXT_CASTS.get(family)
    if cast is None:
        raise KeyError(f"no text cast for {family}")
    return cast(expression)


def decimal_landing(precision: int, scale: int) -> dict[str, Any]:
    return {"data_type": "decimal", "precision": precision, "scale": scale}


OVERRIDE = re.compile(r"^\s*(text|decimal\s*\(\s*(\d+)\s*,\s*(\d+)\s*\))\s*$", re.I)


def parse_column_type(value: str) -> dict[str, Any]:
    """``text`` or ``decimal(p,s)`` (p <= 38, s <= p) -> dlt hints; ValueError otherwise.
    ``SqlTable.column_types`` calls it to validate (and write canonically) its values."""
    match = OVERRIDE.match(str(value))
    if not match:
        raise ValueError(f"column type '{value}' is not one of: text, decimal(p,s) (e.g. decimal(38,10))")
    if match.group(2) is None:
        return {"data_type": "text"}
    precision, scale = int(match.group(2)), int(match.group(3))
    if not 1 <= precision <= DECIMAL_MAX_PRECISION or scale > precision:
        raise ValueError(f"column type '{value}': decimal needs 1 <= p <= {DECIMAL_MAX_PRECISION} and s <= p")
    return decimal_landing(precision, scale)
