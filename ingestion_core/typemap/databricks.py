"""How Oracle and SQL Server column types land in Databricks, decided at reflection time (dlt's
``type_adapter_callback``, before any row is read).

Each rule has a name, a default and the choices a destination file can make under
``type_mapping:`` (``DatabricksTypeMapping``); docs/databricks.md describes them:

=============================  ================================  ===========================
rule                           source column                     default on Databricks
=============================  ================================  ===========================
oracle_number                  Oracle NUMBER (no precision)      DOUBLE
oracle_number_with_precision   Oracle NUMBER(p,s)                DECIMAL(p,s)
oracle_date                    Oracle DATE (has a time of day)   TIMESTAMP
mssql_time                     SQL Server TIME                   STRING
mssql_datetimeoffset           SQL Server DATETIMEOFFSET         TIMESTAMP (UTC)
mssql_money                    SQL Server MONEY / SMALLMONEY     DECIMAL(19,4) / DECIMAL(10,4)
mssql_uniqueidentifier         SQL Server UNIQUEIDENTIFIER       STRING
=============================  ================================  ===========================

The mapping in force is the Databricks destination's (set when the destination is built, see
:func:`use_type_mapping`); a table's own ``type_mapping:`` (same rules and choices) goes on top of
it for that table: :func:`databricks_type_adapter` is registered as the type mapping of each
(source type, databricks) pair (:func:`ingestion_core.typemap.adapters.register_type_mapping`).

Example::

    >>> from sqlalchemy.dialects import oracle
    >>> databricks_type_adapter("oracle", {"oracle_number": "bigint"})(oracle.NUMBER())
    BigInteger()
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mssql, oracle

from ingestion_core.typemap.adapters import register_type_mapping

MAX_DECIMAL_PRECISION = 38  # Databricks DECIMAL


def _double(_: Any) -> Any:
    # SQLAlchemy 2.1's Float is no longer a Numeric, and dlt maps only Numeric(asdecimal=False) to double
    return sa.Numeric(asdecimal=False)


def _decimal(precision: int, scale: int) -> Any:
    return sa.Numeric(min(precision, MAX_DECIMAL_PRECISION), scale, asdecimal=True)


def _number_decimal(sql_type: Any) -> Any:
    """NUMBER(p,s) as DECIMAL(p,s); a negative scale (NUMBER(5,-2): hundreds) becomes DECIMAL(p-s,0);
    NUMBER(*,s) has 38 digits."""
    precision = sql_type.precision or MAX_DECIMAL_PRECISION
    scale = sql_type.scale or 0
    if scale < 0:
        return _decimal(precision - scale, 0)
    return _decimal(precision, min(scale, MAX_DECIMAL_PRECISION))


def _keep(sql_type: Any) -> Any:
    return sql_type


@dataclass(frozen=True)
class TypeRule:
    """One mapping: which columns it takes and the SQLAlchemy type each choice reads them as."""

    name: str
    source_types: tuple[str, ...]
    column: str  # the source column, for people
    matches: Callable[[Any], bool]
    choices: dict[str, Callable[[Any], Any]]
    default: str


def _oracle_number(precise: bool) -> Callable[[Any], bool]:
    def matches(sql_type: Any) -> bool:
        if not isinstance(sql_type, oracle.NUMBER):
            return False
        has_precision = sql_type.precision is not None or bool(sql_type.scale)
        return has_precision == precise
    return matches


MSSQL = ("mssql", "azure_sql")
RULES: tuple[TypeRule, ...] = (
    TypeRule("oracle_number", ("oracle",), "NUMBER without precision", _oracle_number(False), {
        "double": _double, "bigint": lambda _: sa.BigInteger(), "decimal": lambda _: _decimal(38, 10),
        "string": lambda _: sa.String(),
    }, "double"),
    TypeRule("oracle_number_with_precision", ("oracle",), "NUMBER(p,s)", _oracle_number(True), {
        "decimal": _number_decimal, "double": _double,
    }, "decimal"),
    TypeRule("oracle_date", ("oracle",), "DATE", lambda t: isinstance(t, oracle.DATE), {
        "timestamp": lambda _: sa.DateTime(timezone=True), "timestamp_ntz": lambda _: sa.DateTime(),
        "date": lambda _: sa.Date(),
    }, "timestamp"),
    TypeRule("mssql_time", MSSQL, "TIME", lambda t: isinstance(t, sa.Time), {
        "string": lambda _: sa.String(), "time": _keep,
    }, "string"),
    TypeRule("mssql_datetimeoffset", MSSQL, "DATETIMEOFFSET", lambda t: isinstance(t, mssql.DATETIMEOFFSET), {
        "timestamp": lambda _: sa.DateTime(timezone=True), "string": lambda _: sa.String(),
    }, "timestamp"),
    TypeRule("mssql_money", MSSQL, "MONEY / SMALLMONEY", lambda t: isinstance(t, (mssql.MONEY, mssql.SMALLMONEY)), {
        "decimal": lambda t: _decimal(10, 4) if isinstance(t, mssql.SMALLMONEY) else _decimal(19, 4),
        "double": _double,
    }, "decimal"),
    TypeRule("mssql_uniqueidentifier", MSSQL, "UNIQUEIDENTIFIER", lambda t: isinstance(t, mssql.UNIQUEIDENTIFIER), {
        "string": lambda _: sa.String(36),
    }, "string"),
)
RULES_BY_NAME = {rule.name: rule for rule in RULES}
DEFAULT_MAPPING = {rule.name: rule.default for rule in RULES}

_lock = threading.Lock()
_mapping: dict[str, str] = dict(DEFAULT_MAPPING)


def check_mapping(mapping: Mapping[str, str]) -> dict[str, str]:
    """The mapping with the defaults filled in; an unknown rule or choice is a ValueError that
    names the valid ones."""
    for name, choice in mapping.items():
        rule = RULES_BY_NAME.get(name)
        if rule is None:
            raise ValueError(f"no type rule '{name}'; the rules are {', '.join(RULES_BY_NAME)}")
        if choice not in rule.choices:
            raise ValueError(f"type rule {name} has no choice '{choice}'; choose one of {', '.join(rule.choices)}")
    return {**DEFAULT_MAPPING, **mapping}


def use_type_mapping(mapping: Mapping[str, str] | Any | None) -> None:
    """Set the mapping in force for this process (the Databricks destination does, when built).
    Takes a dict or a ``DatabricksTypeMapping``; None restores the defaults."""
    if mapping is not None and not isinstance(mapping, Mapping):
        mapping = mapping.model_dump()
    checked = check_mapping(mapping or {})
    global _mapping
    with _lock:
        _mapping = checked


def current_type_mapping() -> dict[str, str]:
    with _lock:
        return dict(_mapping)


def adapt_type(source_type: str, sql_type: Any, mapping: Mapping[str, str] | None = None) -> Any:
    """The type a column of ``sql_type`` is read as, or None when no rule takes it."""
    mapping = current_type_mapping() if mapping is None else mapping
    for rule in RULES:
        if source_type in rule.source_types and rule.matches(sql_type):
            return rule.choices[mapping.get(rule.name, rule.default)](sql_type)
    return None


def databricks_type_adapter(source_type: str, overrides: Mapping[str, str] | None = None) -> Callable[[Any], Any]:
    """An adapter for one source type: the mapping in force, with ``overrides`` (e.g. a table's)
    on top. For ``type_adapter_callback``."""
    mapping = check_mapping({**current_type_mapping(), **(overrides or {})})

    def adapt(sql_type: Any) -> Any:
        return adapt_type(source_type, sql_type, mapping)

    return adapt


for _source_type in ("oracle", *MSSQL):
    register_type_mapping(_source_type, "databricks")(
        lambda overrides, _kind=_source_type: databricks_type_adapter(_kind, overrides)
    )
