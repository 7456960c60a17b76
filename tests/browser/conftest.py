"""Real-browser fixtures: the portal served by ``streamlit run`` in its own process group, and
Debian's Chromium driven by Playwright (never ``playwright install``).

- ``portal_app``: the app on 127.0.0.1:<free port>, INGEST_* pointing at the test's project folder;
  ready once /_stcore/health answers; stopped with ``os.killpg``.
- ``browser_page``: a 1280x800 page; actions and ``expect`` assertions wait up to 30 s; on a failed test a
  full-page screenshot is saved and its path printed (under ``$INGEST_ARTIFACTS_DIR`` when set, else the
  test's tmp folder).

Every screenshot taken in the session (``page.screenshot``) also saves the page's inner text and the values
its fields show (password fields left out) next to it, as ``<name>.png.txt`` (for screenshots saved into the
checkout the text is scanned but not written), so the session's secrets scan (tests/security/) reads what the
screenshot shows.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, skip_or_fail
from tests.security.scanner_plugin import scan_page_text
from tests.services import free_port

CHROMIUM = os.environ.get("INGEST_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
START_TIMEOUT = 60.0
VIEWPORT = {"width": 1280, "height": 800}
EXPECT_TIMEOUT_MS = 30_000  # Playwright's expect() and every page action


@dataclass
class PortalApp:
    url: str
    project: Path
    log: Path


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # type: ignore[no-untyped-def]
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as answer:
            return answer.status == 200
    except OSError:
        return False


@pytest.fixture
def portal_app(ingest_env: Path, tmp_path: Path) -> Iterator[PortalApp]:
    shutil.copytree(REPO / "configs" / "templates", ingest_env / "configs" / "templates", dirs_exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "streamlit.log"
    env = {**os.environ, "INGEST_PORTAL_TIMEOUT_S": os.environ.get("INGEST_PORTAL_TIMEOUT_S", "20")}
    if os.environ.get("UPDATE_SCREENSHOTS", "").lower() in ("1", "true", "yes"):
        env["INGEST_CONFIG_DIR"] = str(_screenshot_project(ingest_env) / "configs")
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
               "--server.port", str(port), "--server.address", "127.0.0.1",
               "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"streamlit did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)
        yield PortalApp(url, ingest_env, log)
    finally:
        _stop(process)


def _screenshot_project(project: Path) -> Path:
    """For the guides' pictures, the project seen as ~/ingestion-portal (the sidebar names the config
    folder: a pytest temp path in a user guide looks like a bug)."""
    link = Path.home() / "ingestion-portal"
    if link.is_symlink():
        link.unlink()
    link.symlink_to(project, target_is_directory=True)
    return link


def _stop(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


VISIBLE_VALUES = "els => els.filter(e => e.type !== 'password').map(e => e.value).filter(v => v)"


def _text_with_screenshots(page_class: type) -> None:
    """Wrap ``Page.screenshot``: the page's inner text is saved next to the image and scanned for secrets."""
    original = page_class.screenshot
    if getattr(original, "saves_page_text", False):
        return

    def screenshot(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        image = original(self, *args, **kwargs)
        path = kwargs.get("path")
        where = str(path) if path else f"screenshot of {self.url}"
        with contextlib.suppress(Exception):  # a closed or navigating page has no text to add
            text = self.inner_text("body", timeout=5_000) + "\n" + "\n".join(self.eval_on_selector_all(
                "input, textarea", VISIBLE_VALUES))  # what the fields show; a password field shows dots
            scan_page_text(text, where + " (page text)")
            if path and not Path(path).resolve().is_relative_to(REPO):
                Path(f"{path}.txt").write_text(text, encoding="utf-8")
        return image

    screenshot.saves_page_text = True  # type: ignore[attr-defined]
    page_class.screenshot = screenshot


with contextlib.suppress(ImportError):  # every browser test's screenshots, whichever way it launched Chromium
    from playwright.sync_api import Page, expect

    _text_with_screenshots(Page)
    # expect() waits 5 s by default, not the page's default timeout: the first script run of a fresh
    # server (app.py's imports) took longer on a loaded 2-core machine, and the sign-in test failed
    # with the page still drawing (issue 14). Assertions wait as long as actions do.
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright is not installed (pip install -r requirements-dev.txt)")
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_page(chromium: object, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    context = chromium.new_context(viewport=VIEWPORT, device_scale_factor=1)  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(EXPECT_TIMEOUT_MS)
    try:
        yield page
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            folder = Path(os.environ.get("INGEST_ARTIFACTS_DIR") or tmp_path)
            folder.mkdir(parents=True, exist_ok=True)
            shot = folder / f"{request.node.name}-failure.png"
            with contextlib.suppress(Exception):
                page.screenshot(path=str(shot), full_page=True)
                print(f"\nscreenshot of the failure: {shot}")
        context.close()
