"""What only a browser shows, in a real Chromium: the theme follows the system (dark mode), the
local-mode notice takes one line and can be dismissed, no aria-label carries a Markdown escape,
and the source's home (its picture in the user guide)."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ingestion_core.observe.records import RunRecord, TableResult, write_record
from tests.browser.conftest import VIEWPORT

pytestmark = pytest.mark.browser
REPO = Path(__file__).resolve().parents[2]
SHOP = ("version: 1\nname: sales_crm\nowner: market-de\ndescription: CRM of the German market\n"
        "source: {type: sqlite, path: crm.sqlite}\nschedule: '0 6 * * *'\ntables:\n  - {name: orders, mode: full}\n")

BACKGROUND = "() => getComputedStyle(document.querySelector('[data-testid=stApp]')).backgroundColor"


def _luminance(css: str) -> float:
    red, green, blue = (int(v) for v in re.findall(r"\d+", css)[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255


@pytest.mark.parametrize(("scheme", "dark"), [("dark", True), ("light", False)])
def test_the_theme_follows_the_system(portal_app: Any, chromium: Any, scheme: str, dark: bool) -> None:
    from playwright.sync_api import expect

    context = chromium.new_context(viewport=VIEWPORT, color_scheme=scheme)
    try:
        page = context.new_page()
        page.goto(portal_app.url)
        expect(page.get_by_role("heading", name="Ingestion portal")).to_be_visible(timeout=30_000)
        assert (_luminance(page.evaluate(BACKGROUND)) < 0.3) is dark, page.evaluate(BACKGROUND)
    finally:
        context.close()


def test_the_local_mode_notice_is_one_line_and_can_be_dismissed(portal_app: Any, browser_page: Any) -> None:
    from playwright.sync_api import expect

    browser_page.goto(portal_app.url)
    notice = browser_page.locator(".st-key-local-mode-banner")
    expect(notice).to_contain_text("Local single-user mode", timeout=30_000)
    line = browser_page.evaluate("() => parseFloat(getComputedStyle(document.querySelector("
                                 "'.st-key-local-mode-banner [data-testid=stCaptionContainer]')).lineHeight)")
    assert notice.bounding_box()["height"] < 2 * line + 16  # one line of text (plus the button's padding)
    notice.get_by_role("button").click()
    expect(notice).to_have_count(0)
    browser_page.get_by_test_id("stSidebar").get_by_role("link", name="Sources", exact=True).click()
    expect(browser_page.get_by_role("heading", name="Sources")).to_be_visible()
    expect(browser_page.get_by_text("Local single-user mode")).to_have_count(0)  # gone for the session


NAV_WATCH = """
window.__navTexts = [];
new MutationObserver(() => {
  for (const nav of document.querySelectorAll('[data-testid=stSidebarNav]')) window.__navTexts.push(nav.innerText);
}).observe(document, {childList: true, subtree: true, characterData: true});
"""


def test_a_first_visit_never_shows_raw_file_names_in_the_sidebar(portal_app: Any, browser_page: Any) -> None:
    from playwright.sync_api import expect

    browser_page.add_init_script(NAV_WATCH)  # records every sidebar navigation list the page ever shows
    browser_page.goto(f"{portal_app.url}/config_history")
    sidebar = browser_page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_role("link", name="Config history", exact=True)).to_be_visible(timeout=30_000)
    expect(browser_page.get_by_role("heading", name="Config history")).to_be_visible()
    shown = "\n".join(browser_page.evaluate("window.__navTexts"))
    assert "source editor" not in shown and "config history" not in shown, shown  # pages/*.py file names
    labels = [text.split("\n")[-1] for text in sidebar.get_by_test_id("stPageLink").all_inner_texts()]  # icon first
    assert labels[:4] == ["Home", "Sources", "New / edit source", "Source home"]


def test_no_aria_label_shows_a_markdown_escape(portal_app: Any, browser_page: Any) -> None:
    from playwright.sync_api import expect

    (portal_app.project / "configs" / "sources" / "sales_crm.yaml").write_text(SHOP)
    browser_page.goto(f"{portal_app.url}/source_editor")
    expect(browser_page.get_by_role("heading", name=re.compile("New source"))).to_be_visible(timeout=30_000)
    labels = browser_page.eval_on_selector_all("[aria-label]", "els => els.map(e => e.getAttribute('aria-label'))")
    assert labels and [label for label in labels if "\\" in label] == []


def test_the_source_home(portal_app: Any, browser_page: Any) -> None:
    from playwright.sync_api import expect

    (portal_app.project / "configs" / "sources" / "sales_crm.yaml").write_text(SHOP)
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    write_record(RunRecord(
        run_id="20261207T060000-sales_crm-a1b2c3", kind="run", source="sales_crm", source_type="sqlite",
        owner="market-de", destination="local_duckdb", destination_type="duckdb", dataset="sales_crm", actor="ana",
        status="success", started_at=started, ended_at=started + timedelta(seconds=14), duration_s=14.0,
        rows_total=12_500, records_total=12_500, bytes_total=1_800_000,
        tables=[TableResult(name="orders", mode="full", status="success", rows=12_500, records=12_500,
                            duration_s=12.0, columns=[{"name": "order_id", "type": "bigint", "nullable": False},
                                                      {"name": "amount", "type": "decimal(12,2)", "nullable": True}])]))
    browser_page.goto(f"{portal_app.url}/source?source=sales_crm")
    expect(browser_page.get_by_role("heading", name="sales_crm")).to_be_visible(timeout=30_000)
    for tab in ("Status", "Runs", "Schema", "Settings", "History"):
        expect(browser_page.get_by_role("tab", name=tab)).to_be_visible()
    expect(browser_page.get_by_test_id("stMain")).to_contain_text("2 h ago")
    if os.environ.get("UPDATE_SCREENSHOTS"):
        browser_page.screenshot(path=str(REPO / "docs" / "images" / "source-home.png"), full_page=True)
