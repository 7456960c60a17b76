"""Discovery for the onboarding forms: tables, columns, keys, estimates and cursor candidates of
real databases; files matching a glob."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ingestion_core.config.models.source_file import parse_source_file
from ingestion_core.config.models.sources import FilesystemSource
from ingestion_core.config.secrets import store_secret
from ingestion_core.onboarding.discovery import discover_tables, list_files, list_schemas


def source(**connection):
    return parse_source_file({"name": "d", "owner": "o", "source": connection, "tables": [{"name": "x"}]})


def test_sqlite_tables_keys_and_cursor_candidates(ingest_env: Path) -> None:
    with sqlite3.connect(ingest_env / "a.sqlite") as con:
        con.execute("CREATE TABLE orders (order_id INTEGER PRIMARY KEY, note TEXT, amount NUMERIC(10,2), "
                    "created_on DATE, updated_at TIMESTAMP)")
        con.execute("CREATE VIEW recent AS SELECT * FROM orders")
        con.executemany("INSERT INTO orders (note) VALUES (?)", [("a",), ("b",)])
    tables = {t.name: t for t in discover_tables(source(type="sqlite", path="a.sqlite"))}
    assert set(tables) == {"orders", "recent"}
    orders = tables["orders"]
    assert orders.primary_key == ["order_id"] and orders.row_estimate == 2
    assert orders.cursor_candidates[:2] == ["updated_at", "created_on"]
    assert [c.name for c in orders.columns] == ["order_id", "note", "amount", "created_on", "updated_at"]


def test_postgres_schemas_tables_and_estimates(ingest_env: Path, postgres_db) -> None:
    postgres_db.execute("CREATE SCHEMA sales; CREATE TABLE sales.orders (id bigint PRIMARY KEY, "
                        "updated_at timestamptz, v text); INSERT INTO sales.orders SELECT g, now(), 'x' "
                        "FROM generate_series(1, 500) g; ANALYZE sales.orders")
    store_secret("${secrets.d.password}", postgres_db.password)
    config = source(type="postgres", host=postgres_db.host, port=postgres_db.port, database=postgres_db.name,
                    username=postgres_db.user, password="${secrets.d.password}")
    assert "sales" in list_schemas(config)
    [orders] = discover_tables(config, schema="sales")
    assert (orders.name, orders.primary_key, orders.row_estimate) == ("orders", ["id"], 500)
    assert orders.cursor_candidates[0] == "updated_at"


def test_files_matching_a_glob(ingest_env: Path) -> None:
    folder = ingest_env / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_text("x\n1\n")
    (folder / "sub" / "b.csv").write_text("x\n1\n2\n")
    (folder / "c.json").write_text("{}")
    files = list_files(FilesystemSource(type="filesystem", bucket_url="in"), "**/*.csv")  # before any table
    assert sorted(f.path for f in files) == ["a.csv", "sub/b.csv"]
    assert {f.path: f.size for f in files}["sub/b.csv"] == 6 and all(f.modified for f in files)
