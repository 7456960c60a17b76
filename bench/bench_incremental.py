"""Merge + cursor run after 1 % of a 1M-row PostgreSQL table changed, into DuckDB (issue 18
target 4: < 2 s in-process), against plain dlt doing the same (``sql_table`` with connectorx,
``dlt.sources.incremental`` on the cursor, merge on the key) in the same run.

Each side runs in worker processes that have imported their libraries before the clock starts:
"warm", one long-lived process for all runs (the scheduler, the portal); "first run of a process",
a new process per run (an `ingest run` process, imports not counted). Each side has its own
pipelines and DuckDB file: a first full load, then per round one UPDATE of a different 1 % of the
rows (new cursor value) and one run of each side, the order reversed every other round.
Every run is checked: rows loaded, and row count + checksum of the landed table against the
source. Printed: medians (min-max) of the in-process seconds and of the product's steps, the
load average, and the SELECT the product sent to PostgreSQL (its cursor condition).

Example::

    .venv/bin/python bench/bench_incremental.py --rounds 6
    .venv/bin/python bench/bench_incremental.py --rounds 3 --profile /tmp/inc.prof  # cProfile, product runs
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# a --base worker imports the library from the base checkout (BENCH_LIBRARY), the bench's helpers from here
sys.path[:0] = [os.environ.get("BENCH_LIBRARY", str(REPO)), str(REPO / "bench")]

from common import table  # noqa: E402

# The same text per row in PostgreSQL and DuckDB: both cast these types to the same VARCHAR, but
# for a whole double (DuckDB '333.0', PostgreSQL '333').
COLUMNS = ("id", "customer_id", "amount", "note", "sku", "updated_at", "day", "flag", "ratio", "digest")
CHECKSUM = ("SELECT count(*), md5(string_agg(concat_ws('|', {cols}), chr(10) ORDER BY id)) FROM {table}"
            .replace("{cols}", ", ".join(f"CAST({c} AS VARCHAR)" for c in COLUMNS))
            .replace("CAST(ratio AS VARCHAR)", r"regexp_replace(CAST(ratio AS VARCHAR), '\.0$', '')"))
STEPS = ("setup", "resource", "extract", "normalize", "load_wait", "load", "schema_changes", "checks",
         "record_writes")


# --- the workers (one process each; one JSON line per command) ------------------------------

def product_worker(folder: Path) -> None:
    from breakdown import Breakdown

    from ingestion_core.common import preload
    from ingestion_core.config.store import ConfigStore
    from ingestion_core.pipeline import runner

    preload.load_heavy_modules()  # what run_source does first: done before the clock starts
    database = folder / ".ingest" / "local_duckdb.duckdb"
    sql_jobs = time_sql_jobs()
    print("ready", flush=True)
    for _ in sys.stdin:
        sql_jobs["merge_sql"] = 0.0
        config = ConfigStore().load_source("pg").config
        with Breakdown() as breakdown, profiled():
            started, cpu = time.perf_counter(), time.process_time()
            record = runner.run_source(config, actor="bench", trigger="cli", tables=["orders_inc"])
            elapsed, steps_cpu = time.perf_counter() - started, time.process_time() - cpu
        if record.status != "success":
            raise RuntimeError(record.model_dump_json()[-3000:])
        steps = dict(breakdown.seconds["orders_inc"])
        steps["merge_sql"], steps["cpu"] = sql_jobs["merge_sql"], steps_cpu
        reply(elapsed, record.rows_total, steps, database, f"{config.dataset_name}.orders_inc")


def plain_worker(folder: Path, url: str) -> None:
    from ingestion_core.common import preload

    # the same imports the product has done before its runs, and the skip of dlt's Streamlit-secrets
    # lookup (Streamlit is in this venv, not in plain dlt's: its import is not dlt's cost)
    preload.load_heavy_modules()
    database = folder / "plain.duckdb"
    sql_jobs = time_sql_jobs()
    print("ready", flush=True)
    for _ in sys.stdin:
        sql_jobs["merge_sql"] = 0.0
        steps: dict[str, float] = {}
        started, cpu = time.perf_counter(), time.process_time()
        with profiled():
            pipeline = plain_run(url, folder, database, steps)
        elapsed = time.perf_counter() - started
        steps["merge_sql"], steps["cpu"] = sql_jobs["merge_sql"], time.process_time() - cpu
        rows = sum(n for t, n in pipeline.last_trace.last_normalize_info.row_counts.items() if not t.startswith("_dlt"))
        reply(elapsed, rows, steps, database, "bench_plain.orders")


def plain_run(url: str, folder: Path, database: Path, steps: dict[str, float]) -> Any:
    """sql_table + incremental + merge, dlt's steps one by one (what ``pipeline.run`` does)."""
    import dlt
    from dlt.sources.sql_database import sql_table

    mark = time.perf_counter()
    resource = sql_table(credentials=url, table="orders", backend="connectorx", chunk_size=100000,
                         reflection_level="full_with_precision", write_disposition="merge", primary_key="id",
                         incremental=dlt.sources.incremental("updated_at"))
    steps["resource"], mark = time.perf_counter() - mark, time.perf_counter()
    pipeline = dlt.pipeline(pipeline_name="plain_inc", pipelines_dir=str(folder / "plain"),
                            destination=dlt.destinations.duckdb(str(database)), dataset_name="bench_plain")
    steps["setup"], mark = time.perf_counter() - mark, time.perf_counter()
    pipeline.extract(resource, loader_file_format="parquet")
    steps["extract"], mark = time.perf_counter() - mark, time.perf_counter()
    pipeline.normalize()
    steps["normalize"], mark = time.perf_counter() - mark, time.perf_counter()
    pipeline.load().raise_on_failed_jobs()
    steps["load"] = time.perf_counter() - mark
    return pipeline


