"""Portal speed (issue 7), in one run:

  (a) click-to-first-rows: from pressing **Test run** on the Test & run page to the sample grid
      drawn, with the page's own code under Streamlit's AppTest (the preview runs in a background
      thread of the same process, as in the portal; the page is polled every 0.5 s like the
      page's live fragment), for
        - a 10,000,000-row PostgreSQL table (bench_postgres.py's table),
        - a 1,000,000-record paginated API (tests/http_api.py in a process of its own, offset
          paginator, 100 records a page, as bench_rest.py),
        - the demo shop (4 SQLite tables);
      against the floor: the same first 1,000 rows read directly (psycopg2 ``LIMIT 1000``; the
      API's first 10 pages with ``requests``), in the same run, as a ratio.
  (b) the render time of every page of the portal (AppTest): a new session's first render and
      the median of its reruns, over a project with the demo sources and their test runs.

    .venv/bin/python bench/bench_portal.py [--pg-rows 10000000] [--api-items 1000000] [--repeat 3]
                                          [--skip-pg] [--skip-api]

Needs the PostgreSQL binaries (scripts/bootstrap.sh --test) unless --skip-pg.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from bench_dashboards import timed  # noqa: E402
from common import table  # noqa: E402

PAGE = REPO / "pages" / "source.py"
PAGES = ["home", "sources", "source_editor", "source", "config_history", "overview", "metrics", "history",
         "quality", "jobs"]
PG_SOURCE = """name: pg
owner: bench
source: {{type: postgres, host: {host}, port: {port}, database: bench, username: {user},
          password: '${{env:BENCH_PG_PASSWORD}}'}}
tables:
  - {{name: big, mode: full}}
"""


def setup_project(folder: Path) -> None:
    """A project folder with the repo's destinations and the demo sources; INGEST_* point at it."""
    from ingestion_core.demo import generate_demo

    (folder / "configs" / "sources").mkdir(parents=True)
    shutil.copytree(REPO / "configs" / "destinations", folder / "configs" / "destinations")
    for path in (REPO / "configs" / "sources").glob("demo_*.yaml"):
        shutil.copy(path, folder / "configs" / "sources" / path.name)
    generate_demo(folder / "demo" / "data")
    os.environ.update(INGEST_CONFIG_DIR=str(folder / "configs"), INGEST_RUNS_DIR=str(folder / "runs"),
                      INGEST_DATA_DIR=str(folder / ".ingest"), INGEST_SECRETS_FILE=str(folder / "secrets.toml"))


def grid_drawn(at, key: str) -> bool:  # at: an AppTest
    blocks = [at.main]
    while blocks:
        block = blocks.pop()
        if str(getattr(block.proto, "id", "")).endswith(f"-{key}"):
            return len(block.dataframe) > 0
        blocks += [c for c in getattr(block, "children", {}).values() if hasattr(c, "children")]
    return False


def click_to_rows(source: str, table_name: str) -> tuple[float, float]:
    """(seconds from the click to the grid drawn, the preview's own duration_s)."""
    from streamlit.testing.v1 import AppTest

    from portal.sources import preview_jobs, test_run

    at = AppTest.from_file(str(PAGE), default_timeout=900)
    at.query_params["source"] = source
    at.run()
    started = time.perf_counter()
    at.button(key="test-run").click().run()
    job = preview_jobs.current(source)
    # the page's live fragment: every POLL_SECONDS it waits up to END_WAIT_SECONDS for the end
    while not job.wait(test_run.END_WAIT_SECONDS):
        time.sleep(test_run.POLL_SECONDS - test_run.END_WAIT_SECONDS)
    at.run()
    elapsed = time.perf_counter() - started
    record = job.record
    if job.error or record is None or record.status != "success" or not grid_drawn(at, f"test-run-{table_name}-sample"):
        raise RuntimeError(f"the test run of {source} did not show rows: {job.error or (record and record.error)}")
    return elapsed, record.duration_s


def first_rows_row(label: str, source: str, table_name: str, floor: Callable[[], object],
                   repeat: int) -> tuple[str, ...]:
    runs = [click_to_rows(source, table_name) for _ in range(repeat + 1)]
    first, rest = runs[0], runs[1:]
    median = statistics.median(r[0] for r in rest)
    direct = timed(floor, repeat)
    return (label, f"{first[0]:.2f}", f"{median:.2f}", f"{statistics.median(r[1] for r in rest):.2f}",
            f"{direct:.3f}", f"{median / direct:.0f}x")


