"""A market-team user onboards sources in a real Chromium. PostgreSQL end to end, as an analyst
with a database `sales` whose tables are in schema `crm`: from the Sources page, test the
connection on its step, tick two crm tables in the one table of every schema's tables (one
incremental on its timestamp, one merged on its key), a daily schedule, save, Test now, and the
test run's rows show: at most 15 clicks, counting every click, and no YAML typed. Files and a REST
API up to their tables step (files matching a glob; an endpoint and its test panel).

Screenshots of each step go to a temp folder, or to docs/images (the user guide's pictures)
with ``UPDATE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from tests.ui.test_wizard import tiny_api  # noqa: F401  (a fixture: a JSON API on loopback)

pytestmark = [pytest.mark.browser, pytest.mark.services]

CLICK_BUDGET = 15
IDLE_TIMEOUT_MS = 30_000  # a page drawn on a loaded machine
RUN_TIMEOUT_MS = 240_000  # a test run on a machine loaded 10x (seen: 116 s at load 20); the page shows its progress
VIEWPORT = {"width": 1280, "height": 800}
MAX_SHOT_HEIGHT = 2400
DOCS_IMAGES = REPO / "docs" / "images"


def screenshot_folder(tmp_path: Path) -> Path:
    """docs/images with UPDATE_SCREENSHOTS=1 (pictures for the guides), else a temp folder."""
    update = os.environ.get("UPDATE_SCREENSHOTS", "").lower() in ("1", "true", "yes")
    shots = DOCS_IMAGES if update else tmp_path / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    return shots


class Driver:
    """Playwright actions on Streamlit widgets found by key, counting the clicks."""

    def __init__(self, page: Any, shots: Path):
        self.page = page
        self.shots = shots
        self.clicks = 0
        self.typed: list[str] = []

    def widget(self, key: str) -> Any:
        return self.page.locator(f".st-key-{key}")

    def idle(self) -> None:
        """The page is drawn: no script run in progress and no placeholder left. Call it after
        waiting for the effect of an action (a rerun that has not started yet looks idle)."""
        from playwright.sync_api import expect

        expect(self.page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning",
                                                                     timeout=IDLE_TIMEOUT_MS)
        # a skeleton also stands for a component whose code is still loading (the YAML's code block)
        expect(self.page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=IDLE_TIMEOUT_MS)

    def settle(self) -> None:
        """After an action whose effect cannot be seen: let its rerun start (if it has not
        already come and gone), then wait for the page to be drawn."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout
        from playwright.sync_api import expect

        with contextlib.suppress(AssertionError, PlaywrightTimeout):
            expect(self.page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "running",
                                                                         timeout=1000)
        self.idle()

    def choose(self, key: str, option: str, attempts: int = 3) -> None:
        """Open a selectbox and pick an option (two clicks). A rerun still drawing the page can
        close the list as it opens; then it is opened again."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        self.settle()
        for attempt in range(attempts):
            self.click(self.widget(key).locator("input"))
            try:
                self.page.get_by_role("option", name=option).click(timeout=3000)
            except PlaywrightTimeout:
                if attempt == attempts - 1:
                    raise
                continue
            self.clicks += 1
            return

    def click(self, locator: Any) -> None:
        locator.click()
        self.clicks += 1

    def press(self, key: str) -> None:
        self.click(self.widget(key).locator("button").first)  # (a help tooltip wraps a button once more)

    def fill(self, key: str, text: str) -> None:
        field = self.widget(key).locator("input")
        field.fill(text)
        field.press("Enter")
        self.typed.append(key)

    def new_postgres_form(self, portal_url: str) -> None:
        """Open the source form and choose PostgreSQL in step 1."""
        self.page.goto(f"{portal_url}/source_editor")
        self.click(self.widget("wiz-type").get_by_text("PostgreSQL (postgres)", exact=True))
        self.wait_text("Type: postgres")

    def wait_text(self, text: str) -> None:
        self.page.get_by_text(text).first.wait_for()
        self.idle()

    def next_step(self, number: int) -> None:
        self.press("wiz-next")
        self.wait_text(f"Step {number} of 5")

    def shot(self, name: str) -> None:
        """The whole page, 1280 wide: Streamlit scrolls inside its main block, so the window is
        made as tall as the content for the picture, then put back to 1280x800."""
        self.idle()
        height = self.page.get_by_test_id("stMain").evaluate("main => main.scrollHeight")
        self.page.set_viewport_size({"width": VIEWPORT["width"], "height": min(max(height, 800), MAX_SHOT_HEIGHT)})
        self.idle()
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path))
        self.page.set_viewport_size(VIEWPORT)
        shrink_png(path)


def shrink_png(path: Path) -> None:
    """256 colours are plenty for a screenshot of a form and keep the PNG small."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


