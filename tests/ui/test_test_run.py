"""The Test & run page's Test run, headless with AppTest: a demo source and a PostgreSQL table are
previewed in the background and followed; the rows shown are the rows in the preview DuckDB (read
again here with duckdb), with the landed schema, what changed since the previous test run, the
quality checks and errors with what to do. A second click while one runs starts nothing."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from ingestion_core.engine.destinations.duckdb import preview_database
from ingestion_core.observe.records import find_record
from portal.sources import preview_jobs, source_home, test_run
from tests.http_api import running_api
from tests.integration import test_demo_sources
from tests.integration.test_engine_postgres import write_source as pg_source
from tests.ui.test_wizard import REPO, click, ok, outcomes, unescape, write_source

demo = test_demo_sources.demo  # a fixture: the demo sources and their data in the project folder

PAGE = REPO / "pages" / "source.py"
WAIT_S = 120


@pytest.fixture(autouse=True)
def no_test_run_left() -> Iterator[None]:
    """A failed test must not leave a test run writing on after its folders are gone."""
    yield
    for job in preview_jobs.running():
        job.wait(WAIT_S)


def open_page(source: str | None = None) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=30)
    if source:
        at.query_params["source"] = source
    return ok(at.run())


def open_tab(at: AppTest, tab: str) -> AppTest:
    """Open one of the source home's tabs (a click on it): only the open tab is drawn."""
    at.session_state[source_home.TAB_KEY] = tab
    return ok(at.run())


def open_table(at: AppTest, source: str, table: str) -> AppTest:
    """Open a table's tab in the test run's results: only the open table's details are drawn."""
    at.session_state[test_run.table_tab_key(source)] = table
    return ok(at.run())


def finish(at: AppTest, source: str) -> AppTest:
    """Wait for the background test run to end, then redraw the page."""
    job = preview_jobs.current(source)
    assert job is not None, "no test run was started"
    assert job.wait(WAIT_S), "the test run did not end"
    return ok(at.run())


def grid(at: AppTest, key: str) -> pd.DataFrame:
    """The data grid in the container keyed ``key``."""
    blocks = [at.main]
    while blocks:
        block = blocks.pop()
        if str(getattr(block.proto, "id", "")).endswith(f"-{key}"):
            return block.dataframe[0].value
        blocks += [c for c in getattr(block, "children", {}).values() if hasattr(c, "children")]
    raise AssertionError(f"no data grid keyed {key}")


def preview_rows(source: str, dataset: str, table: str) -> pd.DataFrame:
    """The table as it landed in the source's preview DuckDB, read independently of the portal."""
    with duckdb.connect(str(preview_database(source)), read_only=True) as con:
        rows = con.execute(f'SELECT * FROM "{dataset}"."{table}"').to_arrow_table().to_pandas()
    return rows[[c for c in rows.columns if not c.startswith("_dlt")]]


def text(at: AppTest) -> str:
    parts = [str(getattr(e, "value", "")) for kind in ("markdown", "caption", "error", "warning", "info", "success")
             for e in getattr(at, kind)]
    return unescape("\n".join(parts))


def as_rows(frame: pd.DataFrame) -> set[tuple[str, ...]]:
    """Rows compared as text (the grid goes through Arrow, DuckDB's frame does not)."""
    return {tuple("" if pd.isna(v) else str(v) for v in row) for row in frame.itertuples(index=False)}


