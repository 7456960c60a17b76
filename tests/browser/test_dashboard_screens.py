"""The four dashboards in a real Chromium: the portal (``streamlit run app.py``) over a month of
generated run records, each page checked for what it must show, the CSV export downloaded, and a
screenshot of each saved for docs/operations.md (into docs/images with UPDATE_SCREENSHOTS=1,
else into the test's temp folder)."""

from __future__ import annotations

import csv
import io
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ingestion_core.observe.records import ErrorInfo, Phase, RunRecord, TableResult, write_record
from tests.conftest import skip_or_fail
from tests.services import free_port

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
NOW = datetime.now(UTC)
TODAY = NOW.replace(hour=0, minute=0, second=0, microsecond=0)
FAILED_RUN = "crm_fr-today-failed"
# source -> owner, schedule, {table: usual rows}
SOURCES = {
    "sales_de": ("market-de", "0 6 * * *", {"orders": 120_000, "customers": 8_000, "products": 1_200}),
    "crm_fr": ("market-fr", "0 * * * *", {"contacts": 45_000, "deals": 3_000}),
    "web_events": ("market-it", "0 5 * * *", {"events": 2_400_000}),
    "finance_ledger": ("finance", "0 2 * * *", {"entries": 310_000}),
    "hr_people": ("market-de", None, {"employees": 900}),
}
IDS = {"orders": "order_id", "customers": "customer_id", "products": "product_id", "contacts": "contact_id",
       "deals": "deal_id", "events": "event_id", "entries": "entry_id", "employees": "employee_id"}
YAML = "name: {name}\nowner: {owner}\nsource: {{type: sqlite, path: demo/data/{name}.sqlite}}\n{schedule}tables:\n" \
       "  - name: {table}\n"


def _moment(days_ago: int, rng: random.Random) -> datetime:
    if days_ago == 0:  # earlier today, whatever the time now
        return TODAY + (NOW - TODAY) * rng.uniform(0.3, 0.9)
    return TODAY - timedelta(days=days_ago) + timedelta(hours=6, minutes=rng.randint(0, 20))