@pytest.fixture
def sales_db(postgres_db: Any) -> Any:
    postgres_db.execute(
        "CREATE SCHEMA crm;"
        "CREATE TABLE crm.orders (order_id bigint PRIMARY KEY, customer_id bigint, amount numeric(10,2), "
        "created_at timestamptz, updated_at timestamptz, status text);"
        "CREATE TABLE crm.customers (customer_id bigint PRIMARY KEY, email text, country text, "
        "updated_at timestamptz);"
        "CREATE TABLE public.audit_log (id bigserial PRIMARY KEY, message text);"
        "INSERT INTO crm.customers SELECT g, 'c' || g || '@example.com', 'DE', now() FROM generate_series(1, 50) g;"
        "INSERT INTO crm.orders SELECT g, g % 50 + 1, g * 1.5, now(), now(), 'paid' FROM generate_series(1, 500) g;"
        "ANALYZE crm.orders; ANALYZE crm.customers;"
    )
    return postgres_db


def test_onboard_postgres_in_the_browser(portal_app: Any, browser_page: Any, sales_db: Any,
                                         tmp_path: Path) -> None:
    from playwright.sync_api import expect

    shots = screenshot_folder(tmp_path)
    ui = Driver(browser_page, shots)
    started = time.monotonic()

    browser_page.goto(f"{portal_app.url}/sources")
    ui.widget("sources-new").wait_for()
    ui.press("sources-new")
    ui.widget("wiz-type").wait_for()

    # 1. type
    ui.click(ui.widget("wiz-type").get_by_text("PostgreSQL (postgres)", exact=True))
    ui.wait_text("Type: postgres")
    ui.shot("wizard-1-type")
    ui.next_step(2)

    # 2. connection, typed (never YAML), and its test on the same step
    for key, value in (("f-name", "sales_de"), ("f-owner", "market-de"), ("f-source-host", sales_db.host),
                       ("f-source-port", str(sales_db.port)), ("f-source-database", sales_db.name),
                       ("f-source-username", sales_db.user), ("f-source-password", sales_db.password)):
        ui.fill(key, value)
    ui.wait_text("when you save; the file gets")  # the password reached the server (it is typed last)
    ui.press("wiz-test")
    ui.wait_text("Connected in")
    ui.shot("wizard-2-connection")
    ui.next_step(3)

    # 3. the crm tables are in the one table of every schema; per row: mode, cursor and key
    ui.widget("wiz-pick-crm-customers").wait_for()
    expect(ui.widget("wiz-pick-public-audit_log")).to_be_visible()
    for table in ("customers", "orders"):
        ui.click(ui.widget(f"wiz-pick-crm-{table}").locator("label"))
        ui.widget(f"wiz-more-crm-{table}").wait_for()
    ui.click(ui.widget("f-tables-0-mode").get_by_text("incremental", exact=True))
    expect(ui.widget("f-tables-0-cursor").locator("input")).to_have_value(re.compile("^updated_at"))
    ui.click(ui.widget("f-tables-1-mode").get_by_text("merge", exact=True))
    expect(ui.widget("f-tables-1-primary_key").get_by_text(re.compile("^order_id"))).to_have_count(1)
    ui.shot("wizard-3-tables")
    ui.next_step(4)

    # 4. quality checks: none needed
    ui.shot("wizard-4-checks")
    ui.next_step(5)

    # 5. review and schedule: daily (06:00 UTC), the summary first
    ui.click(ui.widget("wiz-sched-kind").get_by_text("Daily", exact=True))
    ui.wait_text("Next runs:")
    expect(browser_page.get_by_text(re.compile(
        "2 tables from crm; customers incremental on updated_at; orders merged on order_id; "
        "daily at 06:00 UTC, next run"))).to_be_visible()
    ui.shot("wizard-5-review")
    expect(browser_page.get_by_text("The connection test passed.")).to_be_visible()
    ui.press("wiz-save")
    ui.wait_text("is now in the Sources list")
    # the tested connection stays tested: the typed password, now a reference, is the same value
    expect(browser_page.get_by_text("The connection test passed.")).to_be_visible()
    expect(browser_page.get_by_text("The connection was not tested")).to_have_count(0)
    ui.shot("wizard-6-saved")

    # Test now: the Test & run page, the test run's rows
    ui.press("editor-test-now")
    expect(browser_page).to_have_url(re.compile(r"/source\?source=sales_de$"))
    sample = ui.widget("test-run-customers-sample").get_by_test_id("stDataFrame")
    expect(sample).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(browser_page.get_by_text(re.compile(r"^Test run of sales_de: success"))).to_be_visible()
    elapsed = time.monotonic() - started
    ui.shot("wizard-7-test-run")

    # the Sources list with the new source in it: the guide's picture of that page
    browser_page.goto(f"{portal_app.url}/sources")
    ui.widget("sources-new").wait_for()
    expect(browser_page.get_by_test_id("stMain").get_by_test_id("stDataFrame").first).to_be_visible()
    ui.shot("sources-list")

    saved = portal_app.project / "configs" / "sources" / "sales_de.yaml"
    text = saved.read_text(encoding="utf-8")
    assert yaml.safe_load(text) == {
        "version": 1, "name": "sales_de", "owner": "market-de", "schedule": "0 6 * * *",
        "source": {"type": "postgres", "host": sales_db.host, "port": sales_db.port, "database": sales_db.name,
                   "username": sales_db.user, "password": "${secrets.sales_de.password}"},
        "tables": [
            {"name": "customers", "schema": "crm", "mode": "incremental", "cursor": "updated_at"},
            {"name": "orders", "schema": "crm", "mode": "merge", "primary_key": ["order_id"]},
        ],
    }
    assert sales_db.password not in text
    secrets = tomllib.loads((portal_app.project / ".ingest" / "secrets.toml").read_text(encoding="utf-8"))
    assert secrets["sales_de"]["password"] == sales_db.password
    assert ui.clicks <= CLICK_BUDGET, f"{ui.clicks} clicks"
    assert not [k for k in ui.typed if "yaml" in k], "no YAML typed"
    print(f"\nclicks used: {ui.clicks} (budget {CLICK_BUDGET}); Sources page to test-run rows in {elapsed:.1f} s")


