"""The type rules per source dialect (see :mod:`ingestion_core.typemap.fidelity`); docs/type-mappings.md
is the user-facing table of the same decisions.

Conversions happen in the SELECT (``CAST(col AS TEXT)``, ``array_to_json``...) so that every
backend reads the same values; guards turn values no reader can carry (an infinite PostgreSQL
timestamp, a SQLite text that is not a date) into an error naming the column instead of a
silent NULL or a clamped value.

This module holds the rules of every dialect and SQLite's; PostgreSQL's and MySQL's live in
:mod:`ingestion_core.typemap.rules_postgres` and :mod:`ingestion_core.typemap.rules_mysql`, loaded by
:func:`load_rules` only when a table of that family is planned (their SQLAlchemy dialects cost a
third of a second to import, which a SQLite preview need not pay).
"""

from __future__ import annotations

import datetime as dt
import importlib
import re
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from ingestion_core.typemap.columns import (
    DECIMAL_MAX_PRECISION,
    FACT_PROBES,
    GUARD_MARK,
    TEXT_CASTS,
    ColumnInfo,
    ColumnPlan,
    ColumnTypeError,
    as_text,
    choices_text,
    decimal_landing,
    type_rule,
)

TEXT = {"data_type": "text"}
DOUBLE = {"data_type": "double"}

TEXT_CASTS.update({
    "postgres": lambda c: sa.cast(c, sa.Text),
    "mysql": lambda c: sa.cast(c, sa.CHAR),
    "sqlite": lambda c: sa.cast(c, sa.Text),
    "mssql": lambda c: sa.cast(c, sa.NVARCHAR()),
    "oracle": lambda c: sa.func.to_char(c),
})


def _integer(bits: int) -> dict[str, Any]:
    return {"data_type": "bigint", "precision": bits}


def _pg_guard(info: ColumnInfo, allowed: Any, what: str) -> Any:
    """``CASE WHEN col IS NULL OR allowed THEN col ELSE <error naming the column> END``. The
    error is a failing cast of a text that includes the value (a constant would be folded, and
    raise, at planning time)."""
    def read(c: Any) -> Any:
        message = (sa.literal(f"{GUARD_MARK}{info.name} holds ") + sa.cast(c, sa.Text)
                   + sa.literal(f", {what}; {choices_text(info.name)}"))
        return sa.case((sa.or_(c.is_(None), allowed(c)), c), else_=sa.cast(message, c.type))
    return read


# --- every dialect -------------------------------------------------------------------------

def integer_width(kind: Any) -> int:
    """Bits of a signed integer type (unsigned MySQL types take the next width)."""
    name = type(kind).__name__.upper()
    bits = {"TINYINT": 8, "SMALLINT": 16, "MEDIUMINT": 32, "YEAR": 16, "BIGINT": 64}.get(name)
    if bits is None:
        bits = 16 if isinstance(kind, sa.SmallInteger) else 64 if isinstance(kind, sa.BigInteger) else 32
    if getattr(kind, "unsigned", False):
        bits = {8: 16, 16: 32, 32: 64}.get(bits, 128)
    return bits


@type_rule("postgres", "mysql", "*")
def integers(info: ColumnInfo) -> ColumnPlan | None:
    kind = info.type  # Oracle's NUMBER is both Numeric and Integer: the decimal rule decides
    if isinstance(kind, sa.Numeric) or (not isinstance(kind, sa.Integer) and type(kind).__name__ != "YEAR"):
        return None
    bits = integer_width(info.type)
    if bits > 64:  # BIGINT UNSIGNED reaches 2^64 - 1
        return info.plan("converted", decimal_landing(20, 0), "unsigned 64-bit integer as decimal(20,0)",
                         read=lambda c: sa.cast(c, sa.Numeric(20, 0)))
    return info.plan("exact", _integer(bits), "integer width kept" if bits != 64 else "")


@type_rule("postgres", "mysql", "*")
def decimals(info: ColumnInfo) -> ColumnPlan | None:
    kind = info.type
    if not isinstance(kind, sa.Numeric):
        return None
    precision, scale = kind.precision, kind.scale or 0
    if precision is not None and scale < 0:  # Oracle NUMBER(5,-2) holds hundreds: 7 digits, no decimals
        precision, scale = precision - scale, 0
    if precision is not None and precision <= DECIMAL_MAX_PRECISION:
        landed = decimal_landing(precision, scale)
        if info.family != "postgres":
            return info.plan("exact", landed, "")
        return info.plan("exact", landed, "a NaN in the column stops the load, naming the column",
                         read=_pg_guard(info, lambda c: c != sa.cast(sa.literal("NaN"), c.type),
                                        "which a decimal cannot hold"))
    if info.family not in TEXT_CASTS:
        return info.plan("refused", {}, "decimal without precision or beyond 38 digits", keeps_order=False)
    why = "without precision" if precision is None else f"beyond {DECIMAL_MAX_PRECISION} digits"
    return info.plan("converted", TEXT, f"decimal {why}: exact digits as text (NaN, Infinity kept as words)",
                     read=lambda c: as_text(info.family, c), keeps_order=False)


