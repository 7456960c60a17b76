"""The type rules per source dialect (see :mod:`ingestion_core.typemap.fidelity`); docs/type-mappings.md
is the user-facing table of the same decisions.

Conversions happen in the SELECT (``CAST(col AS TEXT)``, ``array_to_json``...) so that every
backend reads the same values; guards turn values no reader can carry (an infinite PostgreSQL
timestamp, a SQLite text that is not a date) into an error naming the column instead of a
silent NULL or a clamped value.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects import postgresql as pg

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


# --- PostgreSQL ----------------------------------------------------------------------------

def _pg_facts(engine: sa.Engine, table: sa.Table) -> dict[str, Any]:
    relation = engine.dialect.identifier_preparer.format_table(table)
    with engine.connect() as connection:
        rows = connection.execute(sa.text(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = CAST(:rel AS regclass) AND attnum > 0 AND NOT attisdropped"), {"rel": relation})
        facts: dict[str, Any] = {"declared": {name: kind for name, kind in rows}}
        if any(isinstance(c.type, pg.MONEY) for c in table.columns):
            facts["money_scale"] = connection.execute(sa.text("SELECT scale(CAST(0 AS money)::numeric)")).scalar()
    return facts


FACT_PROBES["postgres"] = _pg_facts


def _pg_guard(info: ColumnInfo, allowed: Any, what: str) -> Any:
    """``CASE WHEN col IS NULL OR allowed THEN col ELSE <error naming the column> END``. The
    error is a failing cast of a text that includes the value (a constant would be folded, and
    raise, at planning time)."""
    def read(c: Any) -> Any:
        message = (sa.literal(f"{GUARD_MARK}{info.name} holds ") + sa.cast(c, sa.Text)
                   + sa.literal(f", {what}; {choices_text(info.name)}"))
        return sa.case((sa.or_(c.is_(None), allowed(c)), c), else_=sa.cast(message, c.type))
    return read


def _within_years(low: str, high: str) -> Any:
    """Years 1 to 9999 (what Python's datetime and so the readers carry); infinity falls outside.
    Constant bounds: comparing costs a tenth of EXTRACT(year ...)."""
    return lambda c: c.between(sa.cast(sa.literal(low), c.type), sa.cast(sa.literal(high), c.type))


TIMESTAMP_RANGE = _within_years("0001-01-01 00:00:00", "9999-12-31 23:59:59.999999")
TIMESTAMPTZ_RANGE = _within_years("0001-01-01 00:00:00+00", "9999-12-31 23:59:59.999999+00")
DATE_RANGE = _within_years("0001-01-01", "9999-12-31")


@type_rule("postgres")
def pg_temporal(info: ColumnInfo) -> ColumnPlan | None:
    kind = info.type
    outside = "which is infinite or outside the years 1 to 9999 that the readers carry"
    if isinstance(kind, sa.DateTime):
        return info.plan("exact", {"data_type": "timestamp", "timezone": bool(kind.timezone)},
                         ("instants, in UTC; " if kind.timezone else "")
                         + "infinity and years outside 1-9999 stop the load, naming the column",
                         read=_pg_guard(info, TIMESTAMPTZ_RANGE if kind.timezone else TIMESTAMP_RANGE, outside))
    if isinstance(kind, sa.Date):
        return info.plan("exact", {"data_type": "date"}, "infinity and years outside 1-9999 stop the load, "
                         "naming the column", read=_pg_guard(info, DATE_RANGE, outside))
    if isinstance(kind, sa.Time) and kind.timezone:
        return info.plan("converted", TEXT, "time with time zone as text keeping the offset (12:34:56.789+02)",
                         read=lambda c: sa.cast(c, sa.Text), keeps_order=False)
    if isinstance(kind, sa.Time):
        return info.plan("exact", {"data_type": "time"}, "24:00:00 stops the load, naming the column",
                         read=_pg_guard(info, lambda c: c < sa.cast(sa.literal("24:00:00"), c.type),
                                        "which no reader carries (they turn it into 00:00:00)"))
    if isinstance(kind, pg.INTERVAL):
        return info.plan("converted", TEXT, "interval as ISO-8601 text, as PostgreSQL prints it with "
                         "intervalstyle iso_8601 (P1Y2M3DT4H5M6.5S); months, days and time stay apart",
                         read=iso_8601_interval, keeps_order=False)
    return None


def iso_8601_interval(c: Any) -> Any:
    """PostgreSQL's own ISO-8601 interval text (``intervalstyle = iso_8601``), built in SQL so
    that it holds whatever the session's interval style."""
    seconds = sa.extract("second", c)

    def unit(field: str, letter: str) -> Any:
        part = sa.extract(field, c)
        return sa.case((part != 0, sa.cast(sa.cast(part, sa.BigInteger), sa.Text) + letter))

    digits = sa.func.rtrim(sa.func.rtrim(sa.cast(sa.cast(sa.func.abs(seconds), sa.Numeric(20, 6)), sa.Text), "0"), ".")
    second_part = sa.case((seconds != 0, sa.case((seconds < 0, "-"), else_="") + digits + "S"))
    has_time = sa.or_(sa.extract("hour", c) != 0, sa.extract("minute", c) != 0, seconds != 0)
    body = sa.func.concat("P", unit("year", "Y"), unit("month", "M"), unit("day", "D"), sa.case((has_time, "T")),
                          unit("hour", "H"), unit("minute", "M"), second_part)
    return sa.case((c.is_(None), sa.null()), else_=sa.func.coalesce(sa.func.nullif(body, "P"), "PT0S"))


@type_rule("postgres")
def pg_special(info: ColumnInfo) -> ColumnPlan | None:
    kind = info.type
    if isinstance(kind, pg.MONEY):
        scale = int(info.facts.get("money_scale", 2))
        return info.plan("converted", decimal_landing(19, scale), f"money as decimal(19,{scale}) (no currency "
                         "symbol, no locale formatting)", read=lambda c: sa.cast(c, sa.Numeric(19, scale)))
    if isinstance(kind, sa.JSON):
        return info.plan("converted", TEXT, "JSON text exactly as the server holds it: big numbers and long "
                         "decimals keep every digit, JSON null stays the text null (SQL NULL stays NULL)",
                         read=lambda c: sa.cast(c, sa.Text), keeps_order=False)
    if isinstance(kind, sa.ARRAY):
        return info.plan("converted", TEXT, "array as JSON text (array_to_json): [1,2,null]; lower bounds "
                         "other than 1 are not kept", read=lambda c: sa.cast(sa.func.array_to_json(c), sa.Text),
                         keeps_order=False)
    if isinstance(kind, pg.INET):  # inet::text would add /32; every reader gets the printed form as is
        return info.plan("converted", TEXT, "network address as the server prints it", keeps_order=False)
    if isinstance(kind, (sa.Boolean, sa.String, sa.LargeBinary, sa.Uuid)):
        return None
    return info.plan("converted", TEXT, f"{info.declared} as the text the server prints",
                     read=lambda c: sa.cast(c, sa.Text), keeps_order=False)


# --- MySQL / MariaDB -----------------------------------------------------------------------

# names of a time zone that is UTC all year round (a MySQL / MariaDB server's default, for connectorx)
UTC_NAMES = {"+00:00", "-00:00", "UTC", "GMT", "Etc/UTC", "Etc/GMT", "Universal", "Zulu", "Coordinated Universal Time"}


def utc_by_default(time_zone: str | None, system_time_zone: str | None) -> bool:
    """Whether a MySQL / MariaDB session that sets no time zone reads TIMESTAMP values in UTC."""
    return (system_time_zone if time_zone == "SYSTEM" else time_zone) in UTC_NAMES


def _mysql_facts(engine: sa.Engine, table: sa.Table) -> dict[str, Any]:
    with engine.connect() as connection:
        rows = connection.execute(sa.text(
            "SELECT COLUMN_NAME, COLUMN_TYPE, DATA_TYPE FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = COALESCE(:schema, DATABASE()) AND TABLE_NAME = :name"),
            {"schema": table.schema, "name": table.name}).fetchall()
        zones = connection.execute(sa.text("SELECT @@global.time_zone, @@system_time_zone")).one()
    return {"declared": {r[0]: r[1] for r in rows}, "data_type": {r[0]: r[2].lower() for r in rows},
            "default_time_zone": None if utc_by_default(*zones) else zones[0] if zones[0] != "SYSTEM" else zones[1]}


FACT_PROBES["mysql"] = _mysql_facts
SPATIAL = {"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
           "geometrycollection"}


@type_rule("mysql")
def mysql_special(info: ColumnInfo) -> ColumnPlan | None:
    kind, name = info.type, type(info.type).__name__
    data_type = info.facts.get("data_type", {}).get(info.name, "")
    if name == "BIT":
        if (kind.length or 1) >= 64:
            return info.plan("converted", decimal_landing(20, 0), "BIT(64) as the number its bits make",
                             read=lambda c: sa.cast(c, sa.Numeric(20, 0)),
                             cx_read=lambda c: sa.cast(sa.cast(c, sa.Numeric(20, 0)), sa.CHAR))
        return info.plan("converted", _integer(64), "bits as the number they make (b'101' -> 5)",
                         read=lambda c: sa.cast(c, mysql.INTEGER(unsigned=True)))
    if isinstance(kind, sa.Time):
        return info.plan("converted", TEXT, "TIME is a duration from -838:59:59 to 838:59:59: text as MySQL "
                         "prints it (-838:59:59.000000)", read=lambda c: sa.cast(c, sa.CHAR), keeps_order=False)
    if isinstance(kind, sa.JSON) or name == "SET":
        what = "JSON text exactly as the server returns it" if name != "SET" else "SET as its text (a,b)"
        return info.plan("converted" if name != "SET" else "exact", TEXT, what,
                         read=lambda c: sa.cast(c, sa.CHAR), keeps_order=name == "SET")
    if isinstance(kind, (sa.DateTime, sa.Date)):
        landed = {"data_type": "date"} if not isinstance(kind, sa.DateTime) else \
            {"data_type": "timestamp", "timezone": False}
        # PyMySQL hands zero and invalid dates over as text; connectorx panics on them (then pyarrow reads)
        note = "zero or invalid dates (0000-00-00) stop the load, naming the column"
        if data_type == "timestamp":
            return info.plan("exact", landed, f"TIMESTAMP read in UTC; {note}", pyarrow_only=_cx_time_zone(info),
                             read=_coerced(info, landed["data_type"], _driver_date))
        return info.plan("exact", landed, note, read=_coerced(info, landed["data_type"], _driver_date))
    if data_type in SPATIAL:
        return info.plan("converted", {"data_type": "binary"}, "geometry in MySQL's internal form (SRID + WKB)",
                         keeps_order=False)
    if isinstance(kind, sa.types.NullType):
        return info.plan("converted", TEXT, f"{info.declared} as the text the server prints",
                         read=lambda c: sa.cast(c, sa.CHAR), keeps_order=False)
    return None


def _cx_time_zone(info: ColumnInfo) -> str:
    """connectorx's MySQL reader takes no session settings: it reads TIMESTAMP values in the server's
    default time zone, which must then be UTC."""
    zone = info.facts.get("default_time_zone")
    return f"connectorx would read it in the server's time zone {zone}, not UTC" if zone else ""


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
