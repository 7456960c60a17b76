"""Trust the first click (issue 14): start a fresh portal, and as the first thing click **Test
run** on demo_shop from the Sources page in a real Chromium; count the starts whose test run
shows its sample rows. Each start is a new ``streamlit run app.py`` process (nothing imported
yet) on a new project folder (demo sources and data, no earlier run).

    .venv/bin/python bench/bench_first_click.py [--starts 20] [--timeout 180]

Prints one line per start (outcome, seconds from the click to the sample grid, what the page
showed when it failed) and "N of M", with where the click's time went (from the test run's
record: click -> run started, the run, run ended -> rows drawn). ``BENCH_PYSPY=<py-spy binary>``
profiles each portal (py-spy's raw stacks, all threads, next to its log); ``BENCH_KEEP=1`` keeps
the folders. Needs Debian's Chromium and playwright
(requirements-dev.txt).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
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
    if os.environ.get("BENCH_PYSPY"):  # profile the portal: py-spy's raw stacks per start, next to the log
        command = [os.environ["BENCH_PYSPY"], "record", "-r", "200", "-d", "40", "--threads", "--idle",
                   "--format", "raw", "-o", str(log.with_suffix(".pyspy")), "--", *command]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=REPO, env={**os.environ, **env, "PYTHONPATH": str(REPO)},
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if _healthy(url):
            return process, url
        time.sleep(0.1)
    raise RuntimeError(f"the portal did not start: {log.read_text(errors='replace')[-2000:]}")


def first_click(browser: object, url: str, timeout_s: float, shots: Path) -> tuple[bool, float, float, str]:
    """Sources -> demo_shop -> Test run; (sample rows shown, seconds from the click, the click's
    wall-clock time, what failed)."""
    from playwright.sync_api import expect

    expect.set_options(timeout=60_000)  # a loaded machine: each step may take a while; only the rows are judged
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(60_000)
    ui = Driver(page, shots)
    clicked_at = time.time()
    try:
        page.goto(f"{url}/sources")
        ui.widget("sources-pick").wait_for()
        ui.choose("sources-pick", "demo_shop")
        clicked, clicked_at = time.monotonic(), time.time()
        ui.click(ui.widget("sources-test-run").locator("button").first)
        expect(page).to_have_url(re.compile(r"/source\?source=demo_shop$"))
        sample = ui.widget("test-run-customers-sample").get_by_test_id("stDataFrame")
        failed = page.get_by_text(re.compile(r"The test run of demo_shop failed"))
        expect(sample.or_(failed).first).to_be_visible(timeout=timeout_s * 1000)
        seconds = time.monotonic() - clicked
        if failed.count():
            return False, seconds, clicked_at, failed.first.inner_text()[:300].replace("\n", " ")
        expect(page.get_by_text(re.compile(r"^Test run of demo_shop: success"))).to_be_visible()
        return True, seconds, clicked_at, ""
    except Exception as exc:  # a hang or a page that never drew counts as a failure; say what it showed
        page.screenshot(path=str(shots / f"failure-{time.time():.0f}.png"))
        return False, 0.0, clicked_at, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    finally:
        context.close()


def breakdown(runs: Path, clicked_at: float, seconds: float) -> tuple[str, str, str]:
    """Where the click's time went, from the test run's record: click -> run started (the page
    switch, the imports the run waited for, the config), the run itself, run ended -> rows drawn
    (the page's poll and drawing)."""
    from datetime import datetime

    found = sorted(runs.glob("*/*/*/*.json"))
    if not found:
        return "-", "-", "-"
    record = json.loads(found[-1].read_text())
    started = datetime.fromisoformat(record["started_at"]).timestamp()
    ended = datetime.fromisoformat(record["ended_at"]).timestamp()
    return f"{started - clicked_at:.2f}", f"{ended - started:.2f}", f"{clicked_at + seconds - ended:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the sample rows")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    rows, ok = [], 0
    keep = os.environ.get("BENCH_KEEP")  # keep the projects, logs and profiles (printed at the end)
    folder = contextlib.nullcontext(tempfile.mkdtemp(prefix="first-click-")) if keep else tempfile.TemporaryDirectory(
        prefix="first-click-")
    with folder as tmp, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        shots = Path(tmp) / "shots"
        shots.mkdir()
        for start in range(1, args.starts + 1):
            folder = Path(tmp) / f"start{start}"
            process, url = start_portal(project(folder), Path(tmp) / f"portal{start}.log")
            try:
                shown, seconds, clicked_at, problem = first_click(browser, url, args.timeout, shots)
            finally:
                if os.environ.get("BENCH_PYSPY"):  # py-spy writes its stacks on SIGINT (SIGTERM loses them)
                    os.killpg(process.pid, signal.SIGINT)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.wait(timeout=30)
                stop(process)
            ok += shown
            to_run, run, to_rows = breakdown(folder / "runs", clicked_at, seconds) if shown else ("-",) * 3
            log = (Path(tmp) / f"portal{start}.log").read_text(errors="replace")
            errors = sorted(set(re.findall(r"(KeyError: '\w+'|_DeadlockError|partially initialized module)", log)))
            rows.append((start, "rows shown" if shown else "FAILED", f"{seconds:.2f}", to_run, run, to_rows,
                         problem or "-", ", ".join(errors) or "-"))
            print(f"start {start}: {rows[-1][1]} ({seconds:.1f} s) {problem}", flush=True)
        browser.close()
    print()
    print(table(rows, ("start", "first click", "click -> rows (s)", "click -> run started", "run",
                       "run ended -> rows", "page showed", "portal log")))
    print(f"\n{ok} of {args.starts} fresh starts showed the sample rows on the first click")
    if keep:
        print(f"kept: {tmp}")


if __name__ == "__main__":
    main()