@type_rule("postgres", "mysql", "*")
def floats(info: ColumnInfo) -> ColumnPlan | None:
    if not isinstance(info.type, sa.Float):
        return None
    if info.family == "oracle" and type(info.type).__name__ == "FLOAT":  # a NUMBER of up to 38 digits
        return info.plan("converted", TEXT, "Oracle FLOAT is a decimal NUMBER: exact digits as text",
                         read=lambda c: as_text(info.family, c), keeps_order=False)
    single = isinstance(info.type, sa.REAL) or (type(info.type).__name__ == "FLOAT" and info.family == "mysql")
    if single and info.family in ("postgres", "mysql"):
        # widen in the server: text protocols print 4-byte floats rounded to 6 or shortest digits
        return info.plan("exact", DOUBLE, "4-byte float widened to double: the same value, NaN and +/-Inf kept",
                         read=lambda c: sa.cast(c, sa.Double(asdecimal=False)))
    # SQLAlchemy's MySQL DOUBLE returns Decimals unless told otherwise
    return info.plan("exact", DOUBLE, "NaN, +/-Infinity and -0.0 kept",
                     read=lambda c: sa.type_coerce(c, sa.Double(asdecimal=False)))


@type_rule("postgres", "mysql", "*")
def plain_types(info: ColumnInfo) -> ColumnPlan | None:
    kind = info.type
    if isinstance(kind, sa.Boolean):
        return info.plan("exact", {"data_type": "bool"}, "")
    if isinstance(kind, sa.Uuid):
        return info.plan("converted", TEXT, "uuid as its canonical text", keeps_order=False)
    if isinstance(kind, sa.Enum) or (isinstance(kind, sa.String) and type(kind).__name__ != "SET"):
        return info.plan("exact", TEXT, "")
    if isinstance(kind, sa.types._Binary):
        return info.plan("exact", {"data_type": "binary"}, "empty values kept (not NULL)")
    if info.family in ("postgres", "mysql", "sqlite"):
        return None
    if isinstance(kind, sa.DateTime):
        aware = bool(kind.timezone) or type(kind).__name__ == "DATETIMEOFFSET"
        return info.plan("exact", {"data_type": "timestamp", "timezone": aware}, "instants, in UTC" if aware else "")
    if type(kind).__name__ in ("MONEY", "SMALLMONEY"):  # SQL Server: fixed point with 4 decimals
        precision = 19 if type(kind).__name__ == "MONEY" else 10
        return info.plan("converted", decimal_landing(precision, 4), f"money as decimal({precision},4)",
                         read=lambda c: sa.cast(c, sa.Numeric(precision, 4)))
    if isinstance(kind, sa.Date):
        return info.plan("exact", {"data_type": "date"}, "")
    if isinstance(kind, sa.Time):
        return info.plan("exact", {"data_type": "time"}, "")
    return None


# --- SQLite --------------------------------------------------------------------------------
# SQLite keeps any value in any column; a declared type is a hint. Values are read as stored and
# checked against the declared type in Python: one that does not fit stops the load.

def _sqlite_facts(engine: sa.Engine, table: sa.Table) -> dict[str, Any]:
    quoted = engine.dialect.identifier_preparer.quote(table.name)
    with engine.connect() as connection:
        rows = connection.execute(sa.text(f"PRAGMA table_info({quoted})")).fetchall()
    return {"declared": {r[1]: (r[2] or "(no type)").lower() for r in rows}}


FACT_PROBES["sqlite"] = _sqlite_facts


class StoredValue(sa.types.TypeDecorator):
    """Reads a value as the driver hands it over (SQLite: as stored) and converts it with
    ``convert``; a value that does not fit raises a ColumnTypeError naming the column."""

    impl = sa.types.NullType
    cache_ok = False

    def __init__(self, info: ColumnInfo, landed: str, convert: Any):
        super().__init__()
        self.table, self.column, self.declared = info.column.table.name, info.name, info.declared
        self.landed, self.convert = landed, convert

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        try:
            return self.convert(value)
        except (ValueError, TypeError, ArithmeticError):
            shown = repr(value)[:80]
            raise ColumnTypeError(
                f"table {self.table}, column '{self.column}' ({self.declared}): the stored value {shown} cannot "
                f"land as {self.landed}; {choices_text(self.column)}", [self.column]) from None


