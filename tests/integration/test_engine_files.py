"""File sources (CSV, JSONL, Parquet on local disk) through the engine into DuckDB, and the
filesystem destination (Parquet with the date-partitioned layout)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingestion_core.config.store import ConfigStore
from ingestion_core.pipeline.runner import preview_source, run_source


@pytest.fixture
def files(ingest_env: Path) -> Path:
    folder = ingest_env / "landing"
    (folder / "events").mkdir(parents=True)
    (folder / "stores.csv").write_text("store_id;city\n1;Berlin\n2;Paris\n3;Oslo\n")
    for day in (1, 2):
        lines = [json.dumps({"id": day * 100 + i, "kind": "click", "meta": {"page": f"/p{i}"}}) for i in range(50)]
        (folder / "events" / f"2024-01-0{day}.jsonl").write_text("\n".join(lines) + "\n")
    pq.write_table(pa.table({"sku": ["a", "b"], "price": [1.5, 2.25]}), folder / "prices.parquet")
    return ingest_env


def write_source(project: Path, tables: str, destination: str = "local_duckdb") -> object:
    (project / "configs" / "sources" / "landing.yaml").write_text(
        "name: landing\nowner: data-ops\nsource: {type: filesystem, bucket_url: landing}\n"
        f"destination: {destination}\nretries: {{attempts: 1}}\ntables:\n{tables}"
    )
    return ConfigStore().load_source("landing").config


def query(project: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(project / ".ingest" / "local_duckdb.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


TABLES = (
    "  - {name: stores, glob: stores.csv, format: csv, csv: {delimiter: ';'}}\n"
    "  - {name: events, glob: 'events/*.jsonl', format: jsonl}\n"
    "  - {name: prices, glob: prices.parquet, format: parquet}\n"
)


def test_each_format_lands(files: Path) -> None:
    record = run_source(write_source(files, TABLES), actor="ana")
    assert record.status == "success", record.error
    assert {t.name: t.rows for t in record.tables} == {"stores": 3, "events": 100, "prices": 2}
    assert query(files, "SELECT city FROM landing.stores ORDER BY store_id") == [("Berlin",), ("Paris",), ("Oslo",)]
    assert query(files, "SELECT meta__page FROM landing.events WHERE id = 101") == [("/p1",)]
    assert query(files, "SELECT sum(price) FROM landing.prices") == [(3.75,)]


def test_preview_reads_first_rows_only(files: Path) -> None:
    result = preview_source(write_source(files, TABLES), actor="ana", limit=10)
    rows = {t.name: t.rows for t in result.record.tables}
    assert rows["events"] == 10 and rows["stores"] == 3
    assert len(result.samples["events"]) == 10


def test_incremental_on_modification_date_loads_new_files_only(files: Path) -> None:
    tables = "  - {name: events, glob: 'events/*.jsonl', format: jsonl, mode: incremental, cursor: modification_date}\n"
    config = write_source(files, tables)
    assert run_source(config, actor="ana").tables[0].rows == 100
    new_file = files / "landing" / "events" / "2024-01-03.jsonl"
    new_file.write_text(json.dumps({"id": 999, "kind": "view", "meta": {"page": "/x"}}) + "\n")
    later = time.time() + 5
    os.utime(new_file, (later, later))
    assert run_source(config, actor="ana").tables[0].rows == 1
    assert query(files, "SELECT count(*), count(DISTINCT id) FROM landing.events") == [(101, 101)]


def test_lookback_reads_a_late_file_again_and_each_row_once(files: Path) -> None:
    events = files / "landing" / "events"
    now = time.time()
    for name, hours_ago in (("2024-01-01.jsonl", 5), ("2024-01-02.jsonl", 1)):
        os.utime(events / name, (now - hours_ago * 3600, now - hours_ago * 3600))
    config = write_source(files, "  - {name: events, glob: 'events/*.jsonl', format: jsonl, mode: incremental,\n"
                                 "     cursor: modification_date, primary_key: id, lookback: 1h}\n")
    assert run_source(config, actor="ana").tables[0].rows == 100
    late = events / "2024-01-03.jsonl"  # copied in later, keeping a time older than the saved cursor
    late.write_text(json.dumps({"id": 999, "kind": "view", "meta": {"page": "/x"}}) + "\n")
    os.utime(late, (now - 1.5 * 3600, now - 1.5 * 3600))
    second = run_source(config, actor="ana")
    assert second.status == "success", second.tables[0].error
    assert second.tables[0].rows == 51  # the files of the last 2 hours: 2024-01-02 again and the late one
    assert query(files, "SELECT count(*), count(DISTINCT id) FROM landing.events") == [(101, 101)]


def test_parquet_files_destination_uses_date_layout(files: Path) -> None:
    lake = files / "lake"
    (files / "configs" / "destinations" / "lake.yaml").write_text(
        f"type: filesystem\nbucket_url: {lake}\nformat: parquet\n"
    )
    record = run_source(write_source(files, TABLES, destination="lake"), actor="ana")
    assert record.status == "success", record.error
    written = sorted(p.relative_to(lake) for p in lake.rglob("*.parquet"))
    stores = [p for p in written if p.parts[1] == "stores"]
    assert stores and len(stores[0].parts) == 6  # landing/stores/YYYY/MM/DD/<load_id>.<file_id>.parquet
    assert pq.read_table(lake / stores[0]).num_rows == 3


def test_keep_history_checks_read_the_newest_dated_folder(files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pendulum

    from ingestion_core.engine.destinations import filesystem

    lake = files / "lake"
    (files / "configs" / "destinations" / "lake.yaml").write_text(
        f"type: filesystem\nbucket_url: {lake}\nkeep_history: true\n")
    config = write_source(files, "  - {name: stores, glob: stores.csv, format: csv, csv: {delimiter: ';'}, checks: "
                                 "[{row_count: {min: 3, max: 3}}, {unique: store_id}], reconcile: true}\n", "lake")
    for day in ("2026-03-01", "2026-03-02", "2026-03-03"):
        monkeypatch.setattr(filesystem, "run_moment", lambda d=day: pendulum.parse(d))
        record = run_source(config, actor="ana", refresh_tables=["stores"] if day == "2026-03-03" else None)
        # 3 rows, each store once: the checks see this run's folder, not the 6 rows of both folders
        assert record.status == "success", record.tables[0].quality
        assert [q["status"] for q in record.tables[0].quality] == ["pass", "pass", "pass"]
    folders = sorted(str(p.parent.relative_to(lake)) for p in lake.rglob("*.parquet") if "stores" in p.parts)
    # a full refresh (the third run) keeps the history too
    assert folders == ["landing/stores/2026/03/01", "landing/stores/2026/03/02", "landing/stores/2026/03/03"]


def test_merge_into_plain_parquet_is_rejected_with_the_fix(files: Path) -> None:
    (files / "configs" / "destinations" / "lake.yaml").write_text("type: filesystem\nbucket_url: lake\n")
    (files / "configs" / "sources" / "landing.yaml").write_text(
        "name: landing\nowner: data-ops\nsource: {type: filesystem, bucket_url: landing}\ndestination: lake\n"
        "tables:\n  - {name: stores, glob: stores.csv, format: csv, mode: merge, primary_key: store_id}\n"
    )
    loaded = ConfigStore().load("sources", "landing")
    assert not loaded.valid
    assert any("format: delta" in i.message and i.path == "tables[0].mode" for i in loaded.issues)


def test_malformed_csv_row_is_a_recorded_error_and_other_tables_load(files: Path) -> None:
    (files / "landing" / "broken.csv").write_text('a,b\n1,2\n3,"unterminated\n4,5,6,7\n')
    tables = TABLES + "  - {name: broken, glob: broken.csv, format: csv}\n"
    record = run_source(write_source(files, tables), actor="ana")
    by_name = {t.name: t for t in record.tables}
    assert record.status == "partial"
    assert by_name["broken"].status == "failed" and by_name["broken"].error.message
    assert by_name["stores"].rows == 3


def test_records_of_the_root_table_and_rows_of_child_tables_apart(ingest_env: Path) -> None:
    """A nested list becomes a child table: rows_total counts its rows too, records_total only
    the records the source yielded."""
    folder = ingest_env / "landing"
    folder.mkdir()
    orders = [{"id": i, "items": [{"sku": "a"}, {"sku": "b"}]} for i in range(10)]  # 10 records, 20 items
    (folder / "orders.jsonl").write_text("\n".join(json.dumps(o) for o in orders) + "\n")

    record = run_source(write_source(ingest_env, "  - {name: orders, glob: orders.jsonl, format: jsonl}\n"),
                        actor="ana")

    assert record.status == "success", record.error
    table = record.tables[0]
    assert (table.records, table.child_rows, table.rows) == (10, {"orders__items": 20}, 30)
    assert (record.records_total, record.rows_total) == (10, 30)