@contextlib.contextmanager
def profiled() -> Iterator[None]:
    """With BENCH_PROFILE set: cProfile of the run into that file, and the modules the run imported
    (not imported before it) into <file>.imports."""
    path = os.environ.get("BENCH_PROFILE")
    if not path:
        yield
        return
    import cProfile

    from ingestion_core.pipeline import runner

    if "plain" in path:  # plain dlt runs in this thread
        with cProfile.Profile() as plain:
            yield
        plain.dump_stats(path)
        return
    before, original = set(sys.modules), runner._run_table
    main, table = cProfile.Profile(), cProfile.Profile()  # the table runs in a thread of its own

    def run_table(*args: Any) -> None:
        table.runcall(original, *args)

    runner._run_table = run_table
    try:
        with main:
            yield
    finally:
        runner._run_table = original
    table.dump_stats(path)
    main.dump_stats(path + ".main")
    Path(path + ".imports").write_text("\n".join(sorted(set(sys.modules) - before)))


def time_sql_jobs() -> dict[str, float]:
    """Seconds spent in the load's SQL jobs (the merge: staging -> table), summed into the returned dict."""
    from dlt.destinations.job_client_impl import SqlLoadJob

    spent = {"merge_sql": 0.0}
    original = SqlLoadJob.run

    def run(self: Any) -> None:
        started = time.perf_counter()
        try:
            original(self)
        finally:
            spent["merge_sql"] += time.perf_counter() - started

    SqlLoadJob.run = run
    return spent


def reply(elapsed: float, rows: int, steps: dict[str, float], database: Path, table_name: str) -> None:
    import duckdb

    import ingestion_core

    with duckdb.connect(str(database), read_only=True) as connection:
        count, checksum = connection.execute(CHECKSUM.replace("{table}", table_name)).fetchone()
    print(json.dumps({"elapsed": elapsed, "rows": rows, "steps": steps, "count": count, "checksum": checksum,
                      "library": str(Path(ingestion_core.__file__).parents[1])}), flush=True)


# --- the driver ------------------------------------------------------------------------------

class Worker:
    """One side's worker process: ``ready`` once its imports are done, then one run per request."""

    def __init__(self, kind: str, folder: Path, env: dict[str, str], url: str, profile: str | None,
                 repo: Path = REPO) -> None:
        command = [sys.executable, __file__, "--worker", kind, "--folder", str(folder), "--url", url]
        profiling = {"BENCH_PROFILE": f"{profile}.{kind}"} if profile else {}
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        env={**os.environ, "PYTHONPATH": str(repo), "BENCH_LIBRARY": str(repo),
                                             **env, **profiling})
        self.kind = kind
        assert self._line() == "ready"

    def _line(self) -> str:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.kind} worker died (see its stderr above)")
        return line.strip()

    def run(self) -> dict[str, Any]:
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        return json.loads(self._line())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=120)