def _table(name: str, usual: int, rng: random.Random, status: str, rows: int | None = None,
           duplicates: int | None = None) -> TableResult:
    rows = rows if rows is not None else int(usual * rng.uniform(0.98, 1.02))
    seconds = max(1.0, rows / rng.uniform(9_800, 10_200))
    shares = (0.55, 0.15, 0.30)
    failing = status == "quality_failed"
    key = IDS[name]
    quality = [
        {"check": "not_null", "name": f"not_null({key})", "status": "fail" if failing else "pass",
         "severity": "error", "observed": 3 if failing else 0, "threshold": 0, "column": key,
         "message": "3 rows where the column is NULL" if failing else "no NULL"},
        {"check": "row_count", "name": "row_count", "status": "pass", "severity": "error", "observed": rows,
         "threshold": {"min": 1}, "message": ""},
    ]
    if name in ("orders", "contacts"):
        duplicates = rng.choice([0] * 7 + [2]) if duplicates is None else duplicates
        quality.append({"check": "unique", "name": f"unique({key})", "status": "warn" if duplicates else "pass",
                        "severity": "warn", "observed": duplicates, "threshold": 0, "message": ""})
    if status == "failed":  # as the runner records the checks of a table whose load failed
        quality = [{**q, "status": "skipped", "observed": None, "message": "not run: the load of this table failed"}
                   for q in quality]
    table_status = status if status in ("success", "quality_failed") else "failed"
    return TableResult(
        name=name, mode="merge", status=table_status,
        backend="pyarrow", rows=rows if status != "failed" else 0, bytes=rows * 180, files=max(1, rows // 250_000),
        duration_s=seconds, phases={p: Phase(duration_s=seconds * s, pct=100 * s)
                                    for p, s in zip(("extract", "normalize", "load"), shares, strict=True)},
        quality=quality)


def write_month(project: Path) -> None:
    """A month of daily runs of five sources: one anomaly, one failing source, one late, one
    quality failure, a few previews; plus the source files with their schedules."""
    rng = random.Random(8)
    for name, (owner, schedule, tables) in SOURCES.items():
        text = YAML.format(name=name, owner=owner, table=next(iter(tables)),
                           schedule=f'schedule: "{schedule}"\n' if schedule else "")
        (project / "configs" / "sources" / f"{name}.yaml").write_text(text, encoding="utf-8")
    for name, (owner, _, tables) in SOURCES.items():
        for days_ago in range(29, -1, -1):
            status, error, run_id = "success", None, None
            if name == "finance_ledger" and days_ago < 3:
                continue  # its job stopped: late
            if name == "crm_fr" and days_ago == 0:
                status, run_id = "failed", FAILED_RUN
                error = ErrorInfo(error_class="OperationalError", transient=True,
                                  message="connection refused by crm-db.internal:5432",
                                  hint="the server cannot be reached: check host and port, and that the server "
                                       "is running and reachable from this machine")
            if name == "hr_people" and days_ago < 2:
                status = "quality_failed"
            if name == "sales_de" and days_ago == 12:
                status = "partial"
            started = _moment(days_ago, rng)
            first = next(iter(tables))
            results = [_table(t, usual, rng, status if t == first or status == "failed" else "success",
                              rows=usual * 4 if (name, t, days_ago) == ("sales_de", "orders", 2) else None,
                              duplicates=2 if (name, days_ago) == ("sales_de", 0) else None)
                       for t, usual in tables.items()]
            seconds = sum(r.duration_s for r in results)
            rows = sum(r.rows for r in results)
            write_record(RunRecord(
                run_id=run_id or f"{started:%Y%m%dT%H%M%S}-{name}", kind="run", source=name, source_type="postgres",
                owner=owner, destination="databricks_prod" if name != "hr_people" else "local_duckdb",
                destination_type="databricks", dataset=f"raw_{name}", trigger="schedule", actor="svc-ingest",
                status=status, started_at=started, ended_at=started + timedelta(seconds=seconds),
                duration_s=seconds, rows_total=rows, bytes_total=sum(r.bytes for r in results),
                throughput_rows_per_s=rows / seconds, tables=results, error=error, host="ingest-worker-1",
                phases={p: Phase(duration_s=sum(r.phases[p].duration_s for r in results), pct=pct)
                        for p, pct in (("extract", 55), ("normalize", 15), ("load", 30))},
                config_hash="9f2c41d0", config_snapshot=_snapshot(name, owner, days_ago, next(iter(tables))),
                log_path=str(_log(project, name)) if run_id else ""))
    for days_ago in (4, 1):
        started = _moment(days_ago, rng) + timedelta(hours=3)
        write_record(RunRecord(
            run_id=f"{started:%Y%m%dT%H%M%S}-crm_fr-preview", kind="preview", source="crm_fr", source_type="postgres",
            owner="market-fr", destination="local_duckdb", destination_type="duckdb", dataset="raw_crm_fr",
            trigger="portal", actor="ana@example.com", status="success", started_at=started, limit=1000,
            ended_at=started + timedelta(seconds=3), duration_s=3, rows_total=1000,
            tables=[_table("contacts", 1000, rng, "success")],
            config_snapshot=_snapshot("crm_fr", "market-fr", 1, "contacts")))


def _snapshot(name: str, owner: str, days_ago: int, table: str) -> str:
    mode = "merge" if days_ago < 1 else "append"  # the config changed today
    return (f"version: 1\nname: {name}\nowner: {owner}\nsource:\n  type: postgres\n  host: {name}-db.internal\n"
            f"  database: {name}\n  username: ${{secrets.{name}.username}}\n  password: ${{secrets.{name}.password}}\n"
            f"destination: databricks_prod\ntables:\n  - name: {table}\n    mode: {mode}\n    primary_key: [id]\n")


def _log(project: Path, name: str) -> Path:
    path = project / ".ingest" / "logs" / f"{name}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("06:00:01 INFO run started (trigger schedule, actor svc-ingest)\n"
                    "06:00:01 INFO extract contacts: connecting to crm-db.internal:5432\n"
                    "06:00:31 WARNING attempt 1 failed (transient): connection refused; retrying in 30 s\n"
                    "06:01:31 ERROR extract contacts failed: OperationalError: connection refused by "
                    "crm-db.internal:5432\n", encoding="utf-8")
    return path


