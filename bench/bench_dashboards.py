"""Render time of each dashboard page over 10,000 run records (issue 8: under 2 s each).

Generates the records (40 sources, 5 tables each, previews, failures, quality results,
phases), then renders every dashboard page headless with Streamlit's AppTest: the first
render (cold: the one DuckDB scan of the folder plus the figures) and the following ones
(warm: the scan is cached, the figures are rebuilt). As the baseline it times the scan alone
(``load_run_data``) and DuckDB's bare ``read_json`` of the same folder, in the same run.

    .venv/bin/python bench/bench_dashboards.py [--records 10000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ingestion_core.observe.records import ErrorInfo, Phase, RunRecord, TableResult, write_record  # noqa: E402

PAGES = ["overview", "metrics", "history", "quality"]
OWNERS = ["market-de", "market-fr", "market-it", "finance"]
TRIGGERS = ["schedule"] * 6 + ["cli", "portal", "job"]
STATUSES = ["success"] * 16 + ["failed", "partial", "quality_failed", "cancelled"]
ERRORS = [("OperationalError", "connection refused by db.example.internal:5432",
           "the server cannot be reached: check host and port"),
          ("ProgrammingError", 'relation "public.orders" does not exist',
           "the table was not found: check the table name and schema")]


def _phases(rng: random.Random, seconds: float) -> dict[str, Phase]:
    shares = {"extract": rng.uniform(0.4, 0.7), "normalize": rng.uniform(0.1, 0.3)}
    shares["load"] = max(0.05, 1 - sum(shares.values()))
    return {p: Phase(duration_s=round(seconds * s, 3), pct=round(100 * s, 1)) for p, s in shares.items()}


def _table(rng: random.Random, index: int, status: str) -> TableResult:
    seconds = rng.uniform(1, 60)
    rows = rng.randint(1_000, 1_000_000)
    failing = status == "quality_failed" and index == 0
    duplicates = rng.choice([0] * 9 + [rng.randint(1, 20)])
    quality = [
        {"check": "not_null", "name": "not_null(id)", "column": "id", "status": "fail" if failing else "pass",
         "severity": "error", "observed": rng.randint(1, 50) if failing else 0, "threshold": 0},
        {"check": "row_count", "name": "row_count", "status": "pass", "severity": "error", "observed": rows,
         "threshold": {"min": 1}},
        {"check": "unique", "name": "unique(id)", "column": "id", "status": "warn" if duplicates else "pass",
         "severity": "warn", "observed": duplicates, "threshold": 0},
    ]
    table_status = {"success": "success", "quality_failed": "quality_failed" if failing else "success",
                    "partial": "failed" if index == 0 else "success"}.get(status, "failed")
    return TableResult(name=f"table_{index}", mode="merge", status=table_status, backend="pyarrow",
                       rows=rows if table_status != "failed" else 0, bytes=rows * rng.randint(40, 200),
                       files=rng.randint(1, 4), duration_s=seconds, phases=_phases(rng, seconds), quality=quality)


def generate(count: int, now: datetime | None = None, seed: int = 7) -> None:
    """``count`` records into INGEST_RUNS_DIR, one every 7 minutes back from ``now``."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    for i in range(count):
        source = f"source_{i % 40:02d}"
        status = rng.choice(STATUSES)
        kind = "preview" if i % 3 == 2 else "run"
        tables = [_table(rng, t, status) for t in range(5)]
        started = now - timedelta(minutes=7 * i + 3)
        duration = sum(t.duration_s for t in tables)
        error = ErrorInfo(**dict(zip(("error_class", "message", "hint"), rng.choice(ERRORS), strict=True))) \
            if status in ("failed", "partial") else None
        write_record(RunRecord(
            run_id=f"{started:%Y%m%dT%H%M%S}-{source}-{i:05d}", kind=kind, source=source, source_type="postgres",
            owner=OWNERS[i % 40 % len(OWNERS)], destination="databricks_prod" if i % 40 < 25 else "local_duckdb",
            destination_type="databricks", dataset=source, trigger=rng.choice(TRIGGERS), actor="bench",
            status=status, started_at=started, ended_at=started + timedelta(seconds=duration), duration_s=duration,
            tables=tables, rows_total=sum(t.rows for t in tables), bytes_total=sum(t.bytes for t in tables),
            phases=_phases(rng, duration), error=error, config_hash="abc", host="bench-host",
            config_snapshot=f"name: {source}\nowner: {OWNERS[i % len(OWNERS)]}\ntables:\n  - name: table_0\n"))


