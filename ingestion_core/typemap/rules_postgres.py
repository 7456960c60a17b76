"""The type rules of PostgreSQL (see :mod:`ingestion_core.typemap.rules`)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from ingestion_core.typemap.columns import (
    FACT_PROBES,
    ColumnInfo,
    ColumnPlan,
    decimal_landing,
    type_rule,
)
from ingestion_core.typemap.rules import TEXT, _pg_guard

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
