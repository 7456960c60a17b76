"""Schema-change events between runs: added, removed and retyped columns, on SQL tables (the
source declares its columns) and on files (the landed schema speaks), for loads that succeed,
loads that fail because of the change, and previews."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from ingestion_core.config.store import ConfigStore
from ingestion_core.pipeline.runner import preview_source, run_source


@pytest.fixture
def shop(ingest_env: Path) -> Path:
    with sqlite3.connect(ingest_env / "shop.sqlite") as con:
        con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, age INTEGER, city TEXT)")
        con.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)",
                        [(i, f"n{i}", 20 + i, "Berlin") for i in range(20)])
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


def changes(record) -> list[tuple]:
    return [(e["change"], e["column"], e["type"], e["previous_type"]) for e in record.tables[0].schema_changes]


def test_first_run_has_no_events_and_an_unchanged_source_none_either(shop: Path) -> None:
    config = write_source(shop, "  - {name: customers, mode: full}\n")
    first = run_source(config, actor="ana")
    assert first.tables[0].schema_changes == []
    assert first.tables[0].source_columns == ["id", "name", "age", "city"]
    assert run_source(config, actor="ana").tables[0].schema_changes == []


def test_added_and_removed_columns_are_recorded_once(shop: Path) -> None:
    config = write_source(shop, "  - {name: customers, mode: append}\n")
    first = run_source(config, actor="ana")
    change_source(shop, "ALTER TABLE customers ADD COLUMN email TEXT", "UPDATE customers SET email = 'a@b.c'",
                  "ALTER TABLE customers DROP COLUMN city")
    second = run_source(config, actor="ana")
    assert second.status == "success"
    assert changes(second) == [("added", "email", "text", None), ("removed", "city", None, "text")]
    assert {e["previous_run_id"] for e in second.tables[0].schema_changes} == {first.run_id}
    # dlt keeps the dropped column (NULL from now on); the next run does not report it again
    assert "city" in [c["name"] for c in second.tables[0].columns]
    assert run_source(config, actor="ana").tables[0].schema_changes == []
    change_source(shop, "ALTER TABLE customers ADD COLUMN city TEXT")
    assert changes(run_source(config, actor="ana")) == [("added", "city", "text", None)]


def test_a_retyped_column_is_recorded_with_the_failure_it_causes(shop: Path) -> None:
    """dlt cannot load text into the bigint column it created: the table fails, and the events
    say why (the preview said so before the run)."""
    config = write_source(shop, "  - {name: customers, mode: full}\n")
    run_source(config, actor="ana")
    change_source(shop, "ALTER TABLE customers RENAME TO old",
                  "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, age TEXT, city TEXT)",
                  "INSERT INTO customers SELECT id, name, 'about ' || age, city FROM old")
    preview = preview_source(config, actor="ana")
    assert changes(preview.record) == [("retyped", "age", "text", "bigint")]
    failed = run_source(config, actor="ana")
    assert failed.tables[0].status == "failed"
    assert changes(failed) == [("retyped", "age", "text", "bigint")]


def test_a_column_added_under_freeze_is_named_in_the_failed_run(shop: Path) -> None:
    config = write_source(shop, "  - {name: customers, mode: append, schema_evolution: freeze}\n")
    run_source(config, actor="ana")
    change_source(shop, "ALTER TABLE customers ADD COLUMN email TEXT", "UPDATE customers SET email = 'x@y.z'")
    failed = run_source(config, actor="ana")
    assert failed.status == "failed"
    assert changes(failed) == [("added", "email", "text", None)]


def test_include_columns_decide_what_counts_as_removed(shop: Path) -> None:
    config = write_source(shop, "  - {name: customers, include_columns: [id, name, age]}\n")
    run_source(config, actor="ana")
    change_source(shop, "ALTER TABLE customers DROP COLUMN city")  # never loaded: no event
    assert run_source(config, actor="ana").tables[0].schema_changes == []
    config = write_source(shop, "  - {name: customers, include_columns: [id, name]}\n")
    assert changes(run_source(config, actor="ana")) == [("removed", "age", None, "bigint")]


def test_files_retyped_values_land_in_a_variant_column(ingest_env: Path) -> None:
    folder = ingest_env / "landing"
    folder.mkdir()
    (folder / "events.jsonl").write_text("\n".join(json.dumps({"id": i, "score": i}) for i in range(5)) + "\n")
    (ingest_env / "configs" / "sources" / "landing.yaml").write_text(
        "name: landing\nowner: data-ops\nsource: {type: filesystem, bucket_url: landing}\nretries: {attempts: 1}\n"
        "tables:\n  - {name: events, glob: '*.jsonl', format: jsonl}\n")
    config = ConfigStore().load_source("landing").config
    assert run_source(config, actor="ana").tables[0].source_columns is None  # files declare no columns
    (folder / "events.jsonl").write_text("\n".join(json.dumps({"id": i, "score": f"high {i}", "tag": "x"})
                                                   for i in range(5)) + "\n")
    second = run_source(config, actor="ana")
    assert second.status == "success"
    events = second.tables[0].schema_changes
    assert [(e["change"], e["column"], e["type"], e["previous_type"]) for e in events] == [
        ("retyped", "score", "text", "bigint"), ("added", "tag", "text", None)]
    assert events[0]["note"] == "values land in score__v_text"


def test_the_source_side_is_typed_by_the_same_plan_as_the_load(shop: Path) -> None:
    """A failed run compares the declared types with the last run's: they come from the run's own
    type plan, so a column landed as text by the product (NUMERIC without precision) or by the
    table's column_types is not reported as retyped."""
    change_source(shop, "ALTER TABLE customers ADD COLUMN score NUMERIC", "UPDATE customers SET score = id * 1.5")
    config = write_source(shop, "  - name: customers\n    mode: append\n    schema_evolution: freeze\n"
                                "    column_types: {age: text}\n")
    first = run_source(config, actor="ana")
    assert {c["name"]: c["type"] for c in first.tables[0].columns if c["name"] in ("age", "score")} == {
        "age": "text", "score": "text"}
    change_source(shop, "ALTER TABLE customers ADD COLUMN email TEXT", "UPDATE customers SET email = 'x@y.z'")
    failed = run_source(config, actor="ana")
    assert failed.status == "failed"
    assert changes(failed) == [("added", "email", "text", None)]

