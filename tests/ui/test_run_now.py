"""Real runs from the Test & run page, headless with AppTest: Run now starts a background
``ingest run`` that the page follows to success; Cancel stops a run mid-way, recorded as
cancelled with the destination unharmed; an incremental table's state is reset after a
confirmation and the next run reloads it; every action carries the acting user."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from ingestion_core.config.store import ConfigStore
from ingestion_core.observe.records import find_record
from ingestion_core.pipeline import run_control
from tests.http_api import ApiServer, running_api
from tests.integration import test_demo_sources
from tests.ui.test_test_run import open_tab
from tests.ui.test_wizard import REPO, ok, outcomes, unescape

demo = test_demo_sources.demo  # a fixture: the demo sources and their data in the project folder

PAGE = REPO / "pages" / "source.py"
START_S = 180.0  # a loaded machine takes a while to start the `ingest run` child
ACTOR = "ana@example.com"


@pytest.fixture(autouse=True)
def no_run_left(ingest_env: Path) -> Iterator[None]:
    """A failed test must not leave a background run going: it is cancelled."""
    yield
    for lock in (ingest_env / ".ingest" / "locks").glob("*.lock"):
        record = run_control.active_run(lock.stem)
        if record is not None:
            run_control.cancel_run(record.run_id, actor="test-teardown")


def open_page(source: str) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=START_S)
    at.user = {"is_logged_in": True, "email": ACTOR}  # the acting user every action records
    at.query_params["source"] = source
    return ok(at.run())


def press(at: AppTest, key: str) -> AppTest:
    return ok(at.button(key=key).click().run(timeout=START_S))


def until(condition: Callable[[], Any], what: str, timeout: float = START_S) -> Any:
    """Poll ``condition`` until it is truthy (never an upper bound asserted on time: a timeout fails)."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
    return value


def follow_to_end(at: AppTest, source: str) -> AppTest:
    until(lambda: run_control.active_run(source) is None, f"the run of {source} to end")
    return ok(at.run())


def messages(at: AppTest, kind: str) -> list[str]:
    return [unescape(e.value) for e in getattr(at, kind)]


