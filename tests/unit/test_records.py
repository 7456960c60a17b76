"""Run records: writing, the published schema, and the DuckDB queries over the folder,
including failures, previews, abandoned runs and malformed files."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ingestion_core.common import settings
from ingestion_core.observe.records import (
    ErrorInfo,
    RunRecord,
    TableResult,
    check_history,
    find_record,
    last_table_result,
    last_table_results,
    latest_runs,
    load_record,
    record_path,
    records_connection,
    run_record_schema,
    table_history,
    write_record,
)

REPO = Path(__file__).resolve().parents[2]


def make_record(source: str, status: str, minutes_ago: int, kind: str = "run", **extra) -> RunRecord:
    started = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    table = TableResult(name="orders", mode="full", status="success" if status == "success" else "failed",
                        rows=100 + minutes_ago, quality=[{"check": "not_null", "status": "pass", "observed": 0}])
    record = RunRecord(run_id=f"r{minutes_ago}-{source}", kind=kind, source=source, source_type="sqlite",
                       owner="market-de", destination="local_duckdb", destination_type="duckdb", dataset=source,
                       actor="ana", status=status, started_at=started, tables=[table], **extra)
    return record


def test_write_is_atomic_and_under_a_date_folder(ingest_env: Path) -> None:
    record = make_record("shop", "success", 1)
    path = Path(write_record(record))
    assert path == Path(record_path(record))
    assert path.parent.parent.parent.parent == Path(settings.runs_dir())
    assert RunRecord.model_validate_json(path.read_text()) .run_id == record.run_id
    assert not list(path.parent.glob(".*.tmp"))


def test_queries_filter_and_order(ingest_env: Path) -> None:
    write_record(make_record("shop", "success", 30))
    write_record(make_record("shop", "failed", 20, error=ErrorInfo(error_class="X", message="boom", hint="fix")))
    write_record(make_record("shop", "success", 10, kind="preview"))
    write_record(make_record("crm", "success", 5))
    assert [r["run_id"] for r in latest_runs()] == ["r5-crm", "r10-shop", "r20-shop", "r30-shop"]
    assert [r["run_id"] for r in latest_runs(source="shop", status="failed")] == ["r20-shop"]
    assert latest_runs(source="shop", status="failed")[0]["error"]["hint"] == "fix"
    assert [r["run_id"] for r in latest_runs(kind="preview")] == ["r10-shop"]
    history = table_history("shop", "orders")
    assert [(h["run_id"], h["rows"]) for h in history] == [("r20-shop", 120), ("r30-shop", 130)]
    assert [c["run_id"] for c in check_history("shop", check="not_null")] == ["r10-shop", "r20-shop", "r30-shop"]


def test_queries_share_one_database_and_still_see_every_rewrite(ingest_env: Path) -> None:
    """The queries are cursors of one in-memory DuckDB per process (a new database per query cost
    ~30 ms, ~10 per page draw); a record rewritten or added after a query shows in the next one."""
    with records_connection() as first:
        first.execute("CREATE OR REPLACE TABLE shared_probe AS SELECT 1 AS x")
    with records_connection() as second:
        assert second.execute("SELECT x FROM shared_probe").fetchall() == [(1,)]
        second.execute("DROP TABLE shared_probe")
    record = make_record("shop", "running", 3)
    write_record(record)
    assert [r["status"] for r in latest_runs(source="shop")] == ["running"]
    record.status = "success"
    write_record(record)
    write_record(make_record("shop", "failed", 1))
    assert [(r["run_id"], r["status"]) for r in latest_runs(source="shop")] == [
        ("r1-shop", "failed"), ("r3-shop", "success")]


def test_malformed_files_are_skipped(ingest_env: Path) -> None:
    write_record(make_record("shop", "success", 3))
    broken = Path(settings.runs_dir()) / "2024" / "01" / "01"
    broken.mkdir(parents=True)
    (broken / "broken.json").write_text("{not json")
    (broken / "other.json").write_text(json.dumps({"hello": "world"}))
    assert [r["run_id"] for r in latest_runs()] == ["r3-shop"]


def test_running_record_of_a_dead_process_is_abandoned(ingest_env: Path) -> None:
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    write_record(make_record("shop", "running", 2, pid=dead))
    write_record(make_record("crm", "running", 1))  # this process: alive
    statuses = {r["source"]: r["status"] for r in latest_runs()}
    assert statuses == {"shop": "abandoned", "crm": "running"}


def test_last_table_result_reads_only_the_newest_day_when_the_last_run_is_there(ingest_env: Path,
                                                                                 monkeypatch) -> None:
    """Every table of every run looks up its previous result (schema changes): with a long
    history it must not read every record of the folder (10,000 records: 1.4 s a table)."""
    from ingestion_core.observe import records

    for days in (3, 40, 400):
        write_record(make_record("shop", "success", days * 24 * 60))
    newest = make_record("shop", "success", 1)
    write_record(newest)
    read: list[str] = []
    query = records.query_runs

    def spy(*args, files=None) -> list:
        read.extend(files or [records._glob()])  # None: the whole folder
        return query(*args, **({"files": files} if files else {}))

    monkeypatch.setattr(records, "query_runs", spy)
    assert last_table_result("shop", "orders")[0] == newest.run_id
    assert read == [f"{Path(record_path(newest)).parent}/*.json"]
    read.clear()
    assert [r["run_id"] for r in latest_runs(source="shop", limit=1)] == [newest.run_id]  # the scheduler's ask
    assert read == [f"{Path(record_path(newest)).parent}/*.json"]


def test_latest_runs_newest_days_first_give_the_whole_folders_answers(ingest_env: Path) -> None:
    for days, source, status, kind in [(0, "shop", "success", "run"), (0, "crm", "failed", "run"),
                                       (2, "shop", "failed", "run"), (5, "shop", "success", "preview"),
                                       (20, "crm", "success", "run"), (21, "shop", "failed", "run"),
                                       (400, "shop", "success", "run")]:
        write_record(make_record(source, status, days * 24 * 60 + 1, kind=kind))
    queries = [{"limit": 1}, {"limit": 2}, {"limit": 4}, {}, {"source": "shop", "limit": 3},
               {"source": "shop", "status": "failed"}, {"kind": "preview"}, {"source": "nobody"},
               {"source": "shop", "kind": "run", "limit": 100}]
    for query in queries:
        batched = [r["run_id"] for r in latest_runs(**query)]
        assert batched == [r["run_id"] for r in latest_runs(**query, batched=False)], query
    assert len(latest_runs(limit=100)) == 7


def test_last_table_result_goes_back_day_by_day_within_its_limit(ingest_env: Path) -> None:
    today = make_record("shop", "failed", 1)  # its table failed: not a result to compare with
    excluded = make_record("shop", "success", 2)
    three_days = make_record("shop", "success", 3 * 24 * 60)
    for record in (make_record("shop", "success", 400 * 24 * 60), three_days, excluded, today,
                   make_record("crm", "success", 3), make_record("shop", "success", 4, kind="preview")):
        write_record(record)
    assert last_table_result("shop", "orders", exclude_run_id=excluded.run_id)[0] == three_days.run_id
    assert last_table_result("shop", "orders", exclude_run_id=excluded.run_id, limit=2) is None  # 2 runs seen
    assert last_table_result("shop", "other_table") is None
    assert last_table_result("nobody", "orders") is None


def test_the_last_results_of_a_runs_tables_come_from_one_read_of_the_records(ingest_env: Path,
                                                                             monkeypatch) -> None:
    """Each table's after-load hooks (schema changes, reconciliation) ask for its last result: a
    run reads the records once for all its tables (RunPlan.last_table_result), with the answers
    of one lookup per table."""
    from types import SimpleNamespace

    from ingestion_core.engine.plan import RunPlan
    from ingestion_core.observe import records

    today = make_record("shop", "success", 1)
    today.tables.append(TableResult(name="customers", mode="full", status="failed"))
    three_days = make_record("shop", "success", 3 * 24 * 60)
    three_days.tables.append(TableResult(name="customers", mode="full", status="success", rows=7))
    for record in (make_record("shop", "success", 400 * 24 * 60), three_days, today,
                   make_record("shop", "success", 2, kind="preview")):
        write_record(record)
    tables = ["orders", "customers", "never_loaded"]
    together = last_table_results("shop", tables)
    assert {t: run_id for t, (run_id, _) in together.items()} == {"orders": today.run_id,
                                                                   "customers": three_days.run_id}
    assert together == {t: last_table_result("shop", t) for t in tables if last_table_result("shop", t)}

    reads: list[object] = []
    query = records.query_runs
    monkeypatch.setattr(records, "query_runs", lambda *a, **k: reads.append(k.get("files")) or query(*a, **k))
    this_run = make_record("shop", "running", 0)
    this_run.tables = [TableResult(name=t, mode="full") for t in tables]
    plan = RunPlan(SimpleNamespace(name="shop"), "run", None, Path(), this_run)
    assert [plan.last_table_result(t) for t in tables] == [together.get(t) for t in tables]
    first_read = list(reads)
    assert plan.last_table_result("orders") == together["orders"] and reads == first_read  # no second read
    assert len(first_read) == len([f for f in records.newest_days_first()])  # every batch read once


def test_no_records_folder_gives_no_runs(ingest_env: Path) -> None:
    assert latest_runs() == []


def test_published_schema_is_current() -> None:
    committed = json.loads((REPO / "docs" / "run-record.schema.json").read_text())
    assert committed == run_record_schema(), (
        "docs/run-record.schema.json is stale: regenerate it with "
        "python -c 'import json; from ingestion_core.observe.records import run_record_schema as s; "
        "print(json.dumps(s(), indent=2))' > docs/run-record.schema.json"
    )


def test_records_at_an_fsspec_url_are_written_found_and_loaded(ingest_env: Path, monkeypatch) -> None:
    """One PUT per write on object stores and volumes; find_record / load_record read them back."""
    import fsspec

    monkeypatch.setenv("INGEST_RUNS_DIR", f"memory://runs-{os.getpid()}-{ingest_env.name}")
    record = make_record("shop", "failed", 3, error=ErrorInfo(error_class="Boom", message="it broke"))
    path = write_record(record)
    assert path.startswith("memory://") and path.endswith(f"/{record.run_id}.json")
    assert fsspec.filesystem("memory").exists(path)
    assert load_record(path) == record
    assert find_record(record.run_id) == record and find_record("r999-nope") is None


def test_a_dbfs_volume_path_means_the_volumes_url(monkeypatch) -> None:
    monkeypatch.setenv("INGEST_RUNS_DIR", "dbfs:/Volumes/market_raw/ingest/files/runs")
    assert settings.runs_dir() == "volumes://market_raw/ingest/files/runs"
    monkeypatch.setenv("INGEST_RUNS_DIR", "/Volumes/market_raw/ingest/files/runs")  # a cluster's FUSE mount
    assert settings.runs_dir() == "/Volumes/market_raw/ingest/files/runs"
