"""Type fidelity on a real MariaDB: one column per awkward MySQL / MariaDB type, loaded with every
backend and compared cell by cell with the source (read by MariaDB in the documented form where
the product changes the type), and a zero date stopping its table with the column named."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from ingestion_core.config.secrets import store_secret
from ingestion_core.config.store import ConfigStore
from ingestion_core.pipeline.runner import run_source

pytestmark = pytest.mark.services

AWKWARD = [
    """CREATE TABLE awkward (
        id INT PRIMARY KEY, d65 DECIMAL(65,30), d38 DECIMAL(38,10), d12 DECIMAL(12,2),
        bit1 BIT(1), bit8 BIT(8), bit64 BIT(64), doc JSON, tm TIME(6), tm0 TIME, yr YEAR,
        en ENUM('a','b','c d'), st SET('x','y','z'), dbl DOUBLE, flt FLOAT,
        ubig BIGINT UNSIGNED, big BIGINT, tiny TINYINT, utiny TINYINT UNSIGNED, medium MEDIUMINT,
        uint INT UNSIGNED, flag BOOLEAN, dt DATETIME(6), ts TIMESTAMP(6) NULL, day DATE,
        vb VARBINARY(10), bl BLOB, txt TEXT, ch CHAR(5), uu UUID, ip6 INET6)""",
    """INSERT INTO awkward VALUES
     (1, 12345678901234567890123456789012345.123456789012345678901234567890,
      9999999999999999999999999999.9999999999, -9999999999.99, b'1', b'10101010',
      b'1111111111111111111111111111111111111111111111111111111111111111',
      '{"big": 123456789012345678901234567890, "dec": 0.1000000000000000000000000001, "n": null}',
      '-838:59:59.000000', '12:34:56', 1901, 'c d', 'x,z', 1.7976931348623157e308, 16777217,
      18446744073709551615, -9223372036854775808, -128, 255, -8388608, 4294967295, 1,
      '1000-01-01 00:00:00.000000', '1970-01-01 00:00:01.000000', '1000-01-01', '', '', '', 'ab',
      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '::1'),
     (2, -0.000000000000000000000000000001, 0, 0, b'0', b'0', b'0', 'null', '838:59:59.999999', '00:00:00',
      2155, 'a', '', -1e-300, 0.1, 0, 9223372036854775807, 127, 0, 8388607, 0, 0,
      '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999', '9999-12-31', x'00ff', x'00',
      'émoji 🙂', 'abcde', NULL, NULL),
     (3, NULL, NULL, NULL, NULL, NULL, NULL, '123456789012345678901234567890', '12:34:56.789', NULL, 0, NULL,
      NULL, 5e-324, 3.4e38, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
      NULL, NULL, NULL),
     (4, NULL, NULL, NULL, NULL, NULL, NULL, '"str"', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
      NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)""",
]
COLUMNS = ["id", "d65", "d38", "d12", "bit1", "bit8", "bit64", "doc", "tm", "tm0", "yr", "en", "st", "dbl", "flt",
           "ubig", "big", "tiny", "utiny", "medium", "uint", "flag", "dt", "ts", "day", "vb", "bl", "txt", "ch",
           "uu", "ip6"]
# the source side in the documented forms
SOURCE_FORMS = {"d65": "CAST(d65 AS CHAR)", "bit1": "CAST(bit1 AS UNSIGNED)", "bit8": "CAST(bit8 AS UNSIGNED)",
                "bit64": "CAST(bit64 AS DECIMAL(20,0))", "tm": "CAST(tm AS CHAR)", "tm0": "CAST(tm0 AS CHAR)",
                "flt": "CAST(flt AS DOUBLE)", "ubig": "CAST(ubig AS DECIMAL(20,0))", "uu": "CAST(uu AS CHAR)",
                "ip6": "CAST(ip6 AS CHAR)"}
LANDED_TYPES = {
    "id": "INTEGER", "d65": "VARCHAR", "d38": "DECIMAL(38,10)", "d12": "DECIMAL(12,2)", "bit1": "BIGINT",
    "bit8": "BIGINT", "bit64": "DECIMAL(20,0)", "doc": "VARCHAR", "tm": "VARCHAR", "tm0": "VARCHAR",
    "yr": "SMALLINT", "en": "VARCHAR", "st": "VARCHAR", "dbl": "DOUBLE", "flt": "DOUBLE", "ubig": "DECIMAL(20,0)",
    "big": "BIGINT", "tiny": "TINYINT", "utiny": "SMALLINT", "medium": "INTEGER", "uint": "BIGINT",
    "flag": "TINYINT", "dt": "TIMESTAMP", "ts": "TIMESTAMP", "day": "DATE", "vb": "BLOB", "bl": "BLOB",
    "txt": "VARCHAR", "ch": "VARCHAR", "uu": "VARCHAR", "ip6": "VARCHAR",
}


def write_source(project: Path, db, tables: str) -> object:
    store_secret(f"${{secrets.{db.name}.password}}", db.password)
    (project / "configs" / "sources" / "maria.yaml").write_text(
        f"name: maria\nowner: data-ops\nsource:\n  type: mysql\n  host: {db.host}\n  port: {db.port}\n"
        f"  database: {db.name}\n  username: {db.user}\n  password: '${{secrets.{db.name}.password}}'\n"
        f"retries: {{attempts: 1}}\ntables:\n{tables}")
    return ConfigStore().load_source("maria").config


def landed(project: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(project / ".ingest" / "local_duckdb.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def cell(value: object) -> object:
    if isinstance(value, float):
        return ("float", "nan") if math.isnan(value) else ("float", value, math.copysign(1.0, value))
    return value


# Server settings that change what a session reads (issue 14): TIMESTAMP values are printed in the
# session's time zone, CHAR values padded to their length. The loader sets its own session at connect.
HOSTILE_GLOBALS = {"time_zone": "'+09:00'", "sql_mode": "CONCAT(@@global.sql_mode, ',PAD_CHAR_TO_FULL_LENGTH')"}
UTC_SESSION = "SET SESSION time_zone = '+00:00', sql_mode = REPLACE(@@sql_mode, 'PAD_CHAR_TO_FULL_LENGTH', '')"


@contextlib.contextmanager
def hostile_globals(db) -> Iterator[None]:
    """Every new session of the server in Tokyo time with padded CHARs, restored afterwards."""
    before = dict(zip(HOSTILE_GLOBALS, db.execute(f"SELECT {', '.join('@@global.' + n for n in HOSTILE_GLOBALS)}")[0],
                      strict=True))
    try:
        for name, value in HOSTILE_GLOBALS.items():
            db.execute(f"SET GLOBAL {name} = {value}")
        yield
    finally:
        for name, value in before.items():
            db.execute(f"SET GLOBAL {name} = %s", params=(value,))


def source_rows(db, sql: str) -> list[tuple]:
    """The source side, read in UTC without padding whatever the server's defaults."""
    connection = db.connect(autocommit=True)
    try:
        with connection.cursor() as cursor:
            cursor.execute(UTC_SESSION)
            cursor.execute(sql)
            return [tuple(cell(v) for v in row) for row in cursor.fetchall()]
    finally:
        connection.close()