@pytest.fixture
def portal(ingest_env: Path):
    """``streamlit run app.py`` over the generated month, in its own process group."""
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    write_month(ingest_env)
    port = free_port()
    log = (ingest_env / "streamlit.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=REPO, env={**os.environ, "INGEST_ACTOR": "ana"}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start: {(ingest_env / 'streamlit.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
        log.close()


def _shots_dir(tmp_path: Path) -> Path:
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        return REPO / "docs" / "images"
    return tmp_path


def _settle(page, charts: int) -> None:
    """Wait until the script finished and ``charts`` plotly charts are drawn."""
    page.wait_for_selector("[data-testid='stMetric']", timeout=30_000)
    page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {charts}",
                           timeout=30_000)
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=30_000)
    page.wait_for_timeout(500)  # plotly's transitions


def _screenshot(page, path: Path) -> None:
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": min(max(int(height), 900), 4000)})
    page.wait_for_timeout(500)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 900})


def test_dashboards_in_chromium(portal: str, chromium: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    shots = _shots_dir(tmp_path)
    # the session's Chromium: a second sync_playwright() in the same thread fails while the shared one runs
    # (this test failed every time after another browser test, passed only when it came first)
    context = chromium.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    page = context.new_page()
    try:
        # The entry page first: until app.py has called st.navigation once in this server
        # process, Streamlit serves a deep link from the pages/ folder the v1 way (the page
        # alone, without app.py's layout and navigation).
        page.goto(portal)
        page.wait_for_selector("[data-testid='stSidebar'] >> text=Run history", timeout=30_000)
        page.goto(f"{portal}/overview")
        _settle(page, charts=2)
        main = page.locator("[data-testid='stMain']")
        alerts = main.locator("[data-testid='stAlert']")
        expect(alerts.filter(has_text="crm_fr: last run failed")).to_contain_text("check host and port")
        expect(alerts.filter(has_text="finance_ledger is late")).to_be_visible()
        _screenshot(page, shots / "dashboard_overview.png")

        page.goto(f"{portal}/metrics")
        _settle(page, charts=5)
        page.get_by_label("Show", exact=True).click()
        page.get_by_role("option", name="sales_de / orders").click()
        _settle(page, charts=5)
        expect(main.locator(".js-plotly-plot .legendtext", has_text="anomaly").first).to_be_visible()
        expect(main.get_by_role("heading", name="Anomalies")).to_be_visible()
        _screenshot(page, shots / "dashboard_metrics.png")

        page.goto(f"{portal}/history?run={FAILED_RUN}")
        page.wait_for_selector("text=What to do", timeout=30_000)
        expect(main.locator("[data-testid='stAlert']").filter(
            has_text="OperationalError: connection refused by crm-db.internal:5432")).to_contain_text("What to do")
        page.get_by_role("tab", name="Config diff").click()
        expect(main.get_by_text("+    mode: merge")).to_be_visible()
        with page.expect_download() as download:
            page.get_by_role("button", name="Download CSV").click()
        rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
        assert len(rows) == 30 * 5 - 3 + 2  # every run, the two test runs (previews) included
        assert {r["kind"] for r in rows} == {"run", "test run"}  # as the portal names them
        page.get_by_role("tab", name="Log excerpt").click()
        _screenshot(page, shots / "dashboard_history.png")

        page.goto(f"{portal}/quality")
        _settle(page, charts=2)
        expect(main.get_by_text("Latest result of each check")).to_be_visible()
        _screenshot(page, shots / "dashboard_quality.png")
    except Exception:
        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        print(f"screenshot of the failure: {tmp_path / 'failure.png'}")
        raise
    finally:
        context.close()
    for name in ("overview", "metrics", "history", "quality"):
        assert (shots / f"dashboard_{name}.png").stat().st_size > 20_000
