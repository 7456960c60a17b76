"""Step 3 of the source form at the browser tests' 1280x800 window: every label of the tables
table (mode buttons, "More", the cursor with its type) and of a table typed by name ("Look up the
columns") is readable, none cut off or dropped."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_onboard_postgres import Driver
from tests.services import free_port
from tests.ui.test_wizard import make_shop

pytestmark = pytest.mark.browser

CUT_OFF = """main => [...main.querySelectorAll('[class*="st-key-wiz-row-"], [class*="st-key-wiz-typed-"]')]
    .flatMap(row => [...row.querySelectorAll('*')])
    .map(e => [e, (e.value || e.innerText || '').trim()])
    .filter(([e, text]) => e.offsetParent !== null && text && !e.closest('[data-testid="stIconMaterial"]')
                           && (e.scrollWidth > e.clientWidth + 1 || text.includes('…')))
    .map(([e, text]) => text)"""
"""Texts of step 3's rows that do not fit their box (cut off, or scrolled out of view)."""


def shots_folder(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("INGEST_ARTIFACTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def cut_off(ui: Driver) -> list[str]:
    ui.idle()
    return ui.page.get_by_test_id("stMain").evaluate(CUT_OFF)


def test_the_tables_step_is_readable_at_1280(portal_app: Any, browser_page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    shop = make_shop(portal_app.project)
    ui = Driver(browser_page, shots_folder(tmp_path))
    browser_page.goto(f"{portal_app.url}/source_editor")
    ui.click(ui.widget("wiz-type").get_by_text("(sqlite)"))
    ui.wait_text("Type: sqlite")
    ui.next_step(2)
    for key, value in (("f-name", "shop"), ("f-owner", "market-de"), ("f-source-path", str(shop))):
        ui.fill(key, value)
        ui.settle()
    ui.next_step(3)
    ui.click(ui.widget("wiz-pick-main-orders").locator("label"))
    ui.settle()
    ui.click(ui.widget("f-tables-0-mode").get_by_role("radio", name="incremental"))
    ui.settle()
    expect(ui.widget("f-tables-0-cursor").get_by_role("combobox")).to_have_value("updated_at · TIMESTAMP")
    ui.shot("tables-step-1280")
    mode_labels = ui.widget("f-tables-0-mode").get_by_role("radio").all_inner_texts()
    assert [t.strip() for t in mode_labels] == ["full", "append", "incremental", "merge", "scd2"]
    assert cut_off(ui) == []


def test_a_table_typed_by_name_is_readable_at_1280(portal_app: Any, browser_page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    ui = Driver(browser_page, shots_folder(tmp_path))
    ui.new_postgres_form(portal_app.url)
    ui.next_step(2)
    for key, value in (("f-name", "crm"), ("f-owner", "market-de"), ("f-source-host", "127.0.0.1"),
                       ("f-source-port", str(free_port())), ("f-source-database", "x"), ("f-source-username", "u")):
        ui.fill(key, value)
        ui.settle()
    ui.next_step(3)
    ui.click(browser_page.get_by_text("Add a table by name"))
    ui.fill("wiz-manual-name", "public.orders")
    ui.press("wiz-manual-add")
    expect(ui.widget("wiz-columns-0")).to_be_visible()
    ui.shot("typed-table-1280")
    assert cut_off(ui) == []
