"""The source form in a real Chromium where layout and keyboard matter: the step bar fits a 390 px
phone screen (nothing overflows sideways, every step button is visible) and the fields' "?" help
icons are not Tab stops (Tab from Host goes to Port)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_onboard_postgres import Driver

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}
STEPS = 5
CLIPPED = "b => [...b.querySelectorAll('p')].some(p => p.scrollWidth > p.clientWidth)"


def test_the_step_bar_fits_a_phone_screen(portal_app: Any, chromium: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    context = chromium.new_context(viewport=PHONE, device_scale_factor=1)
    try:
        page = context.new_page()
        ui = Driver(page, tmp_path)
        ui.new_postgres_form(portal_app.url)
        ui.idle()
        tops = set()
        for number in range(1, STEPS + 1):
            # Streamlit draws a button with help twice (with and without its tooltip) and shows one
            button = ui.widget(f"wiz-go-{number}").locator("button >> visible=true")
            expect(button).to_be_visible()
            box = button.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (number, box)
            assert button.evaluate(CLIPPED) is False, f"the label of step {number} is cut off"
            tops.add(round(box["y"]))
        assert len(tops) <= 2, f"the step bar takes {len(tops)} rows of the phone screen"  # columns stacked: 5
        width = page.evaluate("() => [document.documentElement.scrollWidth, document.body.scrollWidth]")
        assert max(width) <= PHONE["width"], width
    finally:
        context.close()


def test_tab_goes_from_field_to_field_not_to_its_help_icon(portal_app: Any, browser_page: Any,
                                                          tmp_path: Path) -> None:
    from playwright.sync_api import expect

    ui = Driver(browser_page, tmp_path)
    ui.new_postgres_form(portal_app.url)
    ui.next_step(2)
    ui.idle()
    host = ui.widget("f-source-host").locator("input")
    host.click()
    host.press("Tab")
    expect(ui.widget("f-source-port").locator("input")).to_be_focused()