class Side:
    """product or plain; ``fresh``: each run is the first of a new worker process (imports done),
    else every run goes to one long-lived worker. Each side has its own pipelines and DuckDB file.
    ``base``: the product of another checkout (the library imported from there)."""

    def __init__(self, kind: str, fresh: bool, folder: Path, env: dict[str, str], url: str,
                 profile: str | None, base: Path | None = None) -> None:
        self.kind, self.fresh, self.url, self.profile, self.repo = kind, fresh, url, profile, base or REPO
        self.name = f"{'base ' if base else ''}{kind}, {'first run of a process' if fresh else 'warm process'}"
        self.folder = folder / f"{'base_' if base else ''}{kind}_{'fresh' if fresh else 'warm'}"
        self.env = {**env, "INGEST_DATA_DIR": str(self.folder / ".ingest"),
                    "INGEST_RUNS_DIR": str(self.folder / "runs")}
        self.worker: Worker | None = None

    def run(self) -> dict[str, Any]:
        if self.worker is None:
            profile = self.profile and f"{self.profile}.{'fresh' if self.fresh else 'warm'}"
            self.worker = Worker(self.kind, self.folder, self.env, self.url, profile, self.repo)
        try:
            result = self.worker.run()
            if Path(result["library"]) != self.repo:
                raise SystemExit(f"{self.name}: ran the library of {result['library']}, not of {self.repo}")
            return result
        finally:
            if self.fresh:
                self.close()

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None


def project(folder: Path, server: Any, checks: bool) -> dict[str, str]:
    from bench_postgres import project as pg_project  # (see CREATE below: not in a --base worker)

    env = pg_project(folder, server, "  - {name: orders_inc, source_table: orders, mode: merge, primary_key: id, "
                     "cursor: updated_at" + (", checks: [{not_null: id}, {unique: id}, {row_count: {min: 1}}]"
                                             if checks else "") + "}\n")
    return {key: env[key] for key in ("INGEST_CONFIG_DIR", "BENCH_PG_PASSWORD")}


