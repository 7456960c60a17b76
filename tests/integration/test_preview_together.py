"""A preview of several tables runs them through one dlt pipeline (one extract, normalize and
load): each table's figures are its own, exactly as when each table has its pipeline, and one
table's failure never hides the others (the preview falls back to a pipeline per table)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ingestion_core.config.store import ConfigStore
from ingestion_core.pipeline import runner
from ingestion_core.pipeline.runner import preview_source

TABLES = ("  - {name: customers, mode: full, checks: [{not_null: name}, {row_count: {min: 1}}]}\n"
          "  - {name: orders, mode: merge, primary_key: [id], checks: [{unique: id}]}\n"
          "  - {name: items, source_table: order_items, mode: full}\n")


@pytest.fixture
def shop(ingest_env: Path) -> Path:
    with sqlite3.connect(ingest_env / "shop.sqlite") as con:
        con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, city TEXT)")
        con.executemany("INSERT INTO customers VALUES (?, ?, ?)", [(i, f"n{i}", "Berlin") for i in range(120)])
        con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, total REAL, note TEXT)")
        con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", [(i, i % 120, i * 1.5, None) for i in range(700)])
        con.execute("CREATE TABLE order_items (order_id INTEGER, sku TEXT, quantity INTEGER)")
        con.executemany("INSERT INTO order_items VALUES (?, ?, ?)", [(i // 3, f"s{i}", 1) for i in range(2100)])
    return ingest_env


def write_source(project: Path, tables: str) -> object:
    (project / "configs" / "sources" / "shop.yaml").write_text(
        f"name: shop\nowner: market-de\nsource: {{type: sqlite, path: shop.sqlite}}\ntables:\n{tables}")
    return ConfigStore().load_source("shop").config


def figures(result: runner.PreviewResult) -> dict[str, dict]:
    return {t.name: {"status": t.status, "rows": t.rows, "records": t.records, "child_rows": t.child_rows,
                     "files": t.files, "columns": t.columns, "backend": t.backend,
                     "type_decisions": t.type_decisions, "schema_changes": t.schema_changes,
                     "quality": [(q["check"], q["status"], q["observed"]) for q in t.quality],
                     "sample": result.samples.get(t.name)}
            for t in result.record.tables}


def test_one_pipeline_gives_each_table_its_own_figures(shop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_source(shop, TABLES)
    together = preview_source(config, actor="ana", limit=500)
    assert (shop / ".ingest" / "preview" / "shop___preview").is_dir()  # the one pipeline of the preview
    assert not (shop / ".ingest" / "preview" / "shop__orders").exists()
    rows = {t.name: t.rows for t in together.record.tables}
    assert rows == {"customers": 120, "orders": 500, "items": 500}, rows
    assert together.record.rows_total == 1120

    monkeypatch.setattr(runner, "preview_together", lambda plan, tables: False)  # a pipeline per table
    alone = preview_source(config, actor="ana", limit=500)
    assert (shop / ".ingest" / "preview" / "shop__orders").is_dir()
    assert figures(together) == figures(alone)
    assert together.record.rows_total == alone.record.rows_total
    assert sum(t.phases["extract"].duration_s for t in together.record.tables) > 0


def test_a_table_that_fails_while_read_leaves_the_others_loaded(shop: Path) -> None:
    with sqlite3.connect(shop / "shop.sqlite") as con:  # SQLite keeps text in an INTEGER column
        con.execute("UPDATE order_items SET quantity = 'many' WHERE rowid = 7")
    config = write_source(shop, TABLES)
    result = preview_source(config, actor="ana", limit=500)
    by_name = {t.name: t for t in result.record.tables}
    assert by_name["items"].status == "failed" and by_name["items"].error, by_name["items"]
    assert "quantity" in by_name["items"].error.message
    assert (by_name["customers"].status, by_name["customers"].rows) == ("success", 120)
    assert (by_name["orders"].status, by_name["orders"].rows) == ("success", 500)
    assert len(result.samples["orders"]) == 100 and "items" not in result.samples
    assert result.record.status == "partial"
    log = Path(result.record.log_path).read_text(encoding="utf-8")
    assert "the tables together failed" in log and "each table again on its own" in log


def test_a_table_refused_before_reading_fails_alone(shop: Path) -> None:
    config = write_source(shop, TABLES + "  - {name: gone, source_table: no_such_table, mode: full}\n")
    result = preview_source(config, actor="ana", limit=500)
    by_name = {t.name: t for t in result.record.tables}
    assert by_name["gone"].status == "failed" and "table was not found" in by_name["gone"].error.hint
    assert [by_name[n].status for n in ("customers", "orders", "items")] == ["success"] * 3
    log = Path(result.record.log_path).read_text(encoding="utf-8")
    assert "the tables together failed" not in log  # the others still went through the one pipeline


def test_an_api_with_a_child_table_previews_in_one_pipeline(ingest_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.http_api import running_api
    from tests.integration.test_rest_api import write_source as api_source

    tables = ("  - {name: users, path: single/users}\n"
              "  - {name: posts, path: 'single/users/{id}/posts', parent: users, include_from_parent: [login],\n"
              "     response_actions: [{status_code: 404, action: ignore}]}\n"
              "  - {name: items, path: offset/items, paginator: {type: offset, limit: 100, total_path: total}}\n")
    with running_api() as api:
        config = api_source(api, tables, paginator={"type": "single_page"})
        together = preview_source(config, actor="ana", limit=120)
        log = Path(together.record.log_path).read_text(encoding="utf-8")
        assert "the tables together failed" not in log, log
        assert {t.name: t.records for t in together.record.tables} == {"users": 5, "posts": 9, "items": 120}
        monkeypatch.setattr(runner, "preview_together", lambda plan, tables: False)
        alone = preview_source(config, actor="ana", limit=120)
    assert figures(together) == figures(alone)


def test_the_result_is_handed_over_before_the_preview_file_closes(shop: Path) -> None:
    """``on_result`` gets the written record and the samples while the preview file is still open
    in this process (another connection with other settings is refused), so a page can draw the
    rows while the file closes; after the call the file is closed and opens read-only."""
    import duckdb

    from ingestion_core.engine.destinations.duckdb import preview_database
    from ingestion_core.observe.records import find_record

    config = write_source(shop, TABLES)
    seen: list[tuple[str, int, str]] = []

    def on_result(result: runner.PreviewResult) -> None:
        with pytest.raises(duckdb.ConnectionException, match="different configuration"):
            duckdb.connect(str(preview_database("shop")), read_only=True)
        seen.append((find_record(result.record.run_id).status, len(result.samples["customers"]), result.record.status))

    result = preview_source(config, actor="ana", limit=500, on_result=on_result)
    assert seen == [("success", 100, "success")] and result.record.status == "success"
    with duckdb.connect(str(preview_database("shop")), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM shop.customers").fetchone()[0] == 120
