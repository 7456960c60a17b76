"""`ingest run --all`: every enabled source as its own `ingest run` process, dependencies (after:)
first, a summary table and an exit code that says whether all succeeded."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from ingestion_core.cli.main import main
from ingestion_core.observe.records import latest_runs


def write_source(project: Path, name: str, table: str, *, after: list[str] | None = None, owner: str = "market-de",
                 extra: str = "") -> None:
    lines = [f"name: {name}", f"owner: {owner}", "source: {type: sqlite, path: shop.sqlite}",
             "retries: {attempts: 1}", f"tables:\n  - {{name: {table}, mode: full}}"]
    if after:
        lines.append(f"after: [{', '.join(after)}]")
    (project / "configs" / "sources" / f"{name}.yaml").write_text("\n".join(lines) + "\n" + extra)


@pytest.fixture
def shop(ingest_env: Path) -> Path:
    with sqlite3.connect(ingest_env / "shop.sqlite") as con:
        con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, amount REAL)")
        con.executemany("INSERT INTO orders VALUES (?, ?)", [(i, i / 2) for i in range(120)])
        con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        con.executemany("INSERT INTO customers VALUES (?, ?)", [(i, f"c{i}") for i in range(30)])
    return ingest_env


def test_one_fails_one_succeeds_one_skipped_for_its_failed_dependency(shop: Path, capsys) -> None:
    write_source(shop, "good", "orders")
    write_source(shop, "broken", "no_such_table")
    write_source(shop, "downstream", "customers", after=["broken"])
    write_source(shop, "after_good", "customers", after=["good"])

    code = main(["--actor", "ops", "run", "--all", "--parallel", "2"])
    out = capsys.readouterr().out

    assert code == 1
    runs = {r["source"]: r for r in latest_runs(kind="run")}
    assert set(runs) == {"good", "broken", "after_good"}  # downstream never started
    assert runs["good"]["status"] == "success" and runs["broken"]["status"] == "failed"
    assert runs["after_good"]["started_at"] >= runs["good"]["started_at"] + _seconds(runs["good"]["duration_s"])
    lines = {line.split()[0]: line for line in out.splitlines() if line and not line.startswith(" ")}
    assert "success" in lines["good"] and "120" in lines["good"]
    assert "failed" in lines["broken"]
    assert "skipped" in lines["downstream"] and "dependency broken failed" in lines["downstream"]
    assert "Total: 4  Succeeded: 2  Failed: 1  Skipped: 1  Rows: 150" in out


def test_all_succeed_exit_0_json_and_owner_filter_pulls_in_dependencies(shop: Path, capsys) -> None:
    write_source(shop, "customers_src", "customers", owner="market-fr")
    write_source(shop, "orders_src", "orders", after=["customers_src"])
    write_source(shop, "other", "orders", owner="market-fr")

    code = main(["--actor", "ops", "run", "--all", "--owner", "market-de", "--json"])
    result = json.loads(capsys.readouterr().out)

    assert code == 0 and result["exit_code"] == 0
    assert [(s["source"], s["status"], s["dependency_only"]) for s in result["sources"]] == [
        ("customers_src", "success", True), ("orders_src", "success", False)]
    assert (result["total"], result["succeeded"], result["failed"], result["rows"]) == (2, 2, 0, 150)


def test_tag_filter_and_disabled_sources(shop: Path, capsys) -> None:
    write_source(shop, "tagged", "orders", extra="tags: [daily]\n")
    write_source(shop, "untagged", "orders")
    write_source(shop, "off", "orders", extra="tags: [daily]\nenabled: false\n")

    code = main(["--actor", "ops", "run", "--all", "--tag", "daily", "--json"])
    result = json.loads(capsys.readouterr().out)

    assert code == 0
    assert [s["source"] for s in result["sources"]] == ["tagged"]


def test_all_with_a_source_name_or_without_all_is_refused(shop: Path, capsys) -> None:
    write_source(shop, "good", "orders")
    assert main(["run"]) == 1
    assert "ingest run --all" in capsys.readouterr().err
    assert main(["run", "good", "--parallel", "3"]) == 1
    assert "go with --all" in capsys.readouterr().err


def _seconds(value: float):
    from datetime import timedelta

    return timedelta(seconds=value or 0)
