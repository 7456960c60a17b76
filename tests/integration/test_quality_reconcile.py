"""Reconciliation: the source's row count (with the filter, within the incremental window)
against what landed, with a tolerance; differences planted on purpose are caught."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from ingestion_core.config.store import ConfigStore
from ingestion_core.pipeline import table_load
from ingestion_core.pipeline.runner import preview_source, run_source
from ingestion_core.quality import reconcile


@pytest.fixture
def shop(ingest_env: Path) -> Path:
    with sqlite3.connect(ingest_env / "shop.sqlite") as con:
        con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, country TEXT, updated_at TEXT)")
        con.executemany("INSERT INTO orders VALUES (?, ?, ?)",
                        [(i, ["DE", "FR"][i % 2], f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}") for i in range(200)])
    return ingest_env


def write_source(project: Path, table: str) -> object:
    (project / "configs" / "sources" / "shop.yaml").write_text(
        "name: shop\nowner: market-de\nsource: {type: sqlite, path: shop.sqlite}\nretries: {attempts: 1}\n"
        f"tables:\n{table}"
    )
    return ConfigStore().load_source("shop").config


def change_source(project: Path, *statements: str) -> None:
    with sqlite3.connect(project / "shop.sqlite") as con:
        for statement in statements:
            con.execute(statement)


def reconciled(record) -> dict:
    return next(q for q in record.tables[0].quality if q["check"] == "reconcile")


@pytest.fixture
def between_load_and_count(monkeypatch: pytest.MonkeyPatch):
    """Run SQL on the source after the load, before the checks count it (a busy source)."""
    import ingestion_core.quality.checks  # noqa: F401  (its hooks are in the list first)

    def plant(project: Path, *statements: str) -> None:
        def hook(pipeline, plan, table, result) -> None:
            change_source(project, *statements)
        monkeypatch.setattr(table_load, "AFTER_TABLE_LOAD", [hook, *table_load.AFTER_TABLE_LOAD])
    return plant


def test_equal_counts_pass_and_the_filter_is_applied(shop: Path) -> None:
    config = write_source(shop, "  - name: orders\n    reconcile: true\n"
                                "    filter: [{column: country, op: '=', value: DE}]\n")
    record = run_source(config, actor="ana")
    result = reconciled(record)
    assert (record.status, result["status"], result["observed"]) == ("success", "pass", 100)
    assert result["threshold"] == {"source_rows": 100, "tolerance": 0, "allowed_difference": 0}
    assert result["message"] == "100 rows in the table against 100 source rows matching the filter"


def test_a_row_deleted_between_load_and_count_is_caught(shop: Path, between_load_and_count) -> None:
    between_load_and_count(shop, "DELETE FROM orders WHERE id = 7")
    record = run_source(write_source(shop, "  - {name: orders, reconcile: true}\n"), actor="ana")
    result = reconciled(record)
    assert (record.status, record.exit_code) == ("quality_failed", 2)
    assert (result["status"], result["observed"], result["threshold"]["source_rows"]) == ("fail", 200, 199)
    assert "(difference +1, at most 0 allowed)" in result["message"]


@pytest.mark.parametrize(("tolerance", "status"), [("1", "pass"), ("'1%'", "pass"), ("'0.4%'", "fail"), ("0", "fail")])
def test_tolerance(shop: Path, between_load_and_count, tolerance: str, status: str) -> None:
    between_load_and_count(shop, "DELETE FROM orders WHERE id = 7")  # 1 of 199 rows: 0.5%
    record = run_source(write_source(shop, f"  - {{name: orders, reconcile: {{tolerance: {tolerance}}}}}\n"),
                        actor="ana")
    assert reconciled(record)["status"] == status


def test_merge_with_duplicate_keys_lands_fewer_rows_than_the_source_holds(shop: Path) -> None:
    change_source(shop, "CREATE TABLE dupes (id INTEGER, v TEXT)",
                  "INSERT INTO dupes VALUES (1, 'a'), (1, 'b'), (2, 'c')")
    config = write_source(shop, "  - {name: dupes, mode: merge, primary_key: id, reconcile: {severity: warn}}\n")
    record = run_source(config, actor="ana")
    result = reconciled(record)
    assert (record.status, result["status"], result["observed"], result["threshold"]["source_rows"]) == (
        "success", "warn", 2, 3)
    assert result["message"].startswith("2 rows of this load against 3 source rows")


def test_incremental_counts_the_window_of_each_run(shop: Path, between_load_and_count) -> None:
    config = write_source(shop, "  - {name: orders, mode: incremental, cursor: updated_at, reconcile: true}\n")
    first = reconciled(run_source(config, actor="ana"))
    assert (first["status"], first["observed"]) == ("pass", 200)
    change_source(shop, *[f"INSERT INTO orders VALUES ({i}, 'DE', '2024-02-01T00:00:0{i - 300}')"
                          for i in (300, 301, 302)])
    # written after the load, past the cursor: the next run's rows, outside this window
    between_load_and_count(shop, "INSERT INTO orders VALUES (400, 'DE', '2024-03-01T00:00:00')")
    second = reconciled(run_source(config, actor="ana"))
    assert (second["status"], second["observed"], second["threshold"]["source_rows"]) == ("pass", 3, 3)
    assert "in the cursor window of updated_at" in second["message"]


def test_a_late_row_inside_the_window_is_caught(shop: Path, between_load_and_count) -> None:
    config = write_source(shop, "  - {name: orders, mode: incremental, cursor: updated_at, reconcile: true}\n")
    run_source(config, actor="ana")
    change_source(shop, "INSERT INTO orders VALUES (300, 'DE', '2024-02-01T00:00:05')")
    # committed late with an older cursor value: the incremental load will never read it
    between_load_and_count(shop, "INSERT INTO orders VALUES (301, 'DE', '2024-02-01T00:00:01')")
    result = reconciled(run_source(config, actor="ana"))
    assert (result["status"], result["observed"], result["threshold"]["source_rows"]) == ("fail", 1, 2)


def test_a_source_kind_that_cannot_count_says_so(shop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(reconcile.ROW_COUNTERS, "sqlite")
    record = run_source(write_source(shop, "  - {name: orders, reconcile: true}\n"), actor="ana")
    result = reconciled(record)
    assert (record.status, result["status"]) == ("success", "skipped")
    assert result["message"].startswith("sqlite sources cannot count their rows")


def test_files_reconcile_the_rows_read(ingest_env: Path) -> None:
    folder = ingest_env / "landing"
    folder.mkdir()
    (folder / "a.jsonl").write_text("\n".join(json.dumps({"id": i}) for i in range(30)) + "\n")
    (ingest_env / "configs" / "sources" / "landing.yaml").write_text(
        "name: landing\nowner: data-ops\nsource: {type: filesystem, bucket_url: landing}\n"
        "tables:\n  - {name: events, glob: '*.jsonl', format: jsonl, reconcile: true}\n")
    record = run_source(ConfigStore().load_source("landing").config, actor="ana")
    result = reconciled(record)
    assert (result["status"], result["observed"]) == ("pass", 30)
    assert result["message"] == "30 rows in the table against 30 rows read from the files"


def test_preview_reconciles_up_to_its_limit(shop: Path) -> None:
    config = write_source(shop, "  - {name: orders, reconcile: true}\n")
    result = reconciled(preview_source(config, actor="ana", limit=50).record)
    assert (result["status"], result["observed"], result["threshold"]["source_rows"]) == ("pass", 50, 50)
