"""``ingest job-run``, what a source's Databricks job runs on the cluster, run here in-process on
folders standing in for the volume: the folders and run id it takes from the task's parameters,
the dlt state it restores on a fresh cluster, and what a retry of the same job run does."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from ingestion_core.cli.main import main
from ingestion_core.observe.records import RunRecord, latest_runs, write_record


@pytest.fixture
def volume(ingest_env: Path, tmp_path: Path) -> Path:
    """configs/ and runs/ as a job finds them on the volume; a SQLite source, a DuckDB lake."""
    root = tmp_path / "volume"
    (root / "configs" / "sources").mkdir(parents=True)
    (root / "configs" / "destinations").mkdir()
    add_orders(tmp_path / "shop.sqlite", 1, 5)
    (root / "configs" / "destinations" / "lake.yaml").write_text(f"type: duckdb\npath: {tmp_path / 'lake.duckdb'}\n")
    (root / "configs" / "sources" / "shop.yaml").write_text(
        f"name: shop\nowner: market-de\nsource: {{type: sqlite, path: {tmp_path / 'shop.sqlite'}}}\n"
        "destination: lake\ntables:\n  - {name: orders, mode: incremental, cursor: updated_at}\n")
    return root


def add_orders(database: Path, first: int, last: int) -> None:
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, updated_at TEXT)")
        connection.executemany("INSERT INTO orders VALUES (?, ?)",
                               [(i, f"2024-01-01T00:00:{i:02d}") for i in range(first, last + 1)])


def job_run(volume: Path, data_dir: Path, *extra: str) -> int:
    return main(["--actor", "sp-ingest", "job-run", "shop", "--config-dir", str(volume / "configs"),
                 "--runs-dir", str(volume / "runs"), "--data-dir", str(data_dir), *extra])


def lake_rows(tmp_path: Path) -> int:
    with duckdb.connect(str(tmp_path / "lake.duckdb"), read_only=True) as connection:
        return connection.execute("SELECT count(*) FROM shop.orders").fetchone()[0]


def test_a_job_run_reads_and_writes_where_its_parameters_say(volume: Path, tmp_path: Path, monkeypatch) -> None:
    assert job_run(volume, tmp_path / "disk1", "--run-id", "20240501T060000-shop-abc123", "--job-run-id", "77") == 0
    monkeypatch.setenv("INGEST_RUNS_DIR", str(volume / "runs"))
    [record] = latest_runs()
    assert (record["run_id"], record["trigger"], record["actor"], record["rows_total"]) == (
        "20240501T060000-shop-abc123", "job", "sp-ingest", 5)
    assert list((tmp_path / "disk1").glob("pipelines/shop__orders"))  # dlt's folders on the local disk


@pytest.mark.parametrize(("run_id", "job_run_id", "expected"), [
    ("", "77", r"job77-shop"),  # a scheduled run: the job parameter keeps its empty default
    ("{{job.parameters.run_id}}", "{{job.run_id}}", r"\d{8}T\d{6}-shop-[0-9a-f]{6}"),  # not substituted: a new one
])
def test_the_run_id_of_scheduled_runs(volume: Path, tmp_path: Path, monkeypatch, run_id, job_run_id, expected) -> None:
    assert job_run(volume, tmp_path / "disk", "--run-id", run_id, "--job-run-id", job_run_id) == 0
    monkeypatch.setenv("INGEST_RUNS_DIR", str(volume / "runs"))
    [record] = latest_runs()
    assert re.fullmatch(expected, record["run_id"])


def test_a_fresh_cluster_continues_the_incremental_cursor_from_the_destination(volume: Path, tmp_path: Path,
                                                                               capsys) -> None:
    assert job_run(volume, tmp_path / "disk1", "--run-id", "r1") == 0
    assert lake_rows(tmp_path) == 5
    add_orders(tmp_path / "shop.sqlite", 6, 8)
    capsys.readouterr()
    assert job_run(volume, tmp_path / "disk2", "--run-id", "r2") == 0  # another machine: no local state
    assert "restored the dlt state of orders from the destination" in capsys.readouterr().out
    assert lake_rows(tmp_path) == 8  # 3 new rows, none twice


@pytest.mark.parametrize(("earlier", "exit_code", "loads"), [
    ("quality_failed", 2, False), ("partial", 3, False), ("success", 0, False),
    ("failed", 0, True), ("running", 0, True), ("cancelled", 0, True),
])
def test_a_retry_of_the_same_job_run_reloads_only_when_nothing_stands(volume: Path, tmp_path: Path, monkeypatch,
                                                                      capsys, earlier, exit_code, loads) -> None:
    monkeypatch.setenv("INGEST_RUNS_DIR", str(volume / "runs"))
    write_record(RunRecord(run_id="job9-shop", kind="run", source="shop", source_type="sqlite", owner="market-de",
                           destination="lake", destination_type="duckdb", dataset="shop", trigger="job", actor="sp",
                           status=earlier, started_at=datetime.now(UTC), pid=0, host="another-cluster"))
    assert job_run(volume, tmp_path / "disk", "--run-id", "", "--job-run-id", "9") == exit_code
    out = capsys.readouterr().out
    if loads:
        assert lake_rows(tmp_path) == 5 and latest_runs()[0]["status"] == "success"
    else:
        assert f"an earlier attempt of this job run ended {earlier}; not loading again" in out
        assert not (tmp_path / "lake.duckdb").exists()
