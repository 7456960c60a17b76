"""Run control with real processes: a background run followed through its record, one run per
source (portal and CLI alike), cancel of a run mid-way, incremental state reset and the full
refresh of one table."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ingestion_core.cli.main import main
from ingestion_core.config.access import AccessDeniedError
from ingestion_core.config.store import ConfigStore
from ingestion_core.observe.records import FINAL, RunRecord, find_record, write_record
from ingestion_core.pipeline.run_control import (
    RunControlError,
    RunInProgressError,
    active_run,
    cancel_run,
    lock_holder,
    reset_state,
    source_lock,
    start_run,
    table_states,
)
from ingestion_core.pipeline.runner import run_source

SLOW_ROWS = 500_000  # read row by row (sqlalchemy, chunks of 100: ~30 s here), far longer than cancelling takes


def wait_for(condition: Callable[[], Any], what: str, timeout_s: float = 180.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def ended(run_id: str) -> RunRecord | None:
    record = find_record(run_id)
    return record if record and record.status in FINAL else None


def landed(project: Path, table: str, dataset: str = "shop") -> int:
    with duckdb.connect(str(project / ".ingest" / "local_duckdb.duckdb"), read_only=True) as con:
        return con.execute(f"SELECT count(*) FROM {dataset}.{table}").fetchone()[0]


@pytest.fixture
def shop(ingest_env: Path) -> Path:
    """orders: incremental from 2024-01-10 (201 of its 300 rows qualify); customers: full."""
    with sqlite3.connect(ingest_env / "shop.sqlite") as con:
        con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, amount REAL, updated_at TEXT)")
        con.executemany("INSERT INTO orders VALUES (?, ?, ?)",
                        [(i, i / 2, f"2024-01-{i % 28 + 1:02d}") for i in range(300)])
        con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        con.executemany("INSERT INTO customers VALUES (?, ?)", [(i, f"c{i}") for i in range(40)])
    (ingest_env / "configs" / "sources" / "shop.yaml").write_text(
        "name: shop\nowner: market-de\nsource: {type: sqlite, path: shop.sqlite}\nretries: {attempts: 1}\n"
        "tables:\n"
        "  - {name: orders, mode: incremental, cursor: updated_at, initial_value: '2024-01-10'}\n"
        "  - {name: customers, mode: full}\n"
    )
    return ingest_env


def shop_config() -> Any:
    return ConfigStore().load_source("shop").config


@pytest.fixture
def slow(ingest_env: Path) -> Path:
    """events: 1,000 rows loaded by a first run, then SLOW_ROWS more that a second run reads slowly."""
    with sqlite3.connect(ingest_env / "slow.sqlite") as con:
        con.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, payload TEXT)")
        insert_events(con, 1, 1000)
    (ingest_env / "configs" / "sources" / "slow.yaml").write_text(
        "name: slow\nowner: market-de\nsource: {type: sqlite, path: slow.sqlite}\nretries: {attempts: 1}\n"
        "tables:\n  - {name: events, mode: incremental, cursor: id, backend: sqlalchemy, chunk_size: 100}\n"
    )
    first = run_source(ConfigStore().load_source("slow").config, actor="ana")
    assert first.status == "success" and first.rows_total == 1000
    with sqlite3.connect(ingest_env / "slow.sqlite") as con:
        insert_events(con, 1001, 1000 + SLOW_ROWS)
    return ingest_env


def insert_events(con: sqlite3.Connection, first: int, last: int) -> None:
    con.execute(f"WITH RECURSIVE n(i) AS (SELECT {first} UNION ALL SELECT i + 1 FROM n WHERE i < {last}) "
                "INSERT INTO events SELECT i, 'event ' || i FROM n")


# --- background runs -----------------------------------------------------------------------

def test_background_run_is_followed_to_success_through_its_record(shop: Path) -> None:
    run_id = start_run("shop", actor="ana")
    record = wait_for(lambda: ended(run_id), "the background run to end")
    assert record.status == "success", record.error
    assert (record.trigger, record.actor, record.kind) == ("portal", "ana", "run")
    assert {t.name: t.rows for t in record.tables} == {"orders": 201, "customers": 40}
    assert landed(shop, "orders") == 201
    wait_for(lambda: lock_holder("shop") is None, "the run to release the source")
    assert active_run("shop") is None


def test_start_run_refuses_unknown_tables_before_starting_anything(shop: Path) -> None:
    with pytest.raises(RunControlError, match="no enabled table named ordrs; its tables are orders, customers"):
        start_run("shop", actor="ana", tables=["ordrs"])
    with pytest.raises(RunControlError, match="cannot refresh customers: this run of shop loads only orders"):
        start_run("shop", actor="ana", tables=["orders"], refresh_tables=["customers"])
    assert lock_holder("shop") is None and not (shop / "runs").exists()


def test_second_run_is_refused_and_cancel_mid_way_leaves_earlier_data(slow: Path, capsys) -> None:
    run_id = start_run("slow", actor="ana")
    wait_for(lambda: (r := find_record(run_id)) and r.tables and r.tables[0].status == "running",
             "the background run to read events")
    assert active_run("slow").run_id == run_id
    pid = lock_holder("slow")["pid"]
    assert os.getsid(pid) == pid  # a session of its own: closing the portal (or its terminal) does not end it

    with pytest.raises(RunInProgressError) as refused:  # the portal's second click
        start_run("slow", actor="bob")
    assert refused.value.run_id == run_id and refused.value.source == "slow"
    assert f"ingest cancel {run_id}" in str(refused.value)
    assert main(["run", "slow"]) == 1  # the CLI (and so a Databricks job) respects the same lock
    err = capsys.readouterr().err
    assert f"run {run_id}" in err and "already running" in err

    record = cancel_run(run_id, actor="ops")
    assert record.status == "cancelled", record
    assert [t.status for t in record.tables] == ["cancelled"]
    assert record.error.message == "cancelled by ops"
    assert find_record(run_id).status == "cancelled"
    assert landed(slow, "events", "slow") == 1000  # the earlier successful run's rows, unharmed
    assert lock_holder("slow") is None and active_run("slow") is None
    with pytest.raises(RunControlError, match=rf"run {run_id} has already ended \(cancelled"):
        cancel_run(run_id, actor="ops")
    audit = [json.loads(line) for line in (slow / ".ingest" / "audit" / "run_control.jsonl").read_text().splitlines()]
    assert {"actor": "ops", "action": "cancel", "source": "slow", "run_id": run_id}.items() <= audit[-1].items()


def test_cancel_of_an_unknown_or_dead_run_is_a_clear_error(shop: Path) -> None:
    with pytest.raises(RunControlError, match=r"no run with id 'nope'.*`ingest runs` lists the runs"):
        cancel_run("nope", actor="ops")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    record = RunRecord(run_id="20240101T000000-shop-dead00", kind="run", source="shop", source_type="sqlite",
                       owner="market-de", destination="local_duckdb", destination_type="duckdb", dataset="shop",
                       actor="ana", started_at=datetime.now(UTC), pid=int(gone.stdout))
    write_record(record)
    with pytest.raises(RunControlError, match=r"is no longer running: its process .* is gone"):
        cancel_run(record.run_id, actor="ops")
    assert find_record(record.run_id).status == "running"  # left as it was: reported as abandoned


def test_a_run_in_progress_error_names_the_run_holding_the_lock(shop: Path) -> None:
    with source_lock("shop", run_id="20240101T000000-shop-held00"):
        assert lock_holder("shop")["run_id"] == "20240101T000000-shop-held00"
        with pytest.raises(RunInProgressError, match=r"run 20240101T000000-shop-held00 .*ingest cancel"):
            run_source(shop_config(), actor="bob")
    assert lock_holder("shop") is None
    assert run_source(shop_config(), actor="bob").status == "success"


# --- incremental state ---------------------------------------------------------------------

def test_reset_state_then_the_next_run_reloads_from_initial_value(shop: Path) -> None:
    config = shop_config()
    first = run_source(config, actor="ana", tables=["orders"])
    assert first.tables[0].rows == 201
    assert run_source(config, actor="ana", tables=["orders"]).tables[0].rows == 0  # nothing new
    orders = next(s for s in table_states(config) if s.table == "orders")
    assert (orders.mode, orders.cursor, orders.cursor_value, orders.initial_value) == (
        "incremental", "updated_at", "2024-01-28", "2024-01-10")
    assert orders.last_run_id and orders.last_success_at

    reset_state(config, "orders", actor="ana")
    assert next(s for s in table_states(config) if s.table == "orders").cursor_value is None
    again = run_source(config, actor="ana", tables=["orders"])
    assert again.tables[0].rows == 201  # reloaded from initial_value
    assert landed(shop, "orders") == 402  # appended again: the reset keeps the loaded rows
    assert next(s for s in table_states(config) if s.table == "orders").cursor_value == "2024-01-28"
    audit = (shop / ".ingest" / "audit" / "run_control.jsonl").read_text().splitlines()
    assert {"actor": "ana", "action": "reset-state", "source": "shop", "table": "orders"}.items() <= \
        json.loads(audit[-1]).items()


def test_reset_state_refuses_a_held_source_and_tables_without_a_cursor(shop: Path) -> None:
    config = shop_config()
    run_source(config, actor="ana")
    with source_lock("shop", run_id="20240101T000000-shop-held00"), \
            pytest.raises(RunInProgressError, match="20240101T000000-shop-held00"):
        reset_state(config, "orders", actor="ana")
    with pytest.raises(RunControlError, match=r"shop has no incremental state for 'customers'.*cursor\): orders"):
        reset_state(config, "customers", actor="ana")
    with pytest.raises(RunControlError, match=r"shop has no table 'ordrs'.*cursor\): orders"):
        reset_state(config, "ordrs", actor="ana")
    assert next(s for s in table_states(config) if s.table == "orders").cursor_value == "2024-01-28"


def test_full_refresh_of_one_table_drops_it_and_loads_it_again(shop: Path) -> None:
    config = shop_config()
    run_source(config, actor="ana")
    with sqlite3.connect(shop / "shop.sqlite") as con:
        con.execute("DELETE FROM orders WHERE id < 100")  # a plain incremental run never sees deletions
        con.execute("INSERT INTO customers VALUES (100, 'late')")
        expected = con.execute("SELECT count(*) FROM orders WHERE updated_at >= '2024-01-10'").fetchone()[0]
    refreshed = run_source(config, actor="ana", refresh_tables=["orders"])
    assert refreshed.status == "success"
    assert [(t.name, t.rows) for t in refreshed.tables] == [("orders", expected)]  # only the refreshed table ran
    assert landed(shop, "orders") == expected
    assert landed(shop, "customers") == 40  # untouched
    assert next(s for s in table_states(config) if s.table == "orders").cursor_value == "2024-01-28"



def test_rows_the_table_refuses_fail_each_run_until_a_full_refresh_of_it(ingest_env: Path) -> None:
    """The source relaxed a NOT NULL column and sent an empty value: the destination table (created
    NOT NULL) refuses the package, which dlt keeps and every later run loads first, so every run
    failed, the full refresh that fixes it included. The failure names the refresh; the refresh
    drops the package and loads the table again; the rows loaded before stay until then."""
    database = ingest_env / "crm.sqlite"
    with sqlite3.connect(database) as con:
        con.execute("CREATE TABLE contacts (id INTEGER NOT NULL, name TEXT NOT NULL)")
        con.execute("INSERT INTO contacts VALUES (1, 'ana')")
    (ingest_env / "configs" / "sources" / "crm.yaml").write_text(
        "name: crm\nowner: market-de\nsource: {type: sqlite, path: crm.sqlite}\nretries: {attempts: 1}\n"
        "tables: [{name: contacts, mode: append}]\n")
    config = ConfigStore().load_source("crm").config
    assert run_source(config, actor="ana").status == "success"
    with sqlite3.connect(database) as con:  # names may be empty now
        con.execute("ALTER TABLE contacts RENAME TO old")
        con.execute("CREATE TABLE contacts (id INTEGER NOT NULL, name TEXT)")
        con.execute("INSERT INTO contacts VALUES (2, NULL)")

    refused = run_source(config, actor="ana")
    assert refused.status == "failed" and "NOT NULL constraint failed" in refused.tables[0].error.message
    assert "a full refresh of the table" in refused.tables[0].error.hint
    again = run_source(config, actor="ana").tables[0].error
    assert again.message.startswith("contacts: the rows a previous run read could not be loaded")
    assert "NOT NULL constraint failed" in again.message and "`ingest run crm --refresh contacts`" in again.hint
    assert landed(ingest_env, "contacts", "crm") == 1  # what loaded before stays

    refreshed = run_source(config, actor="ana", refresh_tables=["contacts"])
    assert refreshed.status == "success", refreshed.tables[0].error
    with duckdb.connect(str(ingest_env / ".ingest" / "local_duckdb.duckdb"), read_only=True) as con:
        assert con.execute("SELECT id, name FROM crm.contacts").fetchall() == [(2, None)]
    assert run_source(config, actor="ana").status == "success"

def test_a_run_deaf_to_sigterm_is_killed_and_recorded_as_cancelled(slow: Path) -> None:
    """A process that ignores SIGTERM (here: run_source called by a script without the CLI's
    handler) is killed after the grace period, and cancel writes its record."""
    script = textwrap.dedent("""
        import signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        from ingestion_core.config.store import ConfigStore
        from ingestion_core.pipeline.runner import run_source
        run_source(ConfigStore().load_source("slow").config, actor="script", trigger="test")
    """)
    child = subprocess.Popen([sys.executable, "-c", script], env=os.environ.copy(), cwd=slow,
                             start_new_session=True)
    try:
        holder = wait_for(lambda: lock_holder("slow"), "the script to take the source")
        run_id = holder["run_id"]
        wait_for(lambda: (r := find_record(run_id)) and r.tables and r.tables[0].status == "running",
                 "the script's run to read events")
        record = cancel_run(run_id, actor="ops", grace_s=1.0)
        assert child.wait(timeout=60) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
    assert record.status == "cancelled" and [t.status for t in record.tables] == ["cancelled"]
    assert record.ended_at and record.error.message == "cancelled by ops"
    assert find_record(run_id).status == "cancelled"
    assert landed(slow, "events", "slow") == 1000


# --- who may run ---------------------------------------------------------------------------

def test_other_teams_can_neither_start_cancel_nor_reset_and_each_refusal_is_recorded(shop: Path) -> None:
    (shop / "configs" / "teams.yaml").write_text(
        "version: 1\nadmins: [lead]\nteams:\n  market-de: {members: [ana]}\n  market-fr: {members: [claire]}\n",
        encoding="utf-8")
    with pytest.raises(AccessDeniedError, match=r"claire .*shop.*market-de"):
        start_run("shop", actor="claire")
    assert lock_holder("shop") is None and not (shop / "runs").exists()  # nothing started
    with pytest.raises(AccessDeniedError):
        reset_state(shop_config(), "orders", actor="claire")
    with source_lock("shop", run_id="20240101T000000-shop-held01"):
        record = RunRecord(run_id="20240101T000000-shop-held01", kind="run", source="shop", source_type="sqlite",
                           owner="market-de", destination="local_duckdb", destination_type="duckdb",
                           dataset="shop", actor="ana", started_at=datetime.now(UTC), pid=os.getpid())
        write_record(record)
        with pytest.raises(AccessDeniedError):
            cancel_run(record.run_id, actor="claire")
        assert find_record(record.run_id).status == "running"
    audit = shop / ".ingest" / "audit" / "config_changes.jsonl"
    denied = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [(d["actor"], d["action"], d["outcome"]) for d in denied] == [("claire", "run", "denied")] * 3
    run_id = start_run("shop", actor="ana")  # the owner team may
    assert wait_for(lambda: ended(run_id), "the owner's run to end").status == "success"


def test_reading_states_never_touches_a_pipeline_folder_a_first_run_is_creating(shop: Path) -> None:
    folder = shop / ".ingest" / "pipelines" / "shop__orders"
    (folder / "load").mkdir(parents=True)  # a first run in another process has started, no state.json yet
    (folder / "load" / "marker").write_text("in flight")
    orders = next(s for s in table_states(shop_config()) if s.table == "orders")
    assert orders.cursor_value is None
    assert (folder / "load" / "marker").read_text() == "in flight"  # dlt.attach would have wiped the folder
