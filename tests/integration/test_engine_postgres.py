"""The engine against real PostgreSQL and MariaDB servers started by the tests: backends and
type round trips, LIMIT pushed to the server, incremental cursors, and the bad cases (server
down, wrong password) as clear recorded errors."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from ingestion_core.config.secrets import store_secret
from ingestion_core.config.store import ConfigStore
from ingestion_core.engine.sources import test_connection as check_connection
from ingestion_core.pipeline.runner import preview_source, run_source

TYPED_TABLE = """
CREATE TABLE typed (
    id bigint PRIMARY KEY,
    amount numeric(12, 2),
    ratio double precision,
    flag boolean,
    label text,
    code varchar(20),
    day date,
    at_local timestamp,
    at_utc timestamptz,
    updated_at timestamp NOT NULL
);
INSERT INTO typed VALUES
    (1, 1234567890.12, 0.5, true, 'plain', 'A1', '2024-01-31', '2024-01-31 12:34:56.123456',
     '2024-01-31 12:34:56.123456+02', '2024-01-01 00:00:00'),
    (2, -0.01, -1e300, false, 'emoji 🙂 and ''quotes''', '', '0001-01-01', '9999-12-31 23:59:59',
     '1970-01-01 00:00:00+00', '2024-01-02 00:00:00'),
    (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '2024-01-03 00:00:00'),
    (9223372036854775807, 9999999999.99, 1e-300, true, repeat('x', 100000), 'Z', '2024-02-29',
     '2000-01-01 00:00:00', '2038-01-19 03:14:07+00', '2024-01-04 00:00:00');