def write_configs(config_dir: Path) -> None:
    """The 40 sources as YAML files with hourly or daily schedules (freshness is computed)."""
    shutil.copytree(REPO / "configs" / "destinations", config_dir / "destinations", dirs_exist_ok=True)
    (config_dir / "sources").mkdir(parents=True, exist_ok=True)
    for n in range(40):
        schedule = "0 * * * *" if n % 2 else "0 6 * * *"
        (config_dir / "sources" / f"source_{n:02d}.yaml").write_text(
            f"name: source_{n:02d}\nowner: {OWNERS[n % len(OWNERS)]}\nsource: {{type: sqlite, path: x.sqlite}}\n"
            f'schedule: "{schedule}"\ntables:\n  - name: table_0\n', encoding="utf-8")


def render(page: str, reruns: int = 3, **state: str) -> tuple[tuple[float, float], list[tuple[float, float]]]:
    """((wall, cpu) of the first render with nothing cached, [(wall, cpu) of the following
    renders]) of one page, in seconds. CPU counts every thread of the process (DuckDB uses
    several): on a busy machine it shows the work when wall time shows the waiting."""
    from streamlit.testing.v1 import AppTest

    from portal.dashboards import dashboard_data

    at = AppTest.from_file(str(REPO / "pages" / f"{page}.py"), default_timeout=120)
    for key, value in state.items():
        at.session_state[key] = value
    dashboard_data.clear()
    started, cpu = time.perf_counter(), time.process_time()
    at.run()
    cold = (time.perf_counter() - started, time.process_time() - cpu)
    if at.exception:
        raise RuntimeError(f"{page}: {at.exception[0].value}")
    warm = []
    for _ in range(reruns):
        started, cpu = time.perf_counter(), time.process_time()
        at.run()
        warm.append((time.perf_counter() - started, time.process_time() - cpu))
    return cold, warm


def warm_up(tmp: Path) -> None:
    """Imports and first-use work of Streamlit and DuckDB, paid once per server process: over a
    folder of 50 records, kept out of the figures."""
    from streamlit.testing.v1 import AppTest

    runs = os.environ["INGEST_RUNS_DIR"]
    os.environ["INGEST_RUNS_DIR"] = str(tmp / "warm-up")
    generate(50)
    for page in PAGES:
        AppTest.from_file(str(REPO / "pages" / f"{page}.py"), default_timeout=120).run()
    os.environ["INGEST_RUNS_DIR"] = runs


def timed(func, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def baselines() -> list[tuple[str, float]]:
    """The scan the pages share, against DuckDB's read_json of the same columns (how the scan
    was first written) and a bare count."""
    import duckdb

    from ingestion_core.observe.records import _read_json
    from ingestion_core.observe.run_metrics import RUN_COLUMNS, TABLE_TYPE, load_run_data

    glob = f"{os.environ['INGEST_RUNS_DIR']}/*/*/*/*.json"
    columns = {**RUN_COLUMNS, "tables": TABLE_TYPE}
    data = load_run_data()

    def read_json() -> None:
        with duckdb.connect() as connection:
            connection.execute("SET preserve_insertion_order = false; SET enable_progress_bar = false")
            connection.execute(f"CREATE TEMP TABLE r AS SELECT * FROM {_read_json('?', columns, filename=True)}",
                               [glob])

    def count() -> None:
        duckdb.connect().execute(f"SELECT count(*) FROM read_json_auto('{glob}')").fetchall()

    return [(f"load_run_data ({len(data.runs):,} runs, {len(data.tables):,} table rows)", timed(load_run_data)),
            ("DuckDB read_json of the same columns into a table", timed(read_json)),
            ("DuckDB read_json_auto, count(*)", timed(count))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--keep", help="generate into (or reuse) this folder instead of a temp one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        project = Path(tmp) / "project"
        (project / "configs" / "sources").mkdir(parents=True)
        os.environ.update(INGEST_RUNS_DIR=str(folder), INGEST_CONFIG_DIR=str(project / "configs"),
                          INGEST_DATA_DIR=str(project / ".ingest"))
        if not any(folder.glob("*/*/*/*.json")):
            started = time.perf_counter()
            generate(args.records)
            print(f"generated {args.records:,} records in {time.perf_counter() - started:.1f} s")
        write_configs(project / "configs")
        warm_up(Path(tmp))
        for name, seconds in baselines():
            print(f"{name:<62} {seconds:6.3f} s")
        print(f"\n{'page':<12} {'first render (cpu)':>22} {'next renders, median (cpu)':>30}")
        runs = [p for p in sorted(folder.glob("*/*/*/*.json"))]
        for label, page, state in [*[(p, p, {}) for p in PAGES],
                                   ("history+run", "history", {"history_run": runs[len(runs) // 2].stem})]:
            (cold, cold_cpu), warm = render(page, **state)
            again = statistics.median(w for w, _ in warm), statistics.median(c for _, c in warm)
            print(f"{label:<12} {cold:>11.3f} s ({cold_cpu:5.2f} s) {again[0]:>19.3f} s ({again[1]:5.2f} s)")
        print(f"\n(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
