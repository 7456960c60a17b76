"""The type rules of MySQL and MariaDB (see :mod:`ingestion_core.typemap.rules`)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from ingestion_core.typemap.columns import (
    FACT_PROBES,
    ColumnInfo,
    ColumnPlan,
    decimal_landing,
    type_rule,
)
from ingestion_core.typemap.rules import TEXT, _coerced, _driver_date, _integer

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
