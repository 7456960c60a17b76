"""Type fidelity on SQLite (real files, real DuckDB) and the rules for sources no server runs for
here (SQL Server, Oracle: plans built from SQLAlchemy's dialect types, no connection)."""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql, oracle

from ingestion_core.config.store import ConfigStore
from ingestion_core.pipeline.runner import run_source
from ingestion_core.typemap.fidelity import ColumnTypeError, parse_column_type, plan_table


def write_source(project: Path, tables: str) -> object:
    (project / "configs" / "sources" / "lite.yaml").write_text(
        "name: lite\nowner: data-ops\nsource: {type: sqlite, path: lite.sqlite}\nretries: {attempts: 1}\n"
        f"tables:\n{tables}")
    return ConfigStore().load_source("lite").config


def landed(project: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(project / ".ingest" / "local_duckdb.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def sqlite_exec(project: Path, *statements: str, rows: list[tuple] | None = None) -> None:
    with sqlite3.connect(project / "lite.sqlite") as con:
        for statement in statements:
            con.execute(statement)
        if rows:
            con.executemany(f"INSERT INTO typed VALUES ({', '.join('?' * len(rows[0]))})", rows)


TYPED = ("CREATE TABLE typed (id INTEGER PRIMARY KEY, small INT, ratio REAL, price DECIMAL(10,2), "
         "loose NUMERIC, ok BOOLEAN, at TIMESTAMP, day DATE, blob BLOB, label TEXT, doc JSON)")
ROWS = [
    (1, 9223372036854775807, float("inf"), 1.5, 0.1, 1, "2024-02-29 12:34:56.123456", "2024-02-29", b"", "x",
     '{"big": 123456789012345678901234567890}'),
    (2, -1, 5e-324, 2, 123456789012345678, 0, "0001-01-01 00:00:00", "9999-12-31", b"\x00", "", "null"),
    (3, None, float("-inf"), "3.25", "1e-40", None, "2024-01-01T08:00", None, None, None, None),
]


@pytest.mark.parametrize("backend", ["auto", "sqlalchemy", "connectorx"])
def test_sqlite_values_land_as_stored(ingest_env: Path, backend: str) -> None:
    sqlite_exec(ingest_env, TYPED, rows=ROWS)
    record = run_source(write_source(ingest_env, f"  - {{name: typed, backend: {backend}}}\n"), actor="ana")
    assert record.status == "success", record.tables[0].error
    assert record.tables[0].backend == "pyarrow"  # connectorx reads PostgreSQL and MySQL only
    rows = landed(ingest_env, "SELECT * EXCLUDE (_dlt_load_id) FROM lite.typed ORDER BY id")
    assert rows[0] == (1, 9223372036854775807, math.inf, Decimal("1.50"), "0.1", True,
                       dt.datetime(2024, 2, 29, 12, 34, 56, 123456), dt.date(2024, 2, 29), b"", "x",
                       '{"big": 123456789012345678901234567890}')
    assert rows[1][:6] == (2, -1, 5e-324, Decimal("2.00"), "123456789012345678", False)  # a double would round it
    assert rows[1][6:] == (dt.datetime(1, 1, 1), dt.date(9999, 12, 31), b"\x00", "", "null")
    assert rows[2][3:5] == (Decimal("3.25"), "1e-40") and rows[2][6] == dt.datetime(2024, 1, 1, 8, 0)
    types = dict(landed(ingest_env, "SELECT column_name, data_type FROM information_schema.columns "
                                    "WHERE table_name = 'typed'"))
    assert (types["small"], types["price"], types["loose"], types["ok"]) == ("BIGINT", "DECIMAL(10,2)", "VARCHAR",
                                                                             "BOOLEAN")


@pytest.mark.parametrize(("declared", "stored", "shown"), [
    ("TIMESTAMP", "2024-01-01 10:00:00+02:00", "'2024-01-01 10:00:00+02:00'"),  # an offset would be dropped
    ("TIMESTAMP", "2024-01-01 10:00:00.1234567", "'2024-01-01 10:00:00.1234567'"),  # 7 digits would be cut
    ("TIMESTAMP", 1704103200, "1704103200"),  # a unix time is not a timestamp text
    ("BOOLEAN", 2, "2"),
    ("DECIMAL(10,2)", 1.005, "1.005"),  # would round to 1.00 or 1.01
    ("DECIMAL(4,2)", 123.5, "123.5"),
])
def test_a_stored_value_that_does_not_fit_its_declared_type_names_the_column(
        ingest_env: Path, declared: str, stored: object, shown: str) -> None:
    sqlite_exec(ingest_env, f"CREATE TABLE typed (id INTEGER, odd {declared})", rows=[(1, None), (2, stored)])
    record = run_source(write_source(ingest_env, "  - {name: typed}\n"), actor="ana")
    error = record.tables[0].error
    assert record.status == "failed" and error.error_class == "ColumnTypeError", error
    assert f"column 'odd' ({declared.lower()})" in error.message and shown in error.message, error.message
    assert "column_types: {odd: text}" in error.message


# --- sources without a server here: plans from SQLAlchemy's dialect types ---------------------

def plan_for(dialect: object, *columns: sa.Column, source_type: str, **kwargs: object):
    table = sa.Table("t", sa.MetaData(), *columns)
    return plan_table(SimpleNamespace(dialect=dialect), table, source_type, **kwargs)


def test_sql_server_types_without_an_exact_landing_are_refused_up_front() -> None:
    plan = plan_for(mssql.dialect(), sa.Column("id", sa.Integer), sa.Column("v", mssql.SQL_VARIANT),
                    sa.Column("amount", sa.Numeric(18, 4)), sa.Column("at", mssql.DATETIMEOFFSET),
                    source_type="mssql")
    decisions = {d["column"]: (d["decision"], d["landed_type"]) for d in plan.records()}
    assert decisions == {"id": ("exact", "integer"), "v": ("refused", "-"), "amount": ("exact", "decimal(18,4)"),
                         "at": ("exact", "timestamp with time zone")}
    money = plan_for(mssql.dialect(), sa.Column("m", mssql.MONEY), source_type="mssql").records()[0]
    assert (money["decision"], money["landed_type"]) == ("converted", "decimal(19,4)")
    with pytest.raises(ColumnTypeError) as raised:
        plan.raise_if_refused()
    message = str(raised.value)
    assert "'v' (sql_variant)" in message and "column_types: {v: text}" in message
    assert "exclude_columns: [v]" in message and raised.value.columns == ["v"]
    chosen = plan_for(mssql.dialect(), sa.Column("v", mssql.SQL_VARIANT), source_type="mssql",
                      overrides={"v": "text"})
    assert chosen.records()[0]["decision"] == "converted"
    assert str(chosen.columns["v"].read(sa.column("v")).compile(dialect=mssql.dialect())) == \
        "CAST(v AS NVARCHAR(max))"


def test_oracle_number_without_precision_lands_as_text_unless_a_decimal_is_chosen() -> None:
    number = sa.Column("n", oracle.NUMBER())
    assert plan_for(oracle.dialect(), number, source_type="oracle").records()[0]["landed_type"] == "text"
    chosen = plan_for(oracle.dialect(), sa.Column("n", oracle.NUMBER()), source_type="oracle",
                      overrides={"n": "decimal(38, 9)"})
    assert chosen.records()[0]["landed_type"] == "decimal(38,9)"


def test_column_types_choices_are_checked() -> None:
    assert parse_column_type("text") == {"data_type": "text"}
    assert parse_column_type(" Decimal(20, 0) ") == {"data_type": "decimal", "precision": 20, "scale": 0}
    for wrong in ("double", "decimal(39,2)", "decimal(10,11)", "decimal(10)"):
        with pytest.raises(ValueError, match="decimal"):
            parse_column_type(wrong)
    with pytest.raises(ColumnTypeError, match=r"column_types names column\(s\) nope that the table does not have"):
        plan_for(mssql.dialect(), sa.Column("id", sa.Integer), source_type="mssql", overrides={"nope": "text"})