def landed(project: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(project / ".ingest" / "local_duckdb.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def audit_lines(project: Path) -> list[dict]:
    log = project / ".ingest" / "audit" / "run_control.jsonl"
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] if log.exists() else []


def test_run_now_is_followed_live_to_success(demo: Path) -> None:
    at = open_page("demo_shop")
    assert [t.label for t in at.tabs][:5] == ["Status", "Runs", "Schema", "Settings", "History"]
    at = press(open_tab(at, "Status"), "run-now")
    run_id = at.session_state["run-last"][1]
    assert any(f"{ACTOR} started a run of demo_shop: run {run_id}" in m for m in messages(at, "success"))
    record = find_record(run_id)
    assert record.trigger == "portal" and record.actor == ACTOR and record.kind == "run"

    at = follow_to_end(at, "demo_shop")
    record = find_record(run_id)
    assert record.status == "success", record.error
    label, state = next(box for box in outcomes(at) if run_id in box[0])
    assert state == "complete" and "success" in label
    assert f"history?run={run_id}" in " ".join(m.value for m in at.markdown)  # its page in Run history
    assert any(run_id in c.value for c in at.caption) and at.code[0].value  # the log excerpt
    orders = landed(demo, "SELECT count(*) FROM demo_shop.orders")[0][0]
    assert orders == {t.name: t.rows for t in record.tables}["orders"] > 0


@pytest.fixture
def slow_api() -> Iterator[ApiServer]:
    with running_api(250, slow_seconds=120.0, slow_from_page=2) as api:
        yield api


def test_cancel_stops_the_run_and_leaves_the_destination_whole(ingest_env: Path, slow_api: ApiServer) -> None:
    source = {"type": "rest_api", "base_url": f"{slow_api.url}/", "timeout_seconds": 300,
              "paginator": {"type": "offset", "limit": 100, "total_path": "total"}}
    (ingest_env / "configs" / "sources" / "api.yaml").write_text(
        f"name: api\nowner: market-de\nsource: {json.dumps(source)}\nworkers: {{tables_in_parallel: 2}}\n"
        "tables:\n  - {name: quick, path: offset/items}\n  - {name: stuck, path: slow/offset/items}\n",
        encoding="utf-8")
    at = press(open_page("api"), "run-now")
    run_id = at.session_state["run-last"][1]
    def quick_loaded_stuck_waiting() -> bool:
        record = find_record(run_id)
        assert record.status == "running", (record.status, record.error)  # ended early: fail now, not at the timeout
        return {t.name: t.status for t in record.tables} == {"quick": "success", "stuck": "running"}

    until(quick_loaded_stuck_waiting, "quick to load while stuck waits on its second page")
    ok(at.run())
    assert at.status[0].state == "running" and run_id in at.status[0].label
    at = press(at, "run-cancel")

    record = find_record(run_id)
    assert record.status == "cancelled" and run_control.active_run("api") is None
    assert {t.name: t.status for t in record.tables} == {"quick": "success", "stuck": "cancelled"}
    assert any(f"Run {run_id} was cancelled by {ACTOR}." in m for m in messages(at, "success"))
    assert not any("(cancelled)" in m for m in messages(at, "success"))  # said once
    _, state = next(box for box in outcomes(at) if run_id in box[0])  # the last run's box
    assert state == "cancelled" and not at.error  # a cancel is not a failure: who stopped it, as info
    assert landed(ingest_env, "SELECT count(*), count(DISTINCT id) FROM api.quick") == [(250, 250)]
    assert not landed(ingest_env, "SELECT * FROM information_schema.tables WHERE table_name = 'stuck'")
    assert {"actor": ACTOR, "action": "cancel", "run_id": run_id}.items() <= audit_lines(ingest_env)[-1].items()
    assert "run-now" in [b.key for b in at.button]  # the source is free again


def test_state_reset_with_confirmation_then_the_next_run_reloads(demo: Path) -> None:
    at = press(open_page("demo_shop"), "run-now")
    at = open_tab(follow_to_end(at, "demo_shop"), "Settings")
    with sqlite3.connect(demo / "demo" / "data" / "shop.sqlite") as con:
        total, newest = con.execute("SELECT count(*), max(updated_at) FROM orders").fetchone()
    states = {row["table"]: row for row in state_rows(at)}
    assert states["orders"]["cursor"] == "updated_at" and states["orders"]["current value"].startswith(newest[:10])
    assert states["orders"]["initial value"] == "2023-01-01" and states["orders"]["run id"]

    ok(at.selectbox(key="state-pick").select("orders").run())
    at = press(at, "state-reset")
    assert "Reset the incremental state of **orders**?" in at.warning[0].value
    at = press(at, "state-confirm-no")  # changed my mind: nothing happens
    assert {r["table"]: r for r in state_rows(at)}["orders"]["current value"].startswith(newest[:10])

    at = press(at, "state-reset")
    at = press(at, "state-confirm-yes")
    assert any(f"{ACTOR} reset the incremental state of demo_shop.orders" in m for m in messages(at, "success"))
    assert {r["table"]: r for r in state_rows(at)}["orders"]["current value"] is None
    assert {"actor": ACTOR, "action": "reset-state", "table": "orders"}.items() <= audit_lines(demo)[-1].items()

    at = press(open_tab(at, "Status"), "run-now")
    run_id = at.session_state["run-last"][1]
    follow_to_end(at, "demo_shop")
    reloaded = {t.name: t.rows for t in find_record(run_id).tables}
    assert reloaded["orders"] == total  # from initial_value again, not only what changed since


def state_rows(at: AppTest) -> list[dict]:
    blocks = [at.main]
    while blocks:
        block = blocks.pop()
        if str(getattr(block.proto, "id", "")).endswith("-state-table-grid"):
            return block.dataframe[0].value.to_dict("records")
        blocks += [c for c in getattr(block, "children", {}).values() if hasattr(c, "children")]
    raise AssertionError("no state grid")


def test_the_state_table_lists_every_table(demo: Path) -> None:
    rows = state_rows(open_tab(open_page("demo_shop"), "Settings"))
    config = ConfigStore().load_source("demo_shop").config
    assert [r["table"] for r in rows] == [t.name for t in config.enabled_tables()]
    assert all(r["current value"] is None and r["run id"] is None for r in rows)  # never run yet
    at = open_tab(open_page("demo_shop"), "Settings")
    ok(at.selectbox(key="state-pick").select("customers").run())
    assert at.button(key="state-reset").disabled  # a merge table keeps no cursor to reset


def test_only_the_owner_team_may_run(demo: Path) -> None:
    (demo / "configs" / "teams.yaml").write_text(
        "version: 1\nadmins: [lead@example.com]\nteams:\n  market-de: {members: [ana@example.com]}\n",
        encoding="utf-8")
    at = open_page("demo_files")  # owned by data-ops: ana may look, not run
    for key in ("test-run", "run-now"):
        assert at.button(key=key).disabled, key
    assert "ana@example.com may not run demo_files: it belongs to team data-ops" in at.button(key="run-now").help
    assert open_tab(at, "Settings").button(key="state-refresh").disabled
    at = open_page("demo_shop")  # market-de's own source
    assert not at.button(key="test-run").disabled and not at.button(key="run-now").disabled


def test_full_refresh_of_one_table_after_a_confirmation(demo: Path) -> None:
    at = open_tab(follow_to_end(press(open_page("demo_shop"), "run-now"), "demo_shop"), "Settings")
    with sqlite3.connect(demo / "demo" / "data" / "shop.sqlite") as con:
        total = con.execute("SELECT count(*) FROM orders").fetchone()[0]
    ok(at.selectbox(key="state-pick").select("orders").run())
    at = press(at, "state-refresh")
    assert "Full refresh of **orders**?" in at.warning[0].value
    at = press(at, "state-confirm-yes")
    started = next(m for m in messages(at, "success") if "started a full refresh of orders" in m)
    run_id = started.split("run ")[-1].split(".")[0].split(";")[0]
    follow_to_end(at, "demo_shop")
    record = find_record(run_id)
    assert record.status == "success" and record.actor == ACTOR
    assert [(t.name, t.rows) for t in record.tables] == [("orders", total)]  # only that table, in full
    assert landed(demo, "SELECT count(*) FROM demo_shop.orders") == [(total,)]  # dropped first: no doubles


def test_a_running_table_shows_its_rows_so_far(ingest_env: Path) -> None:
    # page 2 answers after 1.5 s (past the 1 s between publishes), page 3 waits for the test: the
    # record surely shows the table part-read, and stays so until the test lets the run go on
    with running_api(250, slow_seconds=1.5, slow_from_page=2, hold_from_page=3) as api:
        source = {"type": "rest_api", "base_url": f"{api.url}/",
                  "paginator": {"type": "offset", "limit": 100, "total_path": "total"}}
        (ingest_env / "configs" / "sources" / "api.yaml").write_text(
            f"name: api\nowner: market-de\nsource: {json.dumps(source)}\n"
            "tables:\n  - {name: items, path: slow/offset/items}\n", encoding="utf-8")
        at = press(open_page("api"), "run-now")
        run_id = at.session_state["run-last"][1]

        def part_read() -> int:
            record = find_record(run_id)
            assert record.status == "running", (record.status, record.error)
            return record.tables[0].rows_so_far if 0 < record.tables[0].rows_so_far < 250 else 0

        so_far = until(part_read, "the record to show the table part-read")
        ok(at.run())
        shown = live_grid(at).set_index("table").loc["items", "records"]
        assert so_far <= shown < 250 and at.status[0].state == "running"
        api.release.set()
        record = until(lambda: (r := find_record(run_id)).status != "running" and r, "the run to end")
    items = record.tables[0]
    assert (record.status, items.records, items.rows_so_far) == ("success", 250, 250), record.error


def live_grid(at: AppTest) -> Any:
    from tests.ui.test_test_run import grid

    return grid(at, "run-live-tables")