def test_demo_source_test_run_shows_rows_schema_and_checks(demo: Path) -> None:
    at = open_page("demo_shop")
    assert at.selectbox(key="source-pick").value == "demo_shop"
    click(at, "test-run")
    assert at.button(key="test-run").disabled  # a second click cannot start another run
    assert at.status[0].state == "running" and "Test run of demo_shop" in at.status[0].label
    at = finish(at, "demo_shop")

    record = preview_jobs.current("demo_shop").record
    assert record.kind == "preview" and record.trigger == "portal" and record.limit == 1000
    assert outcomes(at)[0][1] == "complete" and not at.status  # the finished box: no st.status (it sleeps)
    overview = grid(at, "test-run-overview").set_index("table")
    assert list(overview.index) == ["customers", "orders", "order_items", "products"]
    with pytest.raises(AssertionError):  # only the open table (the first) is drawn
        grid(at, "test-run-orders-sample")
    for table in record.tables:
        landed = preview_rows("demo_shop", "demo_shop", table.name)
        assert overview.loc[table.name, "rows"] == len(landed) == table.rows > 0
        shown = grid(open_table(at, "demo_shop", table.name), f"test-run-{table.name}-sample")
        assert len(shown) == min(100, len(landed))
        assert list(shown.columns) == list(landed.columns)
        assert as_rows(shown) <= as_rows(landed)  # every row shown is a row of the preview DuckDB
        assert overview.loc[table.name, "checks failed"] == 0 and overview.loc[table.name, "checks passed"] > 0
    schema = grid(open_table(at, "demo_shop", "orders"), "test-run-orders-schema").set_index("column")
    assert schema.loc["order_id", "type"] == "bigint" and schema.loc["updated_at", "nullable"] == False  # noqa: E712
    checks = grid(at, "test-run-orders-checks")
    assert set(checks["status"]) == {"pass"} and "unique" in " ".join(checks["check"])
    assert "The first test run of this table" in text(at)



def test_a_test_run_clicked_as_the_picker_changes_runs_the_new_pick(demo: Path) -> None:
    """The source home's picker moved and Test run clicked in one rerun request (the button still
    the previous source's): the test run is the new pick's, the one the page then shows."""
    at = open_page("demo_files")
    at.selectbox(key="source-pick").select("demo_shop")
    click(at, "test-run")
    assert at.title[0].value == "demo_shop" and preview_jobs.current("demo_files") is None
    finish(at, "demo_shop")


def test_cancel_stops_a_test_run_at_its_next_page_and_says_who(ingest_env: Path) -> None:
    """Cancel while the API holds page 2: once it answers, the table stops (no page 3 is asked
    for), the run is recorded as cancelled by the acting user and the page says so."""
    from tests.ui.test_run_now import until  # (that module imports this one)

    with running_api(5000, slow_from_page=2, slow_seconds=0, hold_from_page=2) as api:
        source = {"type": "rest_api", "base_url": f"{api.url}/",
                  "paginator": {"type": "offset", "limit": 10, "total_path": "total"}}
        write_source(ingest_env, "api", f"name: api\nowner: market-de\nsource: {json.dumps(source)}\n"
                                        "tables: [{name: items, path: slow/offset/items}]\n")
        at = open_page("api")
        at.user = {"is_logged_in": True, "email": "ana@example.com"}
        click(at, "test-run")
        job = preview_jobs.current("api")
        pages = lambda: [r.params.get("offset") for r in api.log_for("/slow/offset/items")]  # noqa: E731
        until(lambda: "10" in pages(), "the test run to ask for page 2")
        ok(at.run())
        assert at.status[0].state == "running" and not at.button(key="test-run-cancel").disabled
        click(at, "test-run-cancel")
        assert "cancelling" in at.status[0].label and at.button(key="test-run-cancel").disabled
        api.release.set()
        assert job.wait(WAIT_S)
        assert pages() == ["0", "10"]  # stopped at the page after the cancel

    record = job.record
    assert record.status == "cancelled" and [t.status for t in record.tables] == ["cancelled"]
    assert record.error.message == "cancelled by ana@example.com"
    written = find_record(record.run_id)
    assert written.status == "cancelled" and written.error.message == "cancelled by ana@example.com"
    ok(at.run())
    label, state = outcomes(at)[0]
    assert state == "cancelled" and not at.error  # neither done (a tick) nor failed (red): who stopped it, as info
    assert label.startswith("Test run of api: cancelled") and "cancelled by ana@example.com" in text(at)
    assert not at.button(key="test-run").disabled  # it can run again

def test_a_second_test_run_shows_what_changed_in_the_schema(demo: Path) -> None:
    at = open_page("demo_shop")
    click(at, "test-run")
    at = finish(at, "demo_shop")
    first = preview_jobs.current("demo_shop").record.run_id
    with sqlite3.connect(demo / "demo" / "data" / "shop.sqlite") as con:
        con.execute("ALTER TABLE products ADD COLUMN colour TEXT DEFAULT 'blue'")
    click(at, "test-run")  # the page draws the run's progress; not again until it ended
    second = preview_jobs.current("demo_shop")
    assert second.wait(WAIT_S) and second.previous_read.wait(5)  # read beside the run, not when the rows are drawn
    assert second.previous()["run_id"] == first and second.record.run_id != first
    at = finish(at, "demo_shop")

    schema = grid(open_table(at, "demo_shop", "products"), "test-run-products-schema").set_index("column")
    assert schema.loc["colour", "change"] == "new" and schema.loc["colour", "type"] == "text"
    assert set(schema.drop(index="colour")["change"]) == {""}
    assert f"1 column(s) changed since the previous test run `{first}`" in text(at)
    open_table(at, "demo_shop", "orders")  # the other tables
    assert f"Same columns and types as the previous test run `{first}`" in text(at)