@pytest.mark.parametrize("session", ["server defaults", "hostile server settings"])
@pytest.mark.parametrize("backend", ["auto", "pyarrow", "connectorx", "sqlalchemy"])
def test_awkward_types_land_exactly_or_in_their_documented_form(ingest_env: Path, mariadb_db, backend: str,
                                                                session: str) -> None:
    for statement in AWKWARD:
        mariadb_db.execute(statement)
    hostile = session != "server defaults"
    with hostile_globals(mariadb_db) if hostile else contextlib.nullcontext():
        record = run_source(write_source(ingest_env, mariadb_db, f"  - {{name: awkward, backend: {backend}}}\n"),
                            actor="ana")
    result = record.tables[0]
    assert record.status == "success", result.error

    select = ", ".join(SOURCE_FORMS.get(c, c) for c in COLUMNS)
    expected = source_rows(mariadb_db, f"SELECT {select} FROM awkward ORDER BY id")
    actual = [tuple(cell(v) for v in row)
              for row in landed(ingest_env, f"SELECT {', '.join(COLUMNS)} FROM maria.awkward ORDER BY id")]
    for want, got in zip(expected, actual, strict=True):
        for name, a, b in zip(COLUMNS, want, got, strict=True):
            assert a == b, f"{backend}: column {name} of row {want[0]}: source {a!r}, landed {b!r}"

    types = dict(landed(ingest_env, "SELECT column_name, data_type FROM information_schema.columns "
                                    "WHERE table_name = 'awkward' AND column_name NOT LIKE '\\_dlt%' ESCAPE '\\'"))
    assert types == LANDED_TYPES
    assert actual[0][COLUMNS.index("flt")] == ("float", 16777216.0, 1.0)  # FLOAT 16777217 is stored as 2^24
    assert actual[0][COLUMNS.index("bit64")] == Decimal(2**64 - 1)
    decisions = {d["column"]: d for d in result.type_decisions}
    assert decisions["d65"]["source_type"] == "decimal(65,30)" and decisions["d65"]["landed_type"] == "text"
    assert decisions["tm"]["decision"] == "converted" and "838:59:59" in decisions["tm"]["note"]
    assert decisions["ubig"]["landed_type"] == "decimal(20,0)"
    # connectorx's MySQL reader cannot be told UTC: with a server in another time zone, a table with a
    # TIMESTAMP column is read with pyarrow
    assert result.backend == ("connectorx" if backend == "connectorx" and not hostile else "pyarrow")


