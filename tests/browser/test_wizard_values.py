"""A typed value is never lost, in a real Chromium: a password typed and left with Tab (the focus
moves to the field's own "Show password" button, so Streamlit never saw the field blur) reaches
the connection test after Next and Back, and is still in the field."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.test_onboard_postgres import Driver

pytestmark = [pytest.mark.browser, pytest.mark.services]


def test_password_typed_then_tab_survives_next_and_back(portal_app: Any, browser_page: Any, postgres_db: Any,
                                                       tmp_path: Any) -> None:
    from playwright.sync_api import expect

    ui = Driver(browser_page, tmp_path)
    ui.new_postgres_form(portal_app.url)
    ui.next_step(2)
    for key, value in (("f-name", "sales"), ("f-owner", "market-de"), ("f-source-host", postgres_db.host),
                       ("f-source-port", str(postgres_db.port)), ("f-source-database", postgres_db.name),
                       ("f-source-username", postgres_db.user)):
        ui.fill(key, value)
    ui.settle()  # the rerun of the last field is drawn: it cannot take the focus away while typing
    field = ui.widget("f-source-password").locator("input")
    field.click()
    field.press_sequentially(postgres_db.password)
    field.press("Tab")
    expect(browser_page.get_by_role("button", name="Show password")).to_be_focused()
    ui.press("wiz-next")
    ui.wait_text("Step 3 of 5")
    ui.press("wiz-back")
    ui.wait_text("Step 2 of 5")
    expect(ui.widget("f-source-password").locator("input")).to_have_value(postgres_db.password)
    ui.press("wiz-test")
    ui.wait_text("Connected in")


def test_a_number_out_of_range_is_refused_under_its_field(portal_app: Any, browser_page: Any, tmp_path: Any) -> None:
    """A browser refuses to commit a number outside a number input's own bounds, silently: -3
    typed into a bounded field kept the old value and said nothing. The field has no bounds of its
    own: the value reaches the form, which names the field, the value, the range and the fix, and
    Next stays on the step."""
    ui = Driver(browser_page, tmp_path)
    ui.new_postgres_form(portal_app.url)
    ui.next_step(2)
    ui.click(browser_page.get_by_text("More connection settings"))
    ui.fill("f-source-connect_timeout_seconds", "-3")
    ui.wait_text("'connect_timeout_seconds' must be between 1 and 600; got -3: set a value in that range, or "
                 "leave it empty for the default (15)")
    ui.press("wiz-next")
    ui.settle()
    ui.wait_text("Step 2 of 5")