def history(runs: Path, count: int) -> None:
    """``count`` run records of 40 other sources (bench_records.py), in a runs folder."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import bench_records; bench_records.generate({count})"], check=True,
                   env={**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'bench'}", "INGEST_RUNS_DIR": str(runs)})
    print(f"{count:,} run records of other runs written in {time.perf_counter() - started:.1f} s")


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def spread(values: list[float], digits: int = 2) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def product_selects(log: str) -> list[str]:
    """What the server received about orders (its statement log): the reads of rows in full (the
    middle of a long select list cut), the catalog queries (reflection) counted."""
    entries: list[str] = []
    for line in log.splitlines():  # a statement over several lines goes on in lines that start with a tab
        if line.startswith("\t") and entries:
            entries[-1] += " " + line.strip()
        else:
            entries.append(line)
    sent = [e.split(": ", 2)[-1].strip() for e in entries
            if ("statement: " in e or "execute " in e) and "orders" in e and "string_agg" not in e]
    reads = [s for s in sent if "FROM orders" in s]
    shown = [s if len(s) < 300 else f"{s[:80]} ... {s[-120:]}" for s in reads]
    return [*shown, f"+ {len(sent) - len(reads)} catalog queries (reflection)"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=6, help="rounds of (1 %% changed, one run of each side)")
    parser.add_argument("--profile", help="cProfile of the product's runs into PROFILE.warm / PROFILE.fresh (the "
                                          "last run of each), the modules a run imported into *.imports")
    parser.add_argument("--history", type=int, default=0,
                        help="run records of other runs already in the product's runs folder (a scheduler's history)")
    parser.add_argument("--checks", action="store_true", help="the product's table has quality checks "
                        "(not_null and unique on the key, a row count): their cost shows in the breakdown")
    parser.add_argument("--base", help="another checkout (e.g. `git archive` of a base commit): each product "
                                       "side also runs with its library, in the same rounds")
    parser.add_argument("--sides", default="product,plain,product_fresh,plain_fresh",
                        help="which of product, plain, product_fresh, plain_fresh to run (default: all)")
    parser.add_argument("--worker", choices=("product", "plain"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "product":
        return product_worker(Path(args.folder))
    if args.worker == "plain":
        return plain_worker(Path(args.folder), args.url)

    from bench_postgres import CREATE  # (it puts this checkout first on sys.path: not in a --base worker)

    from tests.services import _start_postgres

    server = _start_postgres()
    try:
        server.create_database("bench")
        server.execute(CREATE.format(name="orders", rows=args.rows), "bench")
        server.execute("VACUUM ANALYZE", "bench")
        with tempfile.TemporaryDirectory() as tmp:
            rounds(server, Path(tmp), args)
    finally:
        server.stop()


def rounds(server: Any, folder: Path, args: argparse.Namespace) -> None:
    env = project(folder, server, args.checks)
    url = server.url("bench").replace("postgresql://", "postgresql+psycopg2://")
    sides = [Side(s.split("_")[0], s.endswith("_fresh"), folder, env, url, args.profile) for s in args.sides.split(",")]
    if args.base:  # each product side also with the base checkout's library, right after it
        sides = [twin for side in sides for twin in ([side] if side.kind != "product" else [
            Side("product", side.fresh, folder, env, url, None, Path(args.base).resolve()), side])]
    if args.history:
        history(folder / "history", args.history)
        for side in sides:
            shutil.copytree(folder / "history", side.env["INGEST_RUNS_DIR"])
    source = lambda: tuple(server.execute(CHECKSUM.replace("{table}", "orders"), "bench")[0])  # noqa: E731
    print(f"load before: {load()}")
    expected = source()
    for side in sides:
        first = side.run()
        if (first["count"], first["checksum"]) != expected:
            raise SystemExit(f"{side.name}: the first load differs from the source")
        print(f"{side.name}: first (full) load {first['elapsed']:.2f} s, {first['rows']:,} rows, checksum ok",
              flush=True)
    results: dict[str, list[dict[str, Any]]] = {s.name: [] for s in sides}
    loads, selects = [], []
    for i in range(args.rounds):
        server.execute(f"UPDATE orders SET updated_at = now() + interval '{i} minutes', amount = amount + 1 "
                       f"WHERE id % 100 = {i}", "bench")
        expected = source()
        for side in sides if i % 2 == 0 else sides[::-1]:
            loads.append(os.getloadavg()[0])
            mark = server.log_mark()
            result = side.run()
            if side.kind == "product":
                selects = product_selects(server.statement_log(mark))
            ok = (result["count"], result["checksum"]) == expected
            print(f"round {i} {side.name}: {result['elapsed']:.2f} s, {result['rows']:,} rows loaded, "
                  f"checksum {'ok' if ok else 'DIFFERS'}, load {load()}", flush=True)
            if not ok:
                raise SystemExit(f"{side.name}: the landed table differs from the source: {result} vs {expected}")
            results[side.name].append(result)
    for side in sides:
        side.close()
    report(results, loads, selects, args)


def report(results: dict[str, list[dict[str, Any]]], loads: list[float], selects: list[str],
           args: argparse.Namespace) -> None:
    print(f"\n{args.rows:,}-row table, 1 % changed per round, {args.rounds} rounds, {args.history:,} older run "
          f"records, checks {'on' if args.checks else 'off'}; load average (1 min) during the runs "
          f"{min(loads):.1f}-{max(loads):.1f}, now {load()}")
    rows = [(k, spread([r["elapsed"] for r in rs]), spread([r["steps"]["cpu"] for r in rs]),
             spread([r["rows"] for r in rs], 0)) for k, rs in results.items()]
    for how in ("warm process", "first run of a process"):
        product, plain = results.get(f"product, {how}"), results.get(f"plain, {how}")
        if product and plain:
            ratios = [p["elapsed"] / a["elapsed"] for a, p in zip(product, plain, strict=True)]
            cpu = [p["steps"]["cpu"] / a["steps"]["cpu"] for a, p in zip(product, plain, strict=True)]
            rows.append((f"plain / product, {how} (same round)", spread(ratios), spread(cpu), ""))
        base = results.get(f"base product, {how}")
        if product and base:
            ratios = [a["elapsed"] / b["elapsed"] for a, b in zip(product, base, strict=True)]
            cpu = [a["steps"]["cpu"] / b["steps"]["cpu"] for a, b in zip(product, base, strict=True)]
            rows.append((f"product / base product, {how} (same round)", spread(ratios), spread(cpu), ""))
    print(table(rows, ("in-process run", "seconds", "CPU seconds (all threads)", "rows loaded")))
    steps = [s for s in (*STEPS, "merge_sql") if any(s in r["steps"] for rs in results.values() for r in rs)]
    print("\nper step, seconds, median (min-max):")
    print(table([(k, *(spread([r["steps"].get(s, 0.0) for r in rs]) for s in steps)) for k, rs in results.items()],
                ("side", *steps)))
    print("\nwhat the product sent to PostgreSQL about orders in the last round:")
    for select in selects:
        print("  " + select)


if __name__ == "__main__":
    main()