def test_files_and_rest_api_steps_in_the_browser(portal_app: Any, browser_page: Any, tiny_api: str,  # noqa: F811
                                                tmp_path: Path) -> None:
    shots = screenshot_folder(tmp_path)
    landing = portal_app.project / "landing" / "partners"
    landing.mkdir(parents=True)
    for day in ("2025-03-01", "2025-03-02", "2025-03-03"):
        (landing / f"sales_{day}.csv").write_text("partner_id;amount\n1;10.5\n2;7\n", encoding="utf-8")
    ui = Driver(browser_page, shots)

    # files: a glob, the files it matches, added as a table
    browser_page.goto(f"{portal_app.url}/sources")
    ui.press("sources-new")
    ui.click(ui.widget("wiz-type").get_by_text("Files on disk or object storage (filesystem)", exact=True))
    ui.wait_text("Type: filesystem")
    ui.next_step(2)
    for key, value in (("f-name", "partner_files"), ("f-owner", "market-de"), ("f-source-bucket_url", "landing")):
        ui.fill(key, value)
    ui.next_step(3)
    ui.fill("wiz-glob", "partners/*.csv")
    ui.press("wiz-list-files")
    ui.wait_text("3 file(s) match")
    ui.press("wiz-add-files")
    ui.widget("f-tables-0-glob").wait_for()
    ui.shot("wizard-files-3-files")

    # REST: bearer token, an endpoint, the endpoint test
    browser_page.goto(f"{portal_app.url}/sources")
    ui.press("sources-new")
    ui.click(ui.widget("wiz-type").get_by_text("REST API (rest_api)", exact=True))
    ui.wait_text("Type: rest_api")
    ui.next_step(2)
    for key, value in (("f-name", "crm_api"), ("f-owner", "market-de"), ("f-source-base_url", tiny_api)):
        ui.fill(key, value)
    ui.choose("f-source-auth-type", "bearer: Authorization: Bearer <token>.")
    ui.widget("f-source-auth-token").wait_for()
    ui.fill("f-source-auth-token", "tok-en-42")
    ui.wait_text("when you save; the file gets")
    ui.shot("wizard-rest-2-connection")
    ui.next_step(3)
    ui.fill("wiz-endpoint-name", "contacts")
    ui.fill("wiz-endpoint-path", "contacts")
    ui.press("wiz-endpoint-add")
    ui.widget("wiz-test-endpoint-0").wait_for()
    ui.press("wiz-test-endpoint-0")
    browser_page.get_by_text(re.compile("HTTP 200|Endpoint test not available yet")).first.wait_for()
    ui.shot("wizard-rest-3-endpoints")
    assert "tok-en-42" not in browser_page.content()
