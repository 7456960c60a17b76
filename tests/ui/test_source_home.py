"""A source's home (pages/source.py?source=NAME), headless with AppTest: every row of the Sources
list leads to it; its tabs Status / Runs / Schema / Settings / History show that source only; the
delete there says the file goes to the bin and can be restored; progress never reads '0 of ?'."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ingestion_core.config.store import ConfigStore
from ingestion_core.observe.records import RunRecord, TableResult, write_record
from portal.shared.components import relative_time, tables_progress
from tests.ui.test_sources import SHOP, sources_page, table
from tests.ui.test_test_run import grid, open_tab
from tests.ui.test_wizard import REPO, SAVED_CRM, click, ok, write_source

HOME = REPO / "pages" / "source.py"
NOW = datetime.now(UTC).replace(microsecond=0)


def home(source: str) -> AppTest:
    at = AppTest.from_file(str(HOME), default_timeout=30)
    at.query_params["source"] = source
    return ok(at.run())


def run(source: str, started: datetime, kind: str = "run", columns: list | None = None) -> str:
    record = RunRecord(
        run_id=f"{started:%Y%m%dT%H%M%S}-{source}-{kind}", kind=kind, source=source, source_type="sqlite",
        owner="market-de", destination="local_duckdb", destination_type="duckdb", dataset=source, actor="ana",
        status="success", started_at=started, ended_at=started + timedelta(seconds=3), duration_s=3.0,
        rows_total=42, records_total=42,
        tables=[TableResult(name="orders", mode="full", status="success", rows=42, records=42,
                            columns=columns or [])])
    write_record(record)
    return record.run_id


def setup(project: Path) -> None:
    store = ConfigStore()
    store.save_text("sources", "shop", SHOP, actor="ana", expected_revision=None)
    write_source(project, "crm", SAVED_CRM)


def test_every_row_of_the_sources_list_links_to_its_home(ingest_env: Path) -> None:
    setup(ingest_env)
    rows = table(sources_page())
    assert {r["name"]: r["home"] for r in rows} == {"crm": "source?source=crm", "shop": "source?source=shop"}


def test_the_header_says_when_the_last_run_shown_is_a_test_run(ingest_env: Path) -> None:
    setup(ingest_env)  # only test runs so far (a real run, once there is one, is the one shown)
    run("shop", NOW - timedelta(hours=3), kind="preview")
    run("shop", NOW - timedelta(hours=1), kind="preview")

    cells = {m.label: m.value for m in home("shop").metric}

    assert cells["Last test run"] == "success" and "Last run" not in cells and cells["Started"] == "1 h ago"


def test_the_home_shows_one_source_in_five_tabs(ingest_env: Path) -> None:
    setup(ingest_env)
    run("crm", NOW - timedelta(hours=1))
    mine = run("shop", NOW - timedelta(hours=2), columns=[{"name": "order_id", "type": "bigint", "nullable": False}])

    at = home("shop")

    assert at.title[0].value == "shop"
    assert [t.label for t in at.tabs][:5] == ["Status", "Runs", "Schema", "Settings", "History"]
    cells = {m.label: m.value for m in at.metric}
    assert cells["Last run"] == "success" and cells["Started"] == "2 h ago" and cells["Records"] == "42"
    assert at.button(key="test-run") and at.button(key="run-now")  # Status, open first
    # only the open tab is drawn: the others' records, preview and states are not read
    assert not at.code and not [b for b in at.button if b.key == "home-edit"]
    with pytest.raises(AssertionError):
        grid(at, "source-runs")
    runs = grid(open_tab(at, "Runs"), "source-runs")
    assert runs["run"].tolist() == [mine] and runs["open"].tolist() == [f"history?run={mine}"]
    assert not [b for b in at.button if b.key == "test-run"]
    schema = grid(open_tab(at, "Schema"), "source-schema-orders")
    assert schema.to_dict("records") == [{"name": "order_id", "type": "bigint", "nullable": False}]
    open_tab(at, "Settings")
    assert any("name: shop" in c.value for c in at.code)  # Settings: the YAML as saved
    assert at.button(key="home-edit") and at.button(key="home-delete")
    open_tab(at, "History")
    assert any("save" in set(d.value.get("action", [])) for d in at.dataframe)  # History: the saves


def test_delete_on_the_home_says_bin_and_restore_and_moves_the_file(ingest_env: Path) -> None:
    setup(ingest_env)
    at = open_tab(home("shop"), "Settings")
    click(at, "home-delete")
    warning = at.warning[0].value
    assert "goes to the bin" in warning and "restored at any time" in warning
    assert at.button(key="home-delete-yes").label == "Move to the bin"
    click(at, "home-delete-yes")
    assert not (ingest_env / "configs" / "sources" / "shop.yaml").exists()
    assert len(list((ingest_env / ".ingest" / "bin" / "sources").glob("shop.*.yaml"))) == 1


def test_progress_before_the_tables_are_known_says_starting() -> None:
    assert "?" not in tables_progress(0, 0) and tables_progress(0, 0).startswith("starting")
    assert tables_progress(1, 3) == "1 of 3 tables done"


def test_times_are_relative_with_the_exact_time_on_hover() -> None:
    text, hover = relative_time(NOW - timedelta(minutes=5), now=NOW)
    assert text == "5 min ago" and hover == f"{NOW - timedelta(minutes=5):%Y-%m-%d %H:%M} UTC"
    assert relative_time(NOW + timedelta(hours=3), now=NOW)[0] == "in 3 h"
    assert ".0" not in hover  # no microseconds