def test_one_test_run_per_source_across_sessions(ingest_env: Path) -> None:
    # an API whose second page takes 3 s: the test run is surely still going while a second
    # session opens the page and a second start is tried
    with running_api(250, slow_seconds=3.0, slow_from_page=2) as api:
        source = {"type": "rest_api", "base_url": f"{api.url}/",
                  "paginator": {"type": "offset", "limit": 100, "total_path": "total"}}
        write_source(ingest_env, "api", f"name: api\nowner: market-de\nsource: {json.dumps(source)}\n"
                     "tables:\n  - {name: items, path: slow/offset/items}\n")
        first, second = open_page("api"), open_page("api")
        click(first, "test-run")
        job = preview_jobs.current("api")
        ok(second.run())
        assert job.running, "the slow page should keep the test run going"
        assert second.button(key="test-run").disabled and second.status[0].state == "running"
        again, started = preview_jobs.start_preview("api", actor="someone-else")
        assert again is job and not started
        finish(second, "api")
    previews = list((ingest_env / "runs").glob("*/*/*/*-api-*.json"))
    assert len(previews) == 1 and job.record.status == "success", job.record.error
    assert grid(second, "test-run-items-sample").shape[0] == 100


def test_a_failing_table_shows_the_error_and_what_to_do(demo: Path) -> None:
    write_source(demo, "shop_typo", "name: shop_typo\nowner: market-de\n"
                 "source: {type: sqlite, path: demo/data/shop.sqlite}\n"
                 "tables: [{name: customers, mode: full}, {name: custommers, mode: full}]\n")
    at = open_page("shop_typo")
    click(at, "test-run")
    at = finish(at, "shop_typo")
    label, state = outcomes(at)[0]
    assert state == "error" and "partial" in label
    overview = grid(at, "test-run-overview").set_index("table")
    assert overview.loc["customers", "status"] == "success" and overview.loc["custommers", "status"] == "failed"
    failures = [unescape(e.value) for e in at.error]
    assert any("custommers" in f and "What to do:" in f for f in failures), failures


def test_an_unknown_source_in_the_address_is_explained(demo: Path) -> None:
    at = open_page("no_such_source")
    assert "is not a source here" in unescape(at.warning[0].value)
    assert at.selectbox(key="source-pick").value is None
    assert "test-run" not in [b.key for b in at.button]  # nothing to run until a source is picked
    ok(at.selectbox(key="source-pick").select("demo_files").run())
    assert at.query_params["source"] == "demo_files" and not at.button(key="test-run").disabled


def test_postgres_table_rows_shown_are_the_rows_landed(ingest_env: Path, postgres_db) -> None:
    postgres_db.execute("CREATE TABLE contacts (id bigint PRIMARY KEY, email text NOT NULL, score numeric(6, 2), "
                        "changed_at timestamptz); INSERT INTO contacts SELECT g, 'c' || g || '@example.com', "
                        "g * 1.5, timestamptz '2024-01-01' + g * interval '1 hour' FROM generate_series(1, 20) g")
    pg_source(ingest_env, postgres_db, "  - {name: contacts, mode: incremental, cursor: changed_at}\n")
    at = open_page("pg")
    click(at, "test-run")
    at = finish(at, "pg")
    record = preview_jobs.current("pg").record
    assert record.status == "success", [unescape(e.value) for e in at.error]
    landed = preview_rows("pg", "pg", "contacts")
    shown = grid(at, "test-run-contacts-sample")
    assert len(landed) == 20 and as_rows(shown) == as_rows(landed)
    schema = grid(at, "test-run-contacts-schema").set_index("column")
    assert schema.loc["email", "nullable"] == False and schema.loc["score", "type"] == "decimal(6,2)"  # noqa: E712
    assert grid(at, "test-run-overview").loc[0, "rows"] == 20
    assert postgres_db.password not in text(at)


