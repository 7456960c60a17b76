"""Trust the first click (issue 14): start a fresh portal, and as the first thing click **Test
run** on demo_shop from the Sources page in a real Chromium; count the starts whose test run
shows its sample rows. Each start is a new ``streamlit run app.py`` process (nothing imported
yet) on a new project folder (demo sources and data, no earlier run).

    .venv/bin/python bench/bench_first_click.py [--starts 20] [--timeout 180]

Prints one line per start (outcome, seconds from the click to the sample grid, what the page
showed when it failed) and "N of M". Needs Debian's Chromium and playwright
(requirements-dev.txt).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from common import table  # noqa: E402

from ingestion_core.demo import generate_demo  # noqa: E402
from tests.browser.conftest import CHROMIUM, LAUNCH_ARGS, VIEWPORT, _healthy  # noqa: E402
from tests.browser.conftest import _stop as stop  # noqa: E402
from tests.browser.test_onboard_postgres import Driver  # noqa: E402
from tests.services import free_port  # noqa: E402


def project(folder: Path) -> dict[str, str]:
    """A project folder with the demo sources and their data; the environment that points at it."""
    (folder / "configs" / "sources").mkdir(parents=True)
    shutil.copytree(REPO / "configs" / "destinations", folder / "configs" / "destinations")
    shutil.copytree(REPO / "configs" / "templates", folder / "configs" / "templates")
    for path in (REPO / "configs" / "sources").glob("demo_*.yaml"):
        shutil.copy(path, folder / "configs" / "sources" / path.name)
    generate_demo(folder / "demo" / "data")
    return {"INGEST_CONFIG_DIR": str(folder / "configs"), "INGEST_RUNS_DIR": str(folder / "runs"),
            "INGEST_DATA_DIR": str(folder / ".ingest"), "INGEST_SECRETS_FILE": str(folder / ".ingest" / "s.toml")}


def start_portal(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port",
               str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none"]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=REPO, env={**os.environ, **env, "PYTHONPATH": str(REPO)},
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if _healthy(url):
            return process, url
        time.sleep(0.1)
    raise RuntimeError(f"the portal did not start: {log.read_text(errors='replace')[-2000:]}")


def first_click(browser: object, url: str, timeout_s: float, shots: Path) -> tuple[bool, float, str]:
    """Sources -> demo_shop -> Test run; (sample rows shown, seconds from the click, what failed)."""
    from playwright.sync_api import expect

    expect.set_options(timeout=60_000)  # a loaded machine: each step may take a while; only the rows are judged
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(60_000)
    ui = Driver(page, shots)
    try:
        page.goto(f"{url}/sources")
        ui.widget("sources-pick").wait_for()
        ui.choose("sources-pick", "demo_shop")
        clicked = time.monotonic()
        ui.click(ui.widget("sources-test-run").locator("button").first)
        expect(page).to_have_url(re.compile(r"/source\?source=demo_shop$"))
        sample = ui.widget("test-run-customers-sample").get_by_test_id("stDataFrame")
        failed = page.get_by_text(re.compile(r"The test run of demo_shop failed"))
        expect(sample.or_(failed).first).to_be_visible(timeout=timeout_s * 1000)
        seconds = time.monotonic() - clicked
        if failed.count():
            return False, seconds, failed.first.inner_text()[:300].replace("\n", " ")
        expect(page.get_by_text(re.compile(r"^Test run of demo_shop: success"))).to_be_visible()
        return True, seconds, ""
    except Exception as exc:  # a hang or a page that never drew counts as a failure; say what it showed
        page.screenshot(path=str(shots / f"failure-{time.time():.0f}.png"))
        return False, 0.0, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the sample rows")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    rows, ok = [], 0
    with tempfile.TemporaryDirectory(prefix="first-click-") as tmp, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        shots = Path(tmp) / "shots"
        shots.mkdir()
        for start in range(1, args.starts + 1):
            folder = Path(tmp) / f"start{start}"
            process, url = start_portal(project(folder), Path(tmp) / f"portal{start}.log")
            try:
                shown, seconds, problem = first_click(browser, url, args.timeout, shots)
            finally:
                stop(process)
            ok += shown
            log = (Path(tmp) / f"portal{start}.log").read_text(errors="replace")
            errors = sorted(set(re.findall(r"(KeyError: '\w+'|_DeadlockError|partially initialized module)", log)))
            rows.append((start, "rows shown" if shown else "FAILED", f"{seconds:.1f}", problem or "-",
                         ", ".join(errors) or "-"))
            print(f"start {start}: {rows[-1][1]} ({seconds:.1f} s) {problem}", flush=True)
        browser.close()
    print()
    print(table(rows, ("start", "first click", "click -> rows (s)", "page showed", "portal log")))
    print(f"\n{ok} of {args.starts} fresh starts showed the sample rows on the first click")


if __name__ == "__main__":
    main()