# --- the sources -------------------------------------------------------------------------------

def postgres_rows(rows: int, repeat: int) -> tuple[tuple[str, ...], Callable[[], None]]:
    from bench_postgres import CREATE

    from tests.services import _start_postgres

    server = _start_postgres()
    try:
        server.create_database("bench")
        started = time.perf_counter()
        server.execute(CREATE.format(name="big", rows=rows), "bench")
        server.execute("VACUUM ANALYZE big", "bench")
        print(f"PostgreSQL table of {rows:,} rows made in {time.perf_counter() - started:.0f} s", flush=True)
        os.environ["BENCH_PG_PASSWORD"] = server.password
        Path(os.environ["INGEST_CONFIG_DIR"], "sources", "pg.yaml").write_text(
            PG_SOURCE.format(host=server.host, port=server.port, user=server.user), encoding="utf-8")

        def floor() -> None:
            with server.connect("bench") as connection, connection.cursor() as cursor:
                cursor.execute("SELECT * FROM big LIMIT 1000")
                assert len(cursor.fetchall()) == 1000

        return first_rows_row(f"PostgreSQL, {rows:,} rows", "pg", "big", floor, repeat), server.stop
    except BaseException:
        server.stop()
        raise


def api_rows(items: int, repeat: int) -> tuple[tuple[str, ...], Callable[[], None]]:
    import requests
    from bench_rest import SOURCE, start_api

    process, url = start_api(items, 100)
    try:
        Path(os.environ["INGEST_CONFIG_DIR"], "sources", "api.yaml").write_text(SOURCE.format(url=url, size=100),
                                                                              encoding="utf-8")
        session = requests.Session()

        def floor() -> None:
            got = sum(len(session.get(f"{url}offset/items?offset={o}&limit=100").json()["data"])
                      for o in range(0, 1000, 100))
            assert got == 1000

        return first_rows_row(f"REST API, {items:,} records", "api", "items", floor, repeat), process.terminate
    except BaseException:
        process.terminate()
        raise


def demo_rows(repeat: int) -> tuple[str, ...]:
    import sqlite3

    path = Path(os.environ["INGEST_CONFIG_DIR"]).parent / "demo" / "data" / "shop.sqlite"

    def floor() -> None:
        with sqlite3.connect(path) as connection:
            for name in ("customers", "orders", "order_items", "products"):
                connection.execute(f"SELECT * FROM {name} LIMIT 1000").fetchall()

    return first_rows_row("demo shop, 4 SQLite tables", "demo_shop", "customers", floor, repeat)


# --- page renders ------------------------------------------------------------------------------

def page_renders(repeat: int) -> list[tuple[str, ...]]:
    from streamlit.testing.v1 import AppTest

    rows = []
    for page in PAGES:
        def session() -> AppTest:
            at = AppTest.from_file(str(REPO / "pages" / f"{page}.py"), default_timeout=120)  # noqa: B023
            if page == "source":  # noqa: B023
                at.query_params["source"] = "demo_shop"  # with the test run's results on it
            return at

        session().run()  # imports, first DuckDB scans: once per server, not per page view
        first = timed(lambda: session().run(), repeat)
        at = session().run()
        reruns = timed(at.run, repeat)
        failed = [e.value for e in at.exception]
        rows.append((page, f"{first:.2f}", f"{reruns:.2f}", "error: " + failed[0][:60] if failed else "ok"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-rows", type=int, default=10_000_000)
    parser.add_argument("--api-items", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--skip-api", action="store_true")
    args = parser.parse_args()
    stops: list[Callable[[], None]] = []
    with tempfile.TemporaryDirectory() as tmp:
        setup_project(Path(tmp))
        try:
            first_rows = [demo_rows(args.repeat)]
            for skip, make, size in ((args.skip_pg, postgres_rows, args.pg_rows),
                                     (args.skip_api, api_rows, args.api_items)):
                if not skip:
                    row, stop = make(size, args.repeat)
                    first_rows.append(row)
                    stops.append(stop)
            print(f"\nClick Test run -> sample grid drawn (AppTest, 1,000 rows per table), medians of {args.repeat} "
                  "after a first one")
            print(table(first_rows, ("source", "first s", "median s", "preview s", "direct 1,000 rows s",
                                     "ratio")))
            print(f"\nRender time of every page (AppTest), medians of {args.repeat}")
            print(table(page_renders(args.repeat), ("page", "new session s", "rerun s", "")))
        finally:
            for stop in stops:
                stop()


if __name__ == "__main__":
    main()