# --- the preview explorer ------------------------------------------------------------------------

def test_explorer_queries_the_preview_and_refuses_files(demo: Path) -> None:
    at = open_tab(open_page("demo_shop"), "Schema")
    assert "No preview yet" in text(at)
    click(open_tab(at, "Status"), "test-run")
    at = open_tab(finish(at, "demo_shop"), "Schema")

    assert at.selectbox(key="explorer-table").options == ["customers", "order_items", "orders", "products"]
    assert at.text_area(key="explorer-sql").value == 'SELECT * FROM "customers" LIMIT 100'
    ok(at.selectbox(key="explorer-table").select("orders").run())
    assert at.text_area(key="explorer-sql").value == 'SELECT * FROM "orders" LIMIT 100'
    ok(at.text_area(key="explorer-sql").input("SELECT status, count(*) AS n FROM orders GROUP BY 1 ORDER BY 1").run())
    click(at, "explorer-run")
    shown = grid(at, "explorer-rows")
    with duckdb.connect(str(preview_database("demo_shop")), read_only=True) as con:
        expected = con.execute("SELECT status, count(*) AS n FROM demo_shop.orders GROUP BY 1 ORDER BY 1").fetchall()
    assert list(shown.itertuples(index=False, name=None)) == expected

    secrets = demo / ".dlt" / "secrets.toml"
    secrets.parent.mkdir()
    secrets.write_text('[shop]\npassword = "do-not-show-this"\n', encoding="utf-8")
    ok(at.text_area(key="explorer-sql").input(f"SELECT * FROM read_text('{secrets}')").run())
    click(at, "explorer-run")
    refusal = unescape(at.error[0].value)
    assert refusal.startswith("refused:") and "do-not-show-this" not in text(at)

    ok(at.text_area(key="explorer-sql").input("SELECT nope FROM orders").run())
    click(at, "explorer-run")
    assert unescape(at.error[0].value).startswith("SQL error:") and "nope" in at.error[0].value
    assert at.download_button(key="explorer-csv") and at.download_button(key="explorer-parquet")


def test_results_show_while_the_preview_file_closes_and_the_explorer_waits_for_it(
        demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page draws a test run's results as soon as they are in, before its preview file is
    closed; the explorer opened in that moment waits for the close instead of failing on the
    file the run still holds. (The close is held back here by a slow on_result hand-over.)"""
    import threading

    handed_over, release = threading.Event(), threading.Event()
    done = preview_jobs.PreviewJob.done

    def slow_close(self: preview_jobs.PreviewJob, result: object) -> None:
        done(self, result)
        handed_over.set()
        release.wait(WAIT_S)  # the runner closes the file when this returns

    monkeypatch.setattr(preview_jobs.PreviewJob, "done", slow_close)
    at = click(open_page("demo_shop"), "test-run")
    job = preview_jobs.current("demo_shop")
    assert handed_over.wait(WAIT_S) and job.finished.is_set() and not job.closed.is_set()
    at = ok(at.run())
    assert outcomes(at)[0][0].startswith("Test run of demo_shop: success")  # drawn while the file is open
    assert "customers" in set(grid(at, "test-run-overview")["table"])
    threading.Timer(0.5, release.set).start()
    at = open_tab(at, "Schema")  # the explorer: waits for the close, then reads the file
    assert at.selectbox(key="explorer-table").options == ["customers", "order_items", "orders", "products"]
    assert job.closed.is_set()


def test_a_test_run_from_the_records_shows_after_a_restart(demo: Path) -> None:
    from ingestion_core.config.store import ConfigStore
    from ingestion_core.pipeline.runner import preview_source

    assert "has not been test-run yet" in text(open_page("demo_files"))
    record = preview_source(ConfigStore().load_source("demo_files").config, actor="cli-user").record  # a terminal
    at = open_page("demo_files")
    assert "The last test run, from its record" in text(at) and record.run_id in text(at)
    overview = grid(at, "test-run-overview").set_index("table")
    assert {t.name: t.rows for t in record.tables} == overview["rows"].to_dict()
    assert list(grid(at, "test-run-stores-schema")["column"]) == [c["name"] for c in record.tables[0].columns]
