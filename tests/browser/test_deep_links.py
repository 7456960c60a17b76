"""A deep link opened as the first visit of a fresh server renders its page without Streamlit's
"Page not found" dialog. Because the repo has a pages/ folder, that first session starts in
Streamlit's legacy mode, which finds pages by file name: every url_path must equal its file's
stem for the link to resolve before app.py's navigation takes over."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = re.findall(r'st\.Page\("pages/(\w+)\.py",[^)]*?url_path="([\w-]+)"', (REPO / "app.py").read_text(), re.S)


def test_every_url_path_is_its_page_file_name() -> None:
    assert len(PAGES) >= 8  # home and sources take their file names by default
    assert [(stem, path) for stem, path in PAGES if stem != path] == []


@pytest.mark.parametrize("path", ["config_history", "source_editor"])
def test_a_deep_link_as_the_first_visit_shows_the_page(portal_app: Any, browser_page: Any, path: str) -> None:
    from playwright.sync_api import expect

    browser_page.goto(f"{portal_app.url}/{path}")
    title = {"config_history": "Config history", "source_editor": "New source"}[path]
    expect(browser_page.get_by_role("heading", name=re.compile(title))).to_be_visible(timeout=30_000)  # a cold start
    browser_page.wait_for_timeout(1500)  # the dialog comes with the first script run
    assert "Page not found" not in browser_page.inner_text("body")
