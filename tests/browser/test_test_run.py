"""A market-team user test-runs a demo source in a real Chromium: Test run on the Sources page
opens the Test & run page on that source, the run is followed live and the sample rows show in a
data grid, with the landed schema and the checks; the explorer downloads a table as CSV. The
screenshot is the user guide's picture (docs/images/test-run.png, written with
``UPDATE_SCREENSHOTS=1``). A test run of a slow API is cancelled from its progress box, and so is
a real run (Run now, a background ``ingest run``)."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingestion_core.demo import generate_demo
from tests.browser.test_onboard_postgres import Driver, screenshot_folder
from tests.conftest import REPO
from tests.http_api import running_api

pytestmark = [pytest.mark.browser]

RUN_TIMEOUT_MS = 240_000  # a test run on a machine loaded 10x (seen: 116 s at load 20); the page shows its progress


def test_test_run_a_demo_source_in_the_browser(portal_app: Any, browser_page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    for path in (REPO / "configs" / "sources").glob("demo_*.yaml"):
        shutil.copy(path, portal_app.project / "configs" / "sources" / path.name)
    generate_demo(portal_app.project / "demo" / "data")
    shots = screenshot_folder(tmp_path)
    ui = Driver(browser_page, shots)

    browser_page.goto(f"{portal_app.url}/sources")
    ui.widget("sources-pick").wait_for()
    ui.choose("sources-pick", "demo_shop")
    ui.click(ui.widget("sources-test-run").locator("button").first)  # (its help tooltip wraps it once more)

    expect(browser_page).to_have_url(re.compile(r"/source\?source=demo_shop$"))
    sample = ui.widget("test-run-customers-sample").get_by_test_id("stDataFrame")
    expect(sample).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(browser_page.get_by_text(re.compile(r"^Test run of demo_shop: success"))).to_be_visible()
    for table in ("customers", "orders", "order_items", "products"):
        expect(browser_page.get_by_role("tab", name=table, exact=True)).to_be_visible()
    expect(ui.widget("test-run-customers-schema").get_by_test_id("stDataFrame")).to_be_visible()
    expect(ui.widget("test-run-customers-checks").get_by_test_id("stDataFrame")).to_be_visible()
    expect(ui.widget("test-run").locator("button").first).to_be_enabled()  # the run has ended: it can run again
    ui.shot("test-run")
    assert (shots / "test-run.png").stat().st_size > 0

    # the explorer's download: the table's rows, as a CSV file made when clicked
    browser_page.get_by_role("tab", name="Schema", exact=True).first.click()  # the source home's tab
    expect(browser_page.get_by_role("heading", name="Explore the preview")).to_be_visible()
    with browser_page.expect_download() as download:
        ui.click(ui.widget("explorer-csv").locator("button").first)
    lines = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith('"customer_id","email"') and len(lines) == 1 + 300


def offsets(api: Any) -> list[str | None]:
    return [r.params.get("offset") for r in api.log_for("/slow/offset/items")]


@contextlib.contextmanager
def waiting_on_page_2(portal_app: Any, browser_page: Any, tmp_path: Path, button: str) -> Iterator[tuple[Any, Any]]:
    """Source ``api`` (one table read 10 records a page from an API that holds page 2) open on its
    home, ``button`` pressed, its run waiting for page 2: (the API, the page driver)."""
    with running_api(5000, slow_from_page=2, slow_seconds=0, hold_from_page=2) as api:
        source = {"type": "rest_api", "base_url": f"{api.url}/",
                  "paginator": {"type": "offset", "limit": 10, "total_path": "total"}}
        (portal_app.project / "configs" / "sources" / "api.yaml").write_text(
            f"name: api\nowner: market-de\nsource: {json.dumps(source)}\n"
            "tables: [{name: items, path: slow/offset/items}]\n", encoding="utf-8")
        ui = Driver(browser_page, screenshot_folder(tmp_path))
        browser_page.goto(f"{portal_app.url}/source?source=api")
        ui.click(ui.widget(button).locator("button").first)
        deadline = time.monotonic() + RUN_TIMEOUT_MS / 1000
        while "10" not in offsets(api):
            assert time.monotonic() < deadline, f"the run never asked for page 2: {offsets(api)}"
            time.sleep(0.1)
        yield api, ui


def test_cancel_a_test_run_in_the_browser(portal_app: Any, browser_page: Any, tmp_path: Path) -> None:
    """The API holds page 2 while Cancel is pressed; once it answers, the run stops there (no
    page 3), and the box says cancelled and by whom."""
    from playwright.sync_api import expect

    with waiting_on_page_2(portal_app, browser_page, tmp_path, "test-run") as (api, ui):
        cancel = ui.widget("test-run-cancel").locator("button").first
        expect(cancel).to_be_enabled()
        ui.click(cancel)
        expect(browser_page.get_by_text(re.compile(r"^Test run of api: cancelling"))).to_be_visible()
        api.release.set()
        expect(browser_page.get_by_text(re.compile(r"^Test run of api: cancelled"))).to_be_visible(
            timeout=RUN_TIMEOUT_MS)
        assert offsets(api) == ["0", "10"]
    expect(browser_page.get_by_text(re.compile(r"cancelled by \S+"))).to_be_visible()
    expect(ui.widget("test-run").locator("button").first).to_be_enabled()  # it can run again


def test_cancel_a_real_run_in_the_browser(portal_app: Any, browser_page: Any, tmp_path: Path) -> None:
    """Run now starts a background ``ingest run``; Cancel the run stops it while the API holds
    page 2 (the process is stopped: SIGTERM, then SIGKILL after the grace period); the page says
    who cancelled it and the source can run again."""
    from playwright.sync_api import expect

    from ingestion_core.observe.records import find_record

    with waiting_on_page_2(portal_app, browser_page, tmp_path, "run-now") as (api, ui):
        cancel = ui.widget("run-cancel").locator("button").first
        expect(cancel).to_be_enabled(timeout=RUN_TIMEOUT_MS)
        ui.click(cancel)
        message = browser_page.get_by_text(re.compile(r"^Run \S+ was cancelled by \S+"))
        expect(message).to_be_visible(timeout=RUN_TIMEOUT_MS)
        api.release.set()
    run_id = message.inner_text().split()[1]
    record = find_record(run_id)
    assert record.status == "cancelled" and record.tables[0].status == "cancelled"
    expect(ui.widget("run-now").locator("button").first).to_be_enabled()  # the source is free again