"""
COLUMNS = "id, amount, ratio, flag, label, code, day, at_local, at_utc"


def write_source(project: Path, db, tables: str, kind: str = "postgres", password_ref: str | None = None) -> object:
    ref = password_ref or f"${{secrets.{db.name}.password}}"
    if password_ref is None:
        store_secret(ref, db.password)
    (project / "configs" / "sources" / "pg.yaml").write_text(
        f"name: pg\nowner: data-ops\nsource:\n  type: {kind}\n  host: {db.host}\n  port: {db.port}\n"
        f"  database: {db.name}\n  username: {db.user}\n  password: '{ref}'\n  connect_timeout_seconds: 3\n"
        f"retries: {{attempts: 2, backoff_seconds: 0}}\ntables:\n{tables}"
    )
    return ConfigStore().load_source("pg").config


def landed(project: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(project / ".ingest" / "local_duckdb.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def normalise(row: tuple) -> tuple:
    """Timestamps with zone compared as UTC instants."""
    return tuple(v.astimezone(dt.UTC) if isinstance(v, dt.datetime) and v.tzinfo else v for v in row)


@pytest.mark.parametrize("backend", ["auto", "pyarrow", "connectorx", "sqlalchemy"])
def test_every_column_round_trips_exactly(ingest_env: Path, postgres_db, backend: str) -> None:
    postgres_db.execute(TYPED_TABLE)
    config = write_source(ingest_env, postgres_db, f"  - {{name: typed, mode: full, backend: {backend}}}\n")
    record = run_source(config, actor="ana")
    assert record.status == "success", record.error
    expected = [normalise(r) for r in postgres_db.execute(f"SELECT {COLUMNS} FROM typed ORDER BY id")]
    actual = [normalise(r) for r in landed(ingest_env, f"SELECT {COLUMNS} FROM pg.typed ORDER BY id")]
    assert actual == expected
    assert actual[0][1] == Decimal("1234567890.12")
    if backend == "auto":
        assert record.tables[0].backend == "connectorx"  # every column is one connectorx reads exactly


def test_auto_avoids_connectorx_for_types_it_breaks(ingest_env: Path, postgres_db) -> None:
    # numeric(30, 10) at its limits: connectorx fails on it (BASELINES.md); pyarrow keeps it exact
    postgres_db.execute("CREATE TABLE wide (id int, n numeric(30, 10), m money); INSERT INTO wide VALUES "
                        "(1, 12345678901234567890.1234567891, 12.5)")
    config = write_source(ingest_env, postgres_db, "  - {name: wide, mode: full, include_columns: [id, n]}\n")
    record = run_source(config, actor="ana")
    assert record.status == "success", record.error
    assert record.tables[0].backend == "pyarrow"
    assert landed(ingest_env, "SELECT n FROM pg.wide") == [(Decimal("12345678901234567890.1234567891"),)]


def test_preview_pushes_limit_to_the_server(ingest_env: Path, postgres_db) -> None:
    postgres_db.execute("CREATE TABLE big AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 50000) g")
    config = write_source(ingest_env, postgres_db, "  - {name: big, mode: full}\n")
    result = preview_source(config, actor="ana", limit=100)
    assert result.record.tables[0].rows == 100
    # connectorx reads with COPY (SELECT ... ) TO STDOUT, the other backends with a SELECT
    statements = re.split(r" LOG:  (?:statement|execute [^:]*): ", postgres_db.statement_log())
    reads = [s for s in statements if s.lstrip().startswith(("SELECT", "COPY")) and "FROM big" in s]
    assert reads and all(re.search(r"\bLIMIT\b", s) for s in reads), reads


def test_incremental_on_a_timestamp_cursor(ingest_env: Path, postgres_db) -> None:
    postgres_db.execute(TYPED_TABLE)
    tables = ("  - {name: typed, mode: incremental, cursor: updated_at, initial_value: '2024-01-02'}\n")
    config = write_source(ingest_env, postgres_db, tables)
    assert run_source(config, actor="ana").tables[0].rows == 3  # from 2024-01-02 on
    postgres_db.execute("INSERT INTO typed (id, updated_at) VALUES (10, '2024-03-01 00:00:00')")
    second = run_source(config, actor="ana")
    assert second.tables[0].rows == 1
    assert landed(ingest_env, "SELECT count(*), count(DISTINCT id) FROM pg.typed") == [(4, 4)]


def test_merge_on_a_cursor_reads_only_the_changed_rows(ingest_env: Path, postgres_db) -> None:
    """The cursor's condition reaches the server: the second run reads the 10 changed rows of 1,000
    (issue 18 target 4), and the merge leaves the table equal to the source."""
    postgres_db.execute("CREATE TABLE acc AS SELECT g AS id, g * 2 AS amount, timestamp '2024-01-01' + "
                        "(g || ' seconds')::interval AS updated_at FROM generate_series(1, 1000) g; "
                        "ALTER TABLE acc ADD PRIMARY KEY (id)")
    config = write_source(ingest_env, postgres_db,
                          "  - {name: acc, mode: merge, primary_key: id, cursor: updated_at}\n")
    assert run_source(config, actor="ana").tables[0].rows == 1000
    postgres_db.execute("UPDATE acc SET amount = -amount, updated_at = '2025-01-01' WHERE id % 100 = 7")
    mark = len(postgres_db.statement_log())
    second = run_source(config, actor="ana")
    assert second.status == "success", second.error
    assert second.tables[0].rows == 10
    statements = re.split(r" LOG:  (?:statement|execute [^:]*): ", postgres_db.statement_log()[mark:])
    reads = [s for s in statements if s.lstrip().startswith(("SELECT", "COPY")) and "FROM acc" in s]
    assert reads and all(re.search(r"WHERE acc\.updated_at >= '2024-01-01 00:16:40'", s) for s in reads), reads
    query = "SELECT id, amount, updated_at FROM {} ORDER BY id"
    assert landed(ingest_env, query.format("pg.acc")) == postgres_db.execute(query.format("acc"))


LOOKBACK_CASES = {  # cursor type, the first rows, the late rows: one in the window and one before it
    "timestamptz": ("'2024-03-01 10:30+00'", "'2024-03-01 12:00+00'", "'2024-03-01 11:00+00'", "'2024-03-01 09:59+00'"),
    "date": ("'2024-03-05'", "'2024-03-07'", "'2024-03-06'", "'2024-03-05'"),  # 2h on dates: the day before
}


@pytest.mark.parametrize("backend", ["pyarrow", "connectorx", "sqlalchemy"])
@pytest.mark.parametrize("cursor_type", LOOKBACK_CASES)
def test_lookback_rereads_late_rows_once(ingest_env: Path, postgres_db, cursor_type: str, backend: str) -> None:
    first, last, late, too_old = LOOKBACK_CASES[cursor_type]
    postgres_db.execute(f"CREATE TABLE ev (id int PRIMARY KEY, at {cursor_type} NOT NULL); "
                        f"INSERT INTO ev VALUES (1, {first}), (2, {last})")
    config = write_source(ingest_env, postgres_db, f"  - {{name: ev, mode: incremental, cursor: at, primary_key: id, "
                                                   f"lookback: 2h, backend: {backend}, reconcile: true}}\n")
    assert run_source(config, actor="ana").status == "success"
    postgres_db.execute(f"INSERT INTO ev VALUES (3, {late}), (4, {too_old})")
    second = run_source(config, actor="ana")
    assert second.status == "success", (second.tables[0].error, second.tables[0].quality)
    assert landed(ingest_env, "SELECT id FROM pg.ev ORDER BY id") == [(1,), (2,), (3,)]  # each once, 4 too old


def test_wrong_password_is_a_clear_error_without_the_secret(ingest_env: Path, postgres_db) -> None:
    wrong = "wrong-" + postgres_db.password[::-1]
    store_secret("${secrets.pg.password}", wrong)
    config = write_source(ingest_env, postgres_db, "  - {name: typed, mode: full}\n",
                          password_ref="${secrets.pg.password}")
    record = run_source(config, actor="ana")
    error = record.tables[0].error
    assert record.status == "failed" and record.tables[0].attempts == 1  # auth is not retried
    assert "credentials" in error.hint
    report = check_connection(config)
    assert not report.ok and "credentials" in report.mitigation
    for text in (record.model_dump_json(), Path(record.log_path).read_text(), str(report.as_dict())):
        assert wrong not in text and postgres_db.password not in text


def test_server_down_is_retried_then_recorded(ingest_env: Path, postgres_db) -> None:
    from tests.services import free_port

    config = write_source(ingest_env, postgres_db, "  - {name: typed, mode: full}\n")
    config.source.port = free_port()  # nothing listens there
    record = run_source(config, actor="ana")
    assert record.status == "failed"
    assert record.tables[0].attempts == 2
    assert "cannot be reached" in record.tables[0].error.hint
    assert check_connection(config).ok is False


def test_test_connection_reports_the_server(ingest_env: Path, postgres_db) -> None:
    config = write_source(ingest_env, postgres_db, "  - {name: typed, mode: full}\n")
    report = check_connection(config)
    assert report.ok, report.reason
    assert "PostgreSQL" in report.details["server_version"]


def test_mariadb_round_trip_and_incremental(ingest_env: Path, mariadb_db) -> None:
    mariadb_db.execute(
        "CREATE TABLE items (id BIGINT PRIMARY KEY, price DECIMAL(10,2), name VARCHAR(50), "
        "flag TINYINT(1), made DATE, updated_at DATETIME(6))"
    )
    mariadb_db.execute("INSERT INTO items VALUES (1, 9.99, 'héllo', 1, '2024-01-01', '2024-01-01 10:00:00.5'),"
                       "(2, NULL, NULL, 0, NULL, '2024-01-02 10:00:00')")
    config = write_source(ingest_env, mariadb_db, "  - {name: items, mode: incremental, cursor: updated_at}\n",
                          kind="mysql")
    record = run_source(config, actor="ana")
    assert record.status == "success", record.error
    assert landed(ingest_env, "SELECT id, price, name, made FROM pg.items ORDER BY id") == [
        (1, Decimal("9.99"), "héllo", dt.date(2024, 1, 1)), (2, None, None, None)]
    mariadb_db.execute("INSERT INTO items (id, updated_at) VALUES (3, '2024-02-01 00:00:00')")
    assert run_source(config, actor="ana").tables[0].rows == 1