def test_a_zero_date_stops_its_table_naming_the_column(ingest_env: Path, mariadb_db) -> None:
    connection = mariadb_db.connect(autocommit=True)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION sql_mode = ''")  # MariaDB accepts zero dates without NO_ZERO_DATE
            cursor.execute("CREATE TABLE legacy (id INT, placed DATETIME)")
            cursor.execute("INSERT INTO legacy VALUES (1, '2024-01-01 10:00:00'), (2, '0000-00-00 00:00:00')")
    finally:
        connection.close()
    record = run_source(write_source(ingest_env, mariadb_db, "  - {name: legacy}\n"), actor="ana")
    error = record.tables[0].error
    assert record.status == "failed" and error.error_class == "ColumnTypeError", error
    assert "column 'placed' (datetime)" in error.message and "0000-00-00" in error.message
    assert "column_types: {placed: text}" in error.message and "exclude_columns: [placed]" in error.message


@pytest.mark.parametrize("backend", ["pyarrow", "connectorx"])
def test_column_types_land_a_zero_date_as_text_and_a_wide_decimal_as_decimal(
        ingest_env: Path, mariadb_db, backend: str) -> None:
    connection = mariadb_db.connect(autocommit=True)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION sql_mode = ''")
            cursor.execute("CREATE TABLE legacy (id INT, placed DATETIME, amount DECIMAL(65,30))")
            cursor.execute("INSERT INTO legacy VALUES (1, '2024-01-01 10:00:00', "
                           "-12345678.000000000000000000000000000001), (2, '0000-00-00 00:00:00', NULL)")
    finally:
        connection.close()
    config = write_source(ingest_env, mariadb_db, f"  - name: legacy\n    backend: {backend}\n"
                                                  "    column_types: {placed: text, amount: 'decimal(38,30)'}\n")
    record = run_source(config, actor="ana")
    assert record.status == "success", record.tables[0].error
    assert landed(ingest_env, "SELECT id, placed, amount FROM maria.legacy ORDER BY id") == [
        (1, "2024-01-01 10:00:00", Decimal("-12345678.000000000000000000000000000001")),
        (2, "0000-00-00 00:00:00", None)]
    decisions = {d["column"]: (d["decision"], d["landed_type"]) for d in record.tables[0].type_decisions}
    assert decisions == {"id": ("exact", "integer"), "placed": ("converted", "text"),
                         "amount": ("converted", "decimal(38,30)")}


def test_the_loaders_sessions_read_in_utc_without_padding_whatever_the_server_defaults(
        ingest_env: Path, mariadb_db) -> None:
    """The engine behind reads, discovery and the connection test sets its own session."""
    import sqlalchemy as sa

    from ingestion_core.engine import sources
    from ingestion_core.engine.sources.sql import create_engine

    mariadb_db.execute("CREATE TABLE calm (id INT)")
    config = write_source(ingest_env, mariadb_db, "  - {name: calm}\n")
    with hostile_globals(mariadb_db):
        assert mariadb_db.execute("SELECT @@session.time_zone")[0] == ("+09:00",)
        engine = create_engine(config)
        try:
            with engine.connect() as connection:
                zone, mode = connection.execute(sa.text("SELECT @@session.time_zone, @@session.sql_mode")).one()
        finally:
            engine.dispose()
        assert sources.test_connection(config).ok
    assert zone == "+00:00" and "PAD_CHAR_TO_FULL_LENGTH" not in mode
