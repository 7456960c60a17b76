"""Type fidelity on a real PostgreSQL: a table with one column per awkward type, loaded with every
backend and compared cell by cell with the source. Where the product changes a type, the source
side is read in the documented lossless form, computed by PostgreSQL itself (interval with
``intervalstyle = iso_8601``, money::numeric, json::text...). Values no reader can carry stop the
load with a message naming the column and the choices."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from ingestion_core.config.secrets import store_secret
from ingestion_core.config.store import ConfigStore
from ingestion_core.pipeline.runner import preview_source, run_source

pytestmark = pytest.mark.services

AWKWARD = r"""
CREATE TABLE awkward (
    id integer PRIMARY KEY, sm smallint, big bigint,
    iv interval, n numeric, n38 numeric(38,10), n50 numeric(50,20), n122 numeric(12,2),
    m money, tz timetz, t time(6), j json, jb jsonb,
    r real, d double precision, b bytea, u uuid, ia integer[], ta text[], ip inet, net cidr,
    bits bit(4), x xml, ts timestamp, tstz timestamptz, day date, label text, code char(5), flag boolean
);
INSERT INTO awkward VALUES
 (1, -32768, -9223372036854775808, '1 year 2 mons 3 days 04:05:06.789', 1e40,
  9999999999999999999999999999.9999999999, 123456789012345678901234567890.12345678901234567890, 9999999999.99,
  '-1234.50', '12:34:56.123456+05:30', '23:59:59.999999',
  '{"big": 123456789012345678901234567890, "dec": 0.1000000000000000000000000001, "n": null}',
  '{"big": 123456789012345678901234567890, "dec": 0.1000000000000000000000000001}',
  'NaN', 'Infinity', '', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{1,2,NULL}', '{"a","b c",NULL}',
  '192.168.0.1', '10.0.0.0/8', B'1010', '<a>x</a>', '0001-01-01 00:00:00', '9999-12-31 23:59:59.999999+00',
  '0001-01-01', 'emoji 🙂 and ''quotes''', 'ab', true),
 (2, 32767, 9223372036854775807, '-1 year -2 mons +3 days -04:05:06.5', 1e-40,
  -9999999999999999999999999999.9999999999, -1, -9999999999.99,
  '92233720368547758.07', '00:00:00-12', '00:00:00', 'null', '"just a string"',
  '-Infinity', '-0.0', '\x00ff', NULL, '{}', '{}', '::1', '::/0', B'0000', NULL,
  '9999-12-31 23:59:59.999999', '0001-01-01 00:00:00+00', '9999-12-31', '', '', false),
 (3, 0, 0, '0', 'NaN', 0.0000000001, 0, 0, '-92233720368547758.08', '23:59:59.999999+14:59', NULL,
  '123456789012345678901234567890', '1e400', 'Infinity', 'NaN', NULL, NULL, '{{1,2},{3,4}}', NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, NULL, NULL, '1 mon -30 days 100:00:00', 12345678901234567890.123456789012345678901234567890, NULL, NULL,
  NULL, 0, NULL, NULL, '[1, 2.50, "x"]', 'true', '-0.0', 5e-324, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 3.4e38, 1.7976931348623157e308,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
"""
# The source side of the comparison: each column in the form the product documents for it.
EXPECTED_SQL = """
SELECT id, sm, big, iv::text, n::text, n38, n50::text, n122, m::numeric, tz::text, t, j::text, jb::text,
       r::float8, d, b, u::text, array_to_json(ia)::text, array_to_json(ta)::text, ip, net::text, bits::text,
       x::text, ts, tstz, day, label, code, flag
FROM awkward ORDER BY id
"""
LANDED_SQL = ("SELECT id, sm, big, iv, n, n38, n50, n122, m, tz, t, j, jb, r, d, b, u, ia, ta, ip, net, bits, x, "
              "ts, tstz, day, label, code, flag FROM pg.awkward ORDER BY id")
LANDED_TYPES = {
    "id": "INTEGER", "sm": "SMALLINT", "big": "BIGINT", "iv": "VARCHAR", "n": "VARCHAR", "n38": "DECIMAL(38,10)",
    "n50": "VARCHAR", "n122": "DECIMAL(12,2)", "m": "DECIMAL(19,2)", "tz": "VARCHAR", "t": "TIME", "j": "VARCHAR",
    "jb": "VARCHAR", "r": "DOUBLE", "d": "DOUBLE", "b": "BLOB", "u": "VARCHAR", "ia": "VARCHAR", "ta": "VARCHAR",
    "ip": "VARCHAR", "net": "VARCHAR", "bits": "VARCHAR", "x": "VARCHAR", "ts": "TIMESTAMP",
    "tstz": "TIMESTAMP WITH TIME ZONE", "day": "DATE", "label": "VARCHAR", "code": "VARCHAR", "flag": "BOOLEAN",
}
CONVERTED = {"iv", "n", "n50", "m", "tz", "j", "jb", "u", "ia", "ta", "ip", "net", "bits", "x"}


def write_source(project: Path, db, tables: str, parallel: int = 2, defaults: str = "{}") -> object:
    store_secret(f"${{secrets.{db.name}.password}}", db.password)
    (project / "configs" / "sources" / "pg.yaml").write_text(
        f"name: pg\nowner: data-ops\nsource:\n  type: postgres\n  host: {db.host}\n  port: {db.port}\n"
        f"  database: {db.name}\n  username: {db.user}\n  password: '${{secrets.{db.name}.password}}'\n"
        f"retries: {{attempts: 1}}\nworkers: {{tables_in_parallel: {parallel}}}\ndefaults: {defaults}\n"
        f"tables:\n{tables}")
    return ConfigStore().load_source("pg").config


def landed(project: Path, sql: str, database: str = "local_duckdb") -> list[tuple]:
    with duckdb.connect(str(project / ".ingest" / f"{database}.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def cell(value: object) -> object:
    """Comparable form: NaN equal to NaN, -0.0 unequal to 0.0, instants in UTC, bytes as bytes."""
    if isinstance(value, float):
        return ("float", "nan") if math.isnan(value) else ("float", value, math.copysign(1.0, value))
    if isinstance(value, dt.datetime) and value.tzinfo:
        return value.astimezone(dt.UTC)
    if isinstance(value, memoryview):
        return bytes(value)
    return value


# Session settings a role or database may carry that change how the server prints values (issue 14):
# the loader sets its own at connect, so these land exactly what the server defaults land.
HOSTILE_SESSION = {"role": {"TimeZone": "Asia/Tokyo", "IntervalStyle": "sql_standard", "DateStyle": "SQL, DMY"},
                   "database": {"extra_float_digits": "0"}}


def hostile_session(db) -> None:
    """``ALTER ROLE <user> IN DATABASE`` and ``ALTER DATABASE`` settings, scoped to the test's database."""
    for name, value in HOSTILE_SESSION["role"].items():
        db.execute(f"ALTER ROLE \"{db.user}\" IN DATABASE \"{db.name}\" SET {name} = '{value}'")
    for name, value in HOSTILE_SESSION["database"].items():
        db.execute(f"ALTER DATABASE \"{db.name}\" SET {name} = '{value}'")


def source_rows(db) -> list[tuple]:
    connection = db.connect()
    try:
        with connection.cursor() as cursor:  # the reading side sets its own session, whatever the role's
            cursor.execute("SET TimeZone = 'UTC'; SET extra_float_digits = 3; SET DateStyle = 'ISO'")
            cursor.execute("SET intervalstyle = 'iso_8601'")
            cursor.execute(EXPECTED_SQL)
            return [tuple(cell(v) for v in row) for row in cursor.fetchall()]
    finally:
        connection.close()


@pytest.mark.parametrize("session", ["server defaults", "hostile role and database settings"])
@pytest.mark.parametrize("backend", ["auto", "pyarrow", "connectorx", "sqlalchemy"])
def test_awkward_types_land_exactly_or_in_their_documented_form(ingest_env: Path, postgres_db, backend: str,
                                                                session: str) -> None:
    postgres_db.execute(AWKWARD)
    if session != "server defaults":
        hostile_session(postgres_db)
    config = write_source(ingest_env, postgres_db, f"  - {{name: awkward, mode: full, backend: {backend}}}\n")
    record = run_source(config, actor="ana")
    result = record.tables[0]
    assert record.status == "success", result.error

    expected = source_rows(postgres_db)
    actual = [tuple(cell(v) for v in row) for row in landed(ingest_env, LANDED_SQL)]
    columns = LANDED_SQL.split("SELECT ")[1].split(" FROM")[0].split(", ")
    for want, got in zip(expected, actual, strict=True):
        for name, a, b in zip(columns, want, got, strict=True):
            assert a == b, f"{backend}: column {name} of row {want[0]}: source {a!r}, landed {b!r}"

    types = dict(landed(ingest_env, "SELECT column_name, data_type FROM information_schema.columns "
                                    "WHERE table_name = 'awkward' AND column_name NOT LIKE '\\_dlt%' ESCAPE '\\'"))
    assert types == LANDED_TYPES
    decisions = {d["column"]: d for d in result.type_decisions}
    assert {c for c, d in decisions.items() if d["decision"] == "converted"} == CONVERTED
    assert decisions["iv"]["landed_type"] == "text" and "ISO-8601" in decisions["iv"]["note"]
    assert decisions["m"]["landed_type"] == "decimal(19,2)"
    assert decisions["sm"] == {"column": "sm", "source_type": "smallint", "landed_type": "smallint",
                               "decision": "exact", "note": "integer width kept"}
    # auto: connectorx would have to convert numeric(38,10) in Arrow, so pyarrow reads the table
    assert result.backend == {"connectorx": "connectorx"}.get(backend, "pyarrow")


SESSION_SQL = ("SELECT current_setting('TimeZone') AS zone, current_setting('extra_float_digits') AS digits, "
               "current_setting('IntervalStyle') AS intervals, current_setting('DateStyle') AS dates")


def test_every_connection_the_loader_opens_has_its_own_session_settings(ingest_env: Path, postgres_db) -> None:
    """The engine behind reads, discovery and the connection test, and the URL connectorx reads
    with, override the role's and the database's settings."""
    import connectorx

    from ingestion_core.engine import sources
    from ingestion_core.engine.sources.sql import create_engine
    from ingestion_core.onboarding import discovery
    from ingestion_core.typemap.fidelity import connectorx_url

    hostile_session(postgres_db)
    assert postgres_db.execute(SESSION_SQL)[0][:3] == ("Asia/Tokyo", "0", "sql_standard")  # psycopg2 sets ISO dates
    postgres_db.execute("CREATE TABLE calm (id int)")
    config = write_source(ingest_env, postgres_db, "  - {name: calm}\n")
    engine = create_engine(config)
    try:
        with engine.connect() as connection:
            zone, digits, intervals, dates = connection.execute(sa.text(SESSION_SQL)).one()
        cx_row = connectorx.read_sql(connectorx_url(engine), SESSION_SQL, return_type="arrow").to_pylist()[0]
    finally:
        engine.dispose()
    assert (zone, digits, intervals) == ("UTC", "3", "iso_8601") and dates.startswith("ISO")
    assert (cx_row["zone"], cx_row["digits"], cx_row["intervals"]) == ("UTC", "3", "iso_8601")
    assert cx_row["dates"].startswith("ISO")
    assert sources.test_connection(config).ok
    assert [t.name for t in discovery.discover_tables(config, schema="public")] == ["calm"]


def test_preview_shows_the_decision_for_every_column(ingest_env: Path, postgres_db) -> None:
    postgres_db.execute(AWKWARD)
    config = write_source(ingest_env, postgres_db, "  - {name: awkward, mode: full}\n")
    table = preview_source(config, actor="ana", limit=2).as_json()["tables"][0]
    assert table["rows"] == 2
    decisions = {d["column"]: d for d in table["type_decisions"]}
    assert set(decisions) == set(LANDED_TYPES)
    assert decisions["jb"]["source_type"] == "jsonb" and decisions["jb"]["decision"] == "converted"
    assert decisions["d"]["decision"] == "exact" and "NaN" in decisions["d"]["note"]
    assert {s["iv"] for s in table["sample"]} == {"P1Y2M3DT4H5M6.789S", "P-1Y-2M3DT-4H-5M-6.5S"}


VALUES_NO_READER_CARRIES = [
    ("numeric(10,2)", "'NaN'", "holds NaN"),
    ("timestamp", "'infinity'", "holds infinity"),
    ("timestamptz", "'-infinity'", "holds -infinity"),
    ("date", "'0044-03-15 BC'", "holds 0044-03-15 BC"),
    ("timestamp", "'20000-01-01'", "holds 20000-01-01"),
    ("time", "'24:00:00'", "holds 24:00:00"),
]


def test_a_value_no_reader_carries_stops_its_table_naming_the_column(ingest_env: Path, postgres_db) -> None:
    tables = ""
    for index, (column_type, value, _) in enumerate(VALUES_NO_READER_CARRIES):
        postgres_db.execute(f"CREATE TABLE odd{index} (id int, fine text, bad {column_type}); "
                            f"INSERT INTO odd{index} VALUES (1, 'a', NULL), (2, 'b', {value})")
        tables += f"  - {{name: odd{index}, mode: full, backend: {('pyarrow', 'connectorx')[index % 2]}}}\n"
    postgres_db.execute("CREATE TABLE calm (id int); INSERT INTO calm VALUES (1)")
    config = write_source(ingest_env, postgres_db, tables + "  - {name: calm, mode: full}\n", parallel=8)
    record = run_source(config, actor="ana")
    *odd, calm = record.tables
    assert (record.status, calm.status) == ("partial", "success")
    for result, (column_type, _, said) in zip(odd, VALUES_NO_READER_CARRIES, strict=True):
        message = result.error.message
        assert result.error.error_class == "ColumnTypeError", (column_type, message)
        assert "column bad " in message and said in message, message
        assert "column_types: {bad: text}" in message and "exclude_columns: [bad]" in message
        assert {d["column"]: d["decision"] for d in result.type_decisions}["bad"] == "exact"


def test_the_choices_in_the_message_work(ingest_env: Path, postgres_db) -> None:
    """column_types in YAML lands a column refused by default (an infinite timestamp) as text and a
    numeric without precision (text by default) as an exact decimal, with every backend."""
    postgres_db.execute("CREATE TABLE odd (id int, seen timestamp, n numeric, dropped numeric(10,2)); "
                        "INSERT INTO odd VALUES (1, 'infinity', 1.5, 'NaN'), (2, '2024-02-29 12:00', 2.25, 1)")
    refused = run_source(write_source(ingest_env, postgres_db, "  - {name: odd, exclude_columns: [dropped]}\n"),
                         actor="ana").tables[0]
    assert refused.error.error_class == "ColumnTypeError" and "column seen holds infinity" in refused.error.message
    for backend in ("pyarrow", "connectorx", "sqlalchemy"):
        config = write_source(ingest_env, postgres_db,
                              f"  - name: odd\n    backend: {backend}\n    exclude_columns: [dropped]\n"
                              f"    column_types: {{seen: text, n: 'Decimal(38, 2)'}}\n")
        assert config.tables[0].column_types == {"seen": "text", "n": "decimal(38,2)"}
        record = run_source(config, actor="ana")
        assert record.status == "success", record.tables[0].error
        assert landed(ingest_env, "SELECT id, seen, n FROM pg.odd ORDER BY id") == [
            (1, "infinity", Decimal("1.50")), (2, "2024-02-29 12:00:00", Decimal("2.25"))]
        types = dict(landed(ingest_env, "SELECT column_name, data_type FROM information_schema.columns "
                                        "WHERE table_name = 'odd' AND column_name IN ('seen', 'n')"))
        assert types == {"seen": "VARCHAR", "n": "DECIMAL(38,2)"}
        decisions = {d["column"]: d for d in record.tables[0].type_decisions}
        assert (decisions["n"]["landed_type"], decisions["n"]["decision"]) == ("decimal(38,2)", "converted")
        assert decisions["seen"]["note"].startswith("column_types: text") and "dropped" not in decisions


def test_the_preview_shows_the_column_types_choice(ingest_env: Path, postgres_db) -> None:
    postgres_db.execute("CREATE TABLE odd (id int, seen timestamp, n numeric); "
                        "INSERT INTO odd VALUES (1, 'infinity', 1.5), (2, '2024-02-29 12:00', 2.25)")
    default = preview_source(write_source(ingest_env, postgres_db, "  - {name: odd}\n"), actor="ana", limit=5)
    decisions = {d["column"]: d for d in default.as_json()["tables"][0]["type_decisions"]}
    assert (decisions["n"]["decision"], decisions["n"]["landed_type"]) == ("converted", "text")
    assert (decisions["seen"]["decision"], decisions["seen"]["landed_type"]) == ("exact", "timestamp")
    config = write_source(ingest_env, postgres_db,
                          "  - {name: odd, column_types: {seen: text, n: 'decimal(12,4)'}}\n")
    table = preview_source(config, actor="ana", limit=5).as_json()["tables"][0]
    decisions = {d["column"]: d for d in table["type_decisions"]}
    assert decisions["n"] == {"column": "n", "source_type": "numeric", "landed_type": "decimal(12,4)",
                              "decision": "converted", "note": "column_types: decimal(12,4) (a value that does not "
                              "fit stops the load, naming the column)"}
    assert (decisions["seen"]["decision"], decisions["seen"]["landed_type"]) == ("converted", "text")
    assert {c["name"]: c["type"] for c in table["columns"]}["n"] == "decimal(12,4)"
    assert sorted(row["seen"] for row in table["sample"]) == ["2024-02-29 12:00:00", "infinity"]


def test_a_column_types_entry_for_a_column_the_table_lacks_is_a_clear_error(ingest_env: Path, postgres_db) -> None:
    postgres_db.execute("CREATE TABLE odd (id int, n numeric); INSERT INTO odd VALUES (1, 1.5)")
    config = write_source(ingest_env, postgres_db, "  - {name: odd, column_types: {amount: text}}\n")
    for record in (run_source(config, actor="ana"), preview_source(config, actor="ana", limit=5).record):
        error = record.tables[0].error
        assert error.error_class == "ColumnTypeError"
        assert "column_types names column(s) amount that the table does not have; its columns are id, n" in \
            error.message
    assert not (ingest_env / ".ingest" / "local_duckdb.duckdb").exists()  # refused before reading a row


@pytest.mark.parametrize("backend", ["pyarrow", "connectorx"])
def test_a_decimal_choice_too_narrow_for_the_data_names_the_column(ingest_env: Path, postgres_db, backend: str) -> None:
    postgres_db.execute("CREATE TABLE odd (id int, n numeric); INSERT INTO odd VALUES (1, 1.5), (2, 1.234)")
    config = write_source(ingest_env, postgres_db,
                          f"  - {{name: odd, backend: {backend}, column_types: {{n: 'decimal(38,2)'}}}}\n")
    error = run_source(config, actor="ana").tables[0].error
    assert error.error_class == "ColumnTypeError", error.message
    assert "column 'n' (numeric)" in error.message and "decimal(38,2)" in error.message
    assert "column_types: {n: text}" in error.message


def cursor_with_spaces(project: Path, db, reconcile: bool = False) -> tuple[object, object]:
    """Two incremental runs on a cursor whose name has a space (a quoted identifier in PostgreSQL)."""
    db.execute('CREATE TABLE "Order Events" (id int, "updated at" timestamp, "Net $" numeric(10,2)); '
               "INSERT INTO \"Order Events\" VALUES (1, '2024-01-01', 1.5), (2, '2024-01-02', 2.5)")
    config = write_source(project, db, "  - name: Order Events\n    mode: incremental\n    cursor: updated at\n"
                                       "    initial_value: '2024-01-01'\n" + ("    reconcile: true\n" * reconcile))
    first = run_source(config, actor="ana")
    assert first.status == "success", first.tables[0].error
    db.execute("INSERT INTO \"Order Events\" VALUES (3, '2024-01-03', 3.5), (4, '2023-12-31', 9)")
    return first, run_source(config, actor="ana")


def test_a_cursor_whose_name_has_spaces_loads_incrementally(ingest_env: Path, postgres_db) -> None:
    first, second = cursor_with_spaces(ingest_env, postgres_db)
    assert (first.tables[0].rows, second.tables[0].rows) == (2, 1)
    assert second.tables[0].cursor["last_value"].startswith("2024-01-03")
    assert landed(ingest_env, "SELECT id, updated_at, netx FROM pg.order_events ORDER BY id") == [
        (1, dt.datetime(2024, 1, 1), Decimal("1.50")), (2, dt.datetime(2024, 1, 2), Decimal("2.50")),
        (3, dt.datetime(2024, 1, 3), Decimal("3.50"))]


def test_reconcile_counts_the_window_of_a_cursor_whose_name_has_spaces(ingest_env: Path, postgres_db) -> None:
    _, second = cursor_with_spaces(ingest_env, postgres_db, reconcile=True)
    assert second.tables[0].cursor["column"] == "updated at"
    assert [(q["status"], q["observed"]) for q in second.tables[0].quality] == [("pass", 1)]


def test_a_cursor_that_would_not_sort_like_the_source_is_refused_up_front(ingest_env: Path, postgres_db) -> None:
    postgres_db.execute("CREATE TABLE events (id int, version numeric, at timestamp); "
                        "INSERT INTO events VALUES (1, 9, '2024-01-01'), (2, 10, '2024-01-02')")
    config = write_source(ingest_env, postgres_db, "  - {name: events, mode: incremental, cursor: version}\n")
    record = run_source(config, actor="ana")
    result = record.tables[0]
    assert result.status == "failed" and result.error.error_class == "ColumnTypeError"
    assert "cursor 'version' (numeric) would land as text" in result.error.message
    assert {d["column"]: d["decision"] for d in result.type_decisions} == {
        "id": "exact", "version": "refused", "at": "exact"}
    assert not (ingest_env / ".ingest" / "local_duckdb.duckdb").exists()  # refused before reading a row


def test_a_connectorx_panic_falls_back_to_pyarrow(ingest_env: Path, postgres_db, monkeypatch) -> None:
    """connectorx panics (a BaseException) on cidr read as is; the plan reads it as text, so
    a rule reading it raw is planted to make it panic for real."""
    import ingestion_core.engine.sources.sql as sql
    from ingestion_core.typemap import fidelity as type_fidelity

    def raw_cidr(info: type_fidelity.ColumnInfo) -> type_fidelity.ColumnPlan | None:
        return info.plan("exact", {"data_type": "text"}, "planted") if info.declared == "cidr" else None

    monkeypatch.setitem(type_fidelity.TYPE_RULES, "postgres", [raw_cidr, *type_fidelity.TYPE_RULES["postgres"]])
    monkeypatch.setattr(sql, "choose_backend", lambda *args: "connectorx")  # as if auto had picked it
    postgres_db.execute("CREATE TABLE nets (id int, net cidr); INSERT INTO nets VALUES (1, '10.0.0.0/8')")
    record = run_source(write_source(ingest_env, postgres_db, "  - {name: nets, mode: full}\n"), actor="ana")
    assert record.status == "success", record.tables[0].error
    assert (record.tables[0].backend, record.tables[0].attempts) == ("pyarrow", 2)
    assert landed(ingest_env, "SELECT net FROM pg.nets") == [("10.0.0.0/8",)]


def test_type_decisions_and_the_landed_schema_name_each_type_alike(ingest_env: Path, postgres_db) -> None:
    """``integer -> integer (exact)`` must not sit next to a landed schema saying ``bigint``."""
    postgres_db.execute("CREATE TABLE widths (id integer PRIMARY KEY, sm smallint, big bigint, n numeric(12,2), "
                        "tstz timestamptz); INSERT INTO widths VALUES (1, 2, 3, 4.5, now())")
    record = run_source(write_source(ingest_env, postgres_db, "  - {name: widths}\n"), actor="ana")
    table = record.tables[0]
    decided = {d["column"]: d["landed_type"] for d in table.type_decisions}
    landed = {c["name"]: c["type"] for c in table.columns}
    assert decided["id"] == "integer" and decided["sm"] == "smallint" and decided["big"] == "bigint"
    assert {name: landed[name] for name in decided} == decided
