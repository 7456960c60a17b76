"""The database servers of tests/services.py work: real servers on loopback, password auth, statement logs,
a fresh database per test."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import TYPE_CHECKING

import psycopg2
import pymysql
import pytest
import sqlalchemy as sa

if TYPE_CHECKING:  # imported at run time by pytest as a plugin (a plain import here would skip assert rewriting)
    from tests.services import Database, MariaDBServer, PostgresServer

# The lead loads tests.services from tests/conftest.py; this keeps the module runnable on its own meanwhile.

pytestmark = pytest.mark.services

_seen: dict[str, list[str]] = {"postgres": [], "mariadb": []}


def _roundtrip(db: Database) -> None:
    db.execute("CREATE TABLE orders (id integer PRIMARY KEY, label varchar(50), amount numeric(12, 2))")
    rows = [(1, "first", Decimal("10.50")), (2, "émoji 🦆", Decimal("-3.25")), (3, None, Decimal("0.00"))]
    for row in rows:
        db.execute("INSERT INTO orders (id, label, amount) VALUES (%s, %s, %s)", row)
    engine = sa.create_engine(db.url)
    try:
        with engine.connect() as conn:
            got = conn.execute(sa.text("SELECT id, label, amount FROM orders ORDER BY id")).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in got] == rows


def _check_fresh(kind: str, db: Database, exists_sql: str) -> None:
    """Across the two parametrized runs: a new name each time, and the previous database is gone."""
    seen = _seen[kind]
    assert db.name not in seen
    for previous in seen:
        assert db.server.execute(exists_sql, None, (previous,)) == []
    assert db.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'leftover'") == [(0,)]
    db.execute("CREATE TABLE leftover (id integer)")
    seen.append(db.name)


def test_free_port_is_bindable() -> None:
    import socket

    from tests.services import free_port

    port = free_port()
    assert 1024 < port < 65536
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


# --------------------------------------------------------------------------- PostgreSQL


def test_postgres_roundtrip_through_sqlalchemy_url(postgres_db: Database) -> None:
    assert postgres_db.url.startswith("postgresql+psycopg2://ingest:")
    _roundtrip(postgres_db)


def test_postgres_password_auth_over_tcp(postgres_server: PostgresServer, postgres_db: Database) -> None:
    conn = psycopg2.connect(host="127.0.0.1", port=postgres_server.port, user=postgres_server.user,
                            password=postgres_server.password, dbname=postgres_db.name)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_user, current_database(), host(inet_server_addr()), "
                        "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)")
            assert cur.fetchone() == (postgres_server.user, postgres_db.name, "127.0.0.1", True)
            cur.execute("SHOW listen_addresses")
            assert cur.fetchone() == ("127.0.0.1",)
            cur.execute("SHOW fsync")
            assert cur.fetchone() == ("off",)
    finally:
        conn.close()
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(host="127.0.0.1", port=postgres_server.port, user=postgres_server.user,
                         password=postgres_server.password + "x", dbname=postgres_db.name)


def test_postgres_statement_log_shows_queries(postgres_server: PostgresServer, postgres_db: Database) -> None:
    marker = f"marker_{secrets.token_hex(6)}"
    engine = sa.create_engine(postgres_db.url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text(f"SELECT '{marker}' AS m LIMIT 7")).scalar() == marker
    finally:
        engine.dispose()
    lines = [line for line in postgres_db.statement_log().splitlines() if marker in line]
    assert len(lines) == 1, postgres_db.statement_log()[-2000:]
    assert f"ingest@{postgres_db.name} LOG:  statement: SELECT '{marker}' AS m LIMIT 7" in lines[0]
    assert postgres_server.password not in postgres_server.statement_log()


def test_postgres_drop_database_with_open_connection(postgres_server: PostgresServer) -> None:
    name = f"t_open_{secrets.token_hex(4)}"
    postgres_server.create_database(name)
    conn = postgres_server.connect(name)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id int)")  # an open transaction holding a lock
    postgres_server.drop_database(name)
    conn.close()
    assert postgres_server.execute("SELECT 1 FROM pg_database WHERE datname = %s", params=(name,)) == []


@pytest.mark.parametrize("run", [1, 2])
def test_postgres_db_is_fresh_per_test(postgres_db: Database, run: int) -> None:
    _check_fresh("postgres", postgres_db, "SELECT 1 FROM pg_database WHERE datname = %s")


# --------------------------------------------------------------------------- MariaDB


def test_mariadb_roundtrip_through_sqlalchemy_url(mariadb_db: Database) -> None:
    assert mariadb_db.url.startswith("mysql+pymysql://ingest:")
    _roundtrip(mariadb_db)


def test_mariadb_password_auth_over_tcp(mariadb_server: MariaDBServer, mariadb_db: Database) -> None:
    conn = pymysql.connect(host="127.0.0.1", port=mariadb_server.port, user=mariadb_server.user,
                           password=mariadb_server.password, database=mariadb_db.name)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_user(), database(), @@bind_address, @@character_set_server")
            assert cur.fetchone() == (f"{mariadb_server.user}@%", mariadb_db.name, "127.0.0.1", "utf8mb4")
    finally:
        conn.close()
    with pytest.raises(pymysql.err.OperationalError) as wrong:
        pymysql.connect(host="127.0.0.1", port=mariadb_server.port, user=mariadb_server.user,
                        password=mariadb_server.password + "x")
    assert wrong.value.args[0] == 1045  # access denied
    with pytest.raises(pymysql.err.OperationalError) as root:
        pymysql.connect(host="127.0.0.1", port=mariadb_server.port, user="root")
    assert root.value.args[0] == 1045  # no password-less root over TCP


def test_mariadb_statement_log_shows_queries(mariadb_server: MariaDBServer, mariadb_db: Database) -> None:
    marker = f"marker_{secrets.token_hex(6)}"
    engine = sa.create_engine(mariadb_db.url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text(f"SELECT '{marker}' AS m LIMIT 7")).scalar() == marker
    finally:
        engine.dispose()
    lines = [line for line in mariadb_db.statement_log().splitlines() if marker in line]
    assert len(lines) == 1, mariadb_db.statement_log()[-2000:]
    assert f"Query\tSELECT '{marker}' AS m LIMIT 7" in lines[0]
    assert mariadb_server.password not in mariadb_server.statement_log()


def test_mariadb_drop_database_with_open_connection(mariadb_server: MariaDBServer) -> None:
    name = f"t_open_{secrets.token_hex(4)}"
    mariadb_server.create_database(name)
    conn = mariadb_server.connect(name)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id int)")
        cur.execute("BEGIN")
        cur.execute("INSERT INTO t VALUES (1)")  # an open transaction holding a metadata lock
    mariadb_server.drop_database(name)
    assert mariadb_server.execute("SHOW DATABASES LIKE %s", params=(name,)) == []


@pytest.mark.parametrize("run", [1, 2])
def test_mariadb_db_is_fresh_per_test(mariadb_db: Database, run: int) -> None:
    _check_fresh("mariadb", mariadb_db, "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s")
