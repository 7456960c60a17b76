"""The engine end to end on SQLite: previews, every mode over two runs with changed data,
failure isolation and run records. Real dlt, real DuckDB."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import duckdb
import pytest

from ingestion_core.config.store import ConfigStore
from ingestion_core.observe.records import RunRecord, load_record, record_path
from ingestion_core.pipeline.runner import preview_source, run_source


def make_db(path: Path, rows: int = 200) -> None:
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, city TEXT, updated_at TEXT)")
        con.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, ?)",
            [(i, f"name {i}", ["Berlin", "Paris", None][i % 3], f"2024-01-01T00:00:{i % 60:02d}") for i in range(rows)],
        )


def write_source(project: Path, tables: str, name: str = "shop") -> object:
    (project / "configs" / "sources" / f"{name}.yaml").write_text(
        f"name: {name}\nowner: market-de\nsource: {{type: sqlite, path: shop.sqlite}}\n"
        f"retries: {{attempts: 1}}\ntables:\n{tables}"
    )
    return ConfigStore().load_source(name).config


def destination_rows(sql: str) -> list[tuple]:
    path = Path(ConfigStore().root).parent / ".ingest" / "local_duckdb.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture
def shop(ingest_env: Path) -> Path:
    make_db(ingest_env / "shop.sqlite")
    return ingest_env


def change_source(project: Path, *statements: str) -> None:
    with sqlite3.connect(project / "shop.sqlite") as con:
        for statement in statements:
            con.execute(statement)


def test_preview_limits_rows_and_touches_no_real_state(shop: Path) -> None:
    config = write_source(shop, "  - {name: customers, mode: incremental, cursor: updated_at}\n")
    result = preview_source(config, actor="ana", limit=25)
    table = result.record.tables[0]
    assert (result.record.status, table.rows) == ("success", 25)
    assert len(result.samples["customers"]) == 25
    assert {c["name"] for c in table.columns} == {"id", "name", "city", "updated_at"}
    assert result.record.kind == "preview"
    assert not (shop / ".ingest" / "pipelines").exists()  # real pipelines untouched
    assert not (shop / ".ingest" / "local_duckdb.duckdb").exists()
    whole = preview_source(config, actor="ana", limit=1000)
    again = preview_source(config, actor="ana", limit=1000)  # a fresh state: the same rows again
    assert whole.record.tables[0].rows == again.record.tables[0].rows == 200


def test_full_mode_replaces(shop: Path) -> None:
    config = write_source(shop, "  - {name: customers, mode: full}\n")
    assert run_source(config, actor="ana").status == "success"
    change_source(shop, "DELETE FROM customers WHERE id >= 150")
    assert run_source(config, actor="ana").status == "success"
    assert destination_rows("SELECT count(*) FROM shop.customers") == [(150,)]


def test_append_mode_appends(shop: Path) -> None:
    config = write_source(shop, "  - {name: customers, mode: append}\n")
    run_source(config, actor="ana")
    run_source(config, actor="ana")
    assert destination_rows("SELECT count(*), count(DISTINCT id) FROM shop.customers") == [(400, 200)]


def test_incremental_loads_only_new_rows(shop: Path) -> None:
    config = write_source(shop, "  - {name: customers, mode: incremental, cursor: updated_at}\n")
    first = run_source(config, actor="ana")
    assert first.tables[0].rows == 200
    change_source(shop, "INSERT INTO customers VALUES (1000, 'new', 'Rome', '2024-02-01T00:00:00')")
    second = run_source(config, actor="ana")
    assert second.tables[0].rows == 1
    assert second.tables[0].cursor == {"column": "updated_at", "last_value": "2024-02-01T00:00:00"}
    assert destination_rows("SELECT count(*), count(DISTINCT id) FROM shop.customers") == [(201, 201)]


def test_merge_upserts_on_primary_key(shop: Path) -> None:
    config = write_source(shop, "  - {name: customers, mode: merge, primary_key: id}\n")
    run_source(config, actor="ana")
    change_source(shop, "UPDATE customers SET city = 'Oslo' WHERE id = 5",
                  "INSERT INTO customers VALUES (500, 'new', 'Rome', '2024-02-01T00:00:00')")
    run_source(config, actor="ana")
    assert destination_rows("SELECT count(*), count(DISTINCT id) FROM shop.customers") == [(201, 201)]
    assert destination_rows("SELECT city FROM shop.customers WHERE id = 5") == [("Oslo",)]


def test_scd2_keeps_history(shop: Path) -> None:
    config = write_source(shop, "  - {name: customers, mode: scd2, primary_key: id}\n")
    run_source(config, actor="ana")
    change_source(shop, "UPDATE customers SET city = 'Oslo' WHERE id = 5", "DELETE FROM customers WHERE id = 6")
    run_source(config, actor="ana")
    versions = destination_rows(
        "SELECT city, _dlt_valid_to IS NULL FROM shop.customers WHERE id = 5 ORDER BY _dlt_valid_from"
    )
    assert versions == [(None, False), ("Oslo", True)]  # id 5 had no city
    assert destination_rows("SELECT _dlt_valid_to IS NULL FROM shop.customers WHERE id = 6") == [(False,)]
    run_source(config, actor="ana")  # nothing changed: no new versions
    assert destination_rows("SELECT count(*) FROM shop.customers") == [(201,)]
    assert destination_rows("SELECT count(*) FROM shop.customers WHERE _dlt_valid_to IS NULL") == [(199,)]


def test_failing_table_does_not_stop_the_others(shop: Path) -> None:
    config = write_source(shop, "  - {name: customers, mode: full}\n  - {name: no_such_table, mode: full}\n")
    record = run_source(config, actor="ana")
    by_name = {t.name: t for t in record.tables}
    assert (record.status, record.exit_code) == ("partial", 3)
    assert by_name["customers"].rows == 200
    assert by_name["no_such_table"].status == "failed"
    assert "table was not found" in by_name["no_such_table"].error.hint
    assert destination_rows("SELECT count(*) FROM shop.customers") == [(200,)]


def test_failed_run_keeps_earlier_data_and_state(shop: Path) -> None:
    config = write_source(shop, "  - {name: customers, mode: incremental, cursor: updated_at}\n")
    run_source(config, actor="ana")
    (shop / "shop.sqlite").rename(shop / "moved.sqlite")
    sqlite3.connect(shop / "shop.sqlite").close()  # an empty database: the table is gone
    failed = run_source(config, actor="ana")
    assert (failed.status, failed.exit_code) == ("failed", 1)
    assert destination_rows("SELECT count(*) FROM shop.customers") == [(200,)]
    (shop / "shop.sqlite").unlink()
    (shop / "moved.sqlite").rename(shop / "shop.sqlite")
    change_source(shop, "INSERT INTO customers VALUES (1000, 'new', 'Rome', '2024-02-01T00:00:00')")
    assert run_source(config, actor="ana").tables[0].rows == 1  # the cursor survived the failure


def test_run_record_written_and_valid(shop: Path) -> None:
    config = write_source(shop, "  - {name: customers, mode: full}\n")
    record = run_source(config, actor="ana", trigger="portal")
    on_disk = load_record(record_path(record))
    assert on_disk == RunRecord.model_validate(on_disk.model_dump())
    assert (on_disk.status, on_disk.actor, on_disk.trigger, on_disk.kind) == ("success", "ana", "portal", "run")
    assert on_disk.tables[0].rows == 200 and on_disk.rows_total == 200
    assert set(on_disk.phases) == {"extract", "normalize", "load"}
    assert abs(sum(p.pct for p in on_disk.phases.values()) - 100) < 1
    assert "name: shop" in on_disk.config_snapshot
    assert Path(on_disk.log_path).exists() and Path(on_disk.error_log_path).exists()


def test_missing_cursor_column_is_a_clear_error(shop: Path) -> None:
    config = write_source(shop, "  - {name: customers, mode: incremental, cursor: changed_on}\n")
    record = run_source(config, actor="ana")
    error = record.tables[0].error
    assert record.status == "failed"
    assert "cursor column 'changed_on' is not a column of customers" in error.message
    assert "id, name, city, updated_at" in error.message


def test_duplicate_primary_keys_on_merge_keep_one_row_per_key(shop: Path) -> None:
    change_source(shop, "CREATE TABLE dupes (id INTEGER, v TEXT)",
                  "INSERT INTO dupes VALUES (1, 'a'), (1, 'b'), (2, 'c')")
    config = write_source(shop, "  - {name: dupes, mode: merge, primary_key: id}\n")
    record = run_source(config, actor="ana")
    assert record.status == "success", record.error
    assert destination_rows("SELECT count(*), count(DISTINCT id) FROM shop.dupes") == [(2, 2)]


def test_schema_change_under_freeze_fails_and_keeps_the_table(shop: Path) -> None:
    config = write_source(shop, "  - {name: customers, mode: append, schema_evolution: freeze}\n")
    assert run_source(config, actor="ana").status == "success"
    change_source(shop, "ALTER TABLE customers ADD COLUMN email TEXT", "UPDATE customers SET email = 'x@y.z'")
    record = run_source(config, actor="ana")
    assert record.status == "failed"
    assert "schema_evolution" in record.tables[0].error.hint
    assert destination_rows("SELECT count(*) FROM shop.customers") == [(200,)]
    columns = [r[0] for r in destination_rows("SELECT column_name FROM information_schema.columns "
                                              "WHERE table_schema = 'shop' AND table_name = 'customers'")]
    assert "email" not in columns


def test_row_filter_and_columns(shop: Path) -> None:
    config = write_source(shop, "  - name: customers\n    exclude_columns: [name]\n"
                                "    filter: [{column: city, op: in, value: [Berlin, Paris]}]\n")
    record = run_source(config, actor="ana")
    assert record.status == "success", record.error
    assert destination_rows("SELECT count(*) FROM shop.customers") == [(134,)]
    columns = [r[0] for r in destination_rows("SELECT column_name FROM information_schema.columns "
                                              "WHERE table_schema = 'shop' AND table_name = 'customers'")]
    assert "name" not in columns and "city" in columns


def test_merge_with_a_cursor_reads_only_changed_rows(shop: Path) -> None:
    config = write_source(shop, "  - {name: customers, mode: merge, primary_key: id, cursor: updated_at}\n")
    assert run_source(config, actor="ana").tables[0].rows == 200
    change_source(shop, "UPDATE customers SET city = 'Oslo', updated_at = '2024-06-01T00:00:00' WHERE id = 7")
    second = run_source(config, actor="ana")
    assert second.tables[0].rows == 1
    assert destination_rows("SELECT count(*), count(DISTINCT id) FROM shop.customers") == [(200, 200)]
    assert destination_rows("SELECT city FROM shop.customers WHERE id = 7") == [("Oslo",)]


# --- lookback: rows that arrive late, read again without duplicates ---------------------------

def make_events(project: Path) -> None:
    with sqlite3.connect(project / "shop.sqlite") as con:
        con.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, note TEXT, updated_at TIMESTAMP)")
        con.executemany("INSERT INTO events VALUES (?, ?, ?)",
                        [(1, "a", "2024-03-01 10:30:00"), (2, "b", "2024-03-01 11:00:00"),
                         (3, "c", "2024-03-01 12:00:00")])


LATE_ROWS = ("INSERT INTO events VALUES (4, 'late, in the window', '2024-03-01 11:30:00')",
             "INSERT INTO events VALUES (5, 'late, before the window', '2024-03-01 09:59:59')",
             "INSERT INTO events VALUES (6, 'new', '2024-03-01 13:00:00')")


@pytest.mark.parametrize("backend", ["pyarrow", "sqlalchemy", "connectorx"])
def test_lookback_reads_late_rows_again_without_duplicates(shop: Path, backend: str) -> None:
    make_events(shop)
    config = write_source(shop, f"  - {{name: events, mode: incremental, cursor: updated_at, primary_key: id, "
                                f"lookback: 2h, backend: {backend}, reconcile: true, checks: [{{unique: id}}]}}\n")
    first = run_source(config, actor="ana")
    assert (first.status, first.tables[0].rows) == ("success", 3), first.tables[0].error
    change_source(shop, *LATE_ROWS)
    second = run_source(config, actor="ana")
    # read again from 10:00 (the saved cursor 12:00 less 2h): rows 1-4 and 6; 09:59:59 is too old
    assert (second.status, second.tables[0].mode, second.tables[0].rows) == ("success", "incremental", 5), (
        second.tables[0].error, second.tables[0].quality)
    assert [q["status"] for q in second.tables[0].quality] == ["pass", "pass"]  # unique(id), reconcile: 5 = 5
    assert destination_rows("SELECT id FROM shop.events ORDER BY id") == [(1,), (2,), (3,), (4,), (6,)]
    # a changed row (a new cursor value) is still a new version, as on any incremental table
    change_source(shop, "UPDATE events SET note = 'b2', updated_at = '2024-03-01 13:30:00' WHERE id = 2")
    third = run_source(config, actor="ana")
    assert third.tables[0].rows == 4  # from 11:00: rows 3, 4, 6 and the new version of 2
    assert destination_rows("SELECT id, note FROM shop.events WHERE id = 2 ORDER BY updated_at") == [
        (2, "b"), (2, "b2")]
    assert destination_rows("SELECT count(*) FROM shop.events") == [(6,)]


def test_without_lookback_late_rows_are_missed(shop: Path) -> None:
    make_events(shop)
    config = write_source(shop, "  - {name: events, mode: incremental, cursor: updated_at, primary_key: id}\n")
    run_source(config, actor="ana")
    change_source(shop, *LATE_ROWS)
    assert run_source(config, actor="ana").tables[0].rows == 1
    assert destination_rows("SELECT id FROM shop.events ORDER BY id") == [(1,), (2,), (3,), (6,)]


def test_lookback_on_merge_updates_a_late_change_in_place(shop: Path) -> None:
    make_events(shop)
    config = write_source(shop, "  - {name: events, mode: merge, cursor: updated_at, primary_key: id, lookback: 1d}\n")
    run_source(config, actor="ana")
    change_source(shop, "UPDATE events SET note = 'a2', updated_at = '2024-03-01 10:45:00' WHERE id = 1")
    second = run_source(config, actor="ana")
    assert second.status == "success", second.tables[0].error
    assert destination_rows("SELECT id, note FROM shop.events ORDER BY id") == [(1, "a2"), (2, "b"), (3, "c")]