def _driver_date(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value
    raise ValueError(value)


def _exact_decimal(precision: int, scale: int) -> Any:
    quantum = Decimal(1).scaleb(-scale)

    def convert(value: Any) -> Decimal:
        if isinstance(value, bytes | bool):
            raise TypeError(value)
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        fitted = number.quantize(quantum)  # raises InvalidOperation past the precision
        if fitted != number or len(fitted.as_tuple().digits) > precision:
            raise ValueError(value)
        return fitted
    return convert


def _stored_text(value: Any) -> str:
    if isinstance(value, bytes):
        raise TypeError(value)
    return repr(value) if isinstance(value, float) else str(value)


def _strict_bool(value: Any) -> bool:
    if value in (0, 1) and not isinstance(value, float | str):
        return bool(value)
    raise ValueError(value)


_DATE = r"(\d{4})-(\d{2})-(\d{2})"
_TIME = r"(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?"
DATETIME_TEXT = re.compile(rf"{_DATE}(?:[ T]{_TIME})?")
DATE_TEXT, TIME_TEXT = re.compile(_DATE), re.compile(_TIME)


def _parts(groups: tuple[str | None, ...]) -> list[int]:
    *whole, fraction = groups
    return [int(g or 0) for g in whole] + [int((fraction or "").ljust(6, "0"))]


def _strict_datetime(value: Any) -> dt.datetime:
    match = DATETIME_TEXT.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(value)
    return dt.datetime(*_parts(match.groups()))


def _strict_date(value: Any) -> dt.date:
    match = DATE_TEXT.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(value)
    return dt.date(*(int(g) for g in match.groups()))


def _strict_time(value: Any) -> dt.time:
    match = TIME_TEXT.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(value)
    return dt.time(*_parts(match.groups()))


def _coerced(info: ColumnInfo, landed: str, convert: Any) -> Any:
    return lambda c: sa.type_coerce(c, StoredValue(info, landed, convert))


@type_rule("sqlite")
def sqlite_types(info: ColumnInfo) -> ColumnPlan | None:
    kind = info.type
    checked = "a stored value that does not fit stops the load, naming the column"
    if isinstance(kind, sa.Integer):
        return info.plan("exact", _integer(64), "SQLite integers are 64-bit whatever the declared width")
    if isinstance(kind, sa.Float):
        return info.plan("exact", DOUBLE, "NaN, +/-Infinity and -0.0 kept")
    if isinstance(kind, sa.Numeric) and kind.precision is not None and kind.precision <= DECIMAL_MAX_PRECISION:
        landed = decimal_landing(kind.precision, kind.scale or 0)
        return info.plan("exact", landed, f"stored numbers read at their shortest exact form; {checked}",
                         read=_coerced(info, f"decimal({kind.precision},{kind.scale or 0})",
                                       _exact_decimal(kind.precision, kind.scale or 0)))
    if isinstance(kind, sa.Boolean):
        return info.plan("exact", {"data_type": "bool"}, f"0 and 1; {checked}",
                         read=_coerced(info, "bool", _strict_bool))
    for sa_type, landed, convert, form in (
            (sa.DateTime, {"data_type": "timestamp", "timezone": False}, _strict_datetime,
             "YYYY-MM-DD[ HH:MM[:SS[.ffffff]]]"),
            (sa.Date, {"data_type": "date"}, _strict_date, "YYYY-MM-DD"),
            (sa.Time, {"data_type": "time"}, _strict_time, "HH:MM[:SS[.ffffff]]")):
        if isinstance(kind, sa_type):
            return info.plan("exact", landed, f"text in the form {form}; {checked}",
                             read=_coerced(info, landed["data_type"], convert))
    if isinstance(kind, sa.LargeBinary):
        return info.plan("exact", {"data_type": "binary"}, "empty values kept (not NULL)")
    if isinstance(kind, sa.String):
        return info.plan("exact", TEXT, "")
    return info.plan("converted", TEXT, "the stored value as text (numbers at their shortest exact form)",
                     read=_coerced(info, "text", _stored_text), keeps_order=False)


FAMILY_MODULES = {"postgres": "ingestion_core.typemap.rules_postgres", "mysql": "ingestion_core.typemap.rules_mysql"}
"""Dialect families whose rules live in a module of their own, imported by name on first use;
they register after the rules of every dialect above, as they always did."""


def load_rules(family: str) -> None:
    """The rules of ``family`` registered (this module's at import, the family's own module now)."""
    if family in FAMILY_MODULES:
        importlib.import_module(FAMILY_MODULES[family])
