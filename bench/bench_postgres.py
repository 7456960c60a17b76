"""PostgreSQL -> DuckDB, in one run (issue: engine benchmark):

  (a) `ingest run` (whole CLI process; its own record gives the in-process time)
  (b) plain dlt `sql_table` with its fastest backend (connectorx, parquet loader files)
  (c) DuckDB reading PostgreSQL directly with its postgres scanner: the practical limit

plus: `ingest preview --limit 1000` of a 10M-row table as a whole CLI process, and an
incremental (merge + cursor) run after 1% of the rows changed.

`--pairs N`: only (a), (b) and (c) on the 1M-row table, N alternating rounds (the order reversed
every other round), each run a fresh child process and a new DuckDB file; in-process wall and CPU
(the run itself, after the imports), whole-process wall, CPU and peak RSS, the ratios of each
round, the load average, and every landed table of (a) checked against PostgreSQL (count and
sums). `--a-env KEY=VALUE` (repeatable) adds a side (a') run with those environment variables
(dlt settings such as DATA_WRITER__COMPRESSION, INGEST_DUCKDB_MEMORY_LIMIT); `--base CHECKOUT` a
side (a0): `ingest run` of another checkout of the product (e.g. `git archive <commit> | tar -x -C
DIR`), for a before / after in the same rounds.

`--rss-rows 20000000` (opt-in, minutes): `ingest run` of a table that large in a child process,
its peak RSS (ru_maxrss from os.wait4), time and load average, and the landed count and sums
checked against PostgreSQL.

Needs: PostgreSQL binaries (scripts/bootstrap.sh --test) and, for (c),
`pip install duckdb-extension-postgres-scanner==1.5.5` (bench/requirements.txt).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from common import measure, table  # noqa: E402

from tests.services import _start_postgres  # noqa: E402

CREATE = """
CREATE TABLE {name} AS
SELECT g::bigint AS id, (g % 1000)::int AS customer_id, round((g % 100000) / 7.0, 2)::numeric(12,2) AS amount,
       'note ' || g AS note, ('sku-' || (g % 5000))::varchar(32) AS sku,
       timestamp '2024-01-01' + (g || ' seconds')::interval AS updated_at, date '2024-01-01' + (g % 365) AS day,
       g % 2 = 0 AS flag, g / 3.0::double precision AS ratio, md5(g::text) AS digest
FROM generate_series(1, {rows}) g;
ALTER TABLE {name} ADD PRIMARY KEY (id);
"""

PLAIN_DLT = """
import time, dlt
from dlt.sources.sql_database import sql_table
started = time.perf_counter()
resource = sql_table(credentials={url!r}, table="orders", backend="connectorx", chunk_size=100000,
                     reflection_level="full_with_precision")
pipeline = dlt.pipeline(pipeline_name="plain", pipelines_dir={dir!r},
                        destination=dlt.destinations.duckdb({db!r}), dataset_name="bench_plain")
pipeline.run(resource, loader_file_format="parquet")
print(f"ELAPSED={{time.perf_counter() - started}}")
"""

DUCKDB_SCAN = """
import time, duckdb, duckdb_extension_postgres_scanner as ext, os
path = os.path.join(os.path.dirname(ext.__file__), "extensions", "v1.5.5", "postgres_scanner.duckdb_extension")
con = duckdb.connect({db!r})
con.execute(f"LOAD '{{path}}'")
started = time.perf_counter()
con.execute("CREATE OR REPLACE TABLE orders AS SELECT * FROM postgres_scan({dsn!r}, 'public', 'orders')")
print(f"ELAPSED={{time.perf_counter() - started}}")
"""


def ingest(args: list[str], env: dict[str, str]) -> tuple[float, dict]:
    started = time.perf_counter()
    # the `ingest` command of this checkout, whatever venv runs the bench (a worktree has none of its own)
    done = subprocess.run([sys.executable, "-m", "ingestion_core", *args, "--json"],
                          env={**os.environ, "PYTHONPATH": str(REPO), **env},
                          capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])
    return elapsed, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=10_000_000, help="rows of the table previewed")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rss-rows", type=int, default=0,
                        help="also run a table of this many rows (e.g. 20000000) and report its peak RSS")
    parser.add_argument("--rss-only", action="store_true", help="only the --rss-rows case")
    parser.add_argument("--pairs", type=int, default=0,
                        help="only (a), (b), (c) on the --rows table: this many alternating rounds")
    parser.add_argument("--a-env", action="append", default=[], metavar="KEY=VALUE",
                        help="with --pairs: also a side (a') run with these environment variables")
    parser.add_argument("--base", type=Path, help="with --pairs: also a side (a0), ingest run of this checkout")
    args = parser.parse_args()
    server = _start_postgres()
    try:
        run_benchmarks(server, args)
    finally:
        server.stop()


def run_benchmarks(server, args) -> None:
    server.create_database("bench")
    if args.rss_rows:
        peak_rss(server, args.rss_rows)
    if args.rss_only:
        return
    if args.pairs:
        pairs(server, args)
        return
    server.execute(CREATE.format(name="orders", rows=args.rows), "bench")
    server.execute(CREATE.format(name="big", rows=args.big_rows), "bench")
    server.execute("VACUUM ANALYZE", "bench")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = project(folder, server)
        rows = []
        wall, cpu_env = [], env
        times_a = []
        for _ in range(args.repeat):
            elapsed, result = ingest(["run", "pg", "--tables", "orders"], cpu_env)
            wall.append(elapsed)
            times_a.append(result["duration_s"])
        peak_a = measure_peak_ingest(env)
        a = sorted(wall)[len(wall) // 2]
        a_in = sorted(times_a)[len(times_a) // 2]
        b, peak_b = measure(PLAIN_DLT.format(url=server.url("bench"), dir=str(folder / "plain"),
                                             db=str(folder / "plain.duckdb")), repeat=args.repeat)
        dsn = f"host={server.host} port={server.port} dbname=bench user={server.user} password={server.password}"
        try:
            c, peak_c = measure(DUCKDB_SCAN.format(db=str(folder / "scan.duckdb"), dsn=dsn), repeat=args.repeat)
        except RuntimeError as exc:  # the postgres scanner is a separate install (bench/requirements.txt)
            print(f"(c) skipped: {str(exc).strip().splitlines()[-1]}")
            c, peak_c = float("nan"), float("nan")
        n = args.rows
        rows.append(("(a) ingest run (in-process)", f"{a_in:.2f}", f"{n / a_in:,.0f}", f"{peak_a:.0f}"))
        rows.append(("(a) ingest run (whole process)", f"{a:.2f}", f"{n / a:,.0f}", "-"))
        rows.append(("(b) plain dlt sql_table connectorx", f"{b:.2f}", f"{n / b:,.0f}", f"{peak_b:.0f}"))
        rows.append(("(c) DuckDB postgres_scan", f"{c:.2f}", f"{n / c:,.0f}", f"{peak_c:.0f}"))
        print(f"PostgreSQL -> DuckDB, {n:,} rows x 10 columns, medians of {args.repeat}")
        print(table(rows, ("method", "seconds", "rows/s", "peak MB")))
        print(f"ratio a/b (throughput, in-process) = {b / a_in:.2f}; a/c = {c / a_in:.2f}")

        previews, cpus = [], []
        for _ in range(args.repeat):
            before = child_cpu()
            previews.append(ingest(["preview", "pg", "--tables", "big", "--limit", "1000"], env)[0])
            cpus.append(child_cpu() - before)
        print(f"preview of 1,000 rows of a {args.big_rows:,}-row table, whole CLI process: "
              f"median {sorted(previews)[len(previews) // 2]:.2f} s "
              f"(CPU user+sys median {sorted(cpus)[len(cpus) // 2]:.2f} s: steadier than wall on a busy machine)")

        ingest(["run", "pg", "--tables", "orders_inc"], env)  # the first run loads everything
        server.execute("UPDATE orders SET updated_at = now(), amount = amount + 1 WHERE id % 100 = 0", "bench")
        elapsed, result = ingest(["run", "pg", "--tables", "orders_inc"], env)
        print(f"merge + cursor run after 1% of rows changed: {result['duration_s']:.2f} s in-process, "
              f"{elapsed:.2f} s whole process, {result['rows_total']:,} rows loaded")


INGEST_TIMED = """
import time
from ingestion_core.common import preload
preload.load_heavy_modules()
from ingestion_core.cli.main import main
started, cpu = time.perf_counter(), time.process_time()
code = main(['run', 'pg', '--tables', 'orders', '--json'])
print(f"\\nELAPSED={time.perf_counter() - started}\\nCPU={time.process_time() - cpu}")
raise SystemExit(code)
"""

CPU_CLOCK = ("started = time.perf_counter()", "started, cpu = time.perf_counter(), time.process_time()")
PRINT_CPU = 'print(f"CPU={{time.process_time() - cpu}}")\n'
PLAIN_DLT_TIMED = PLAIN_DLT.replace(*CPU_CLOCK) + PRINT_CPU
DUCKDB_SCAN_TIMED = DUCKDB_SCAN.replace(*CPU_CLOCK) + PRINT_CPU


def child(code: str, env: dict[str, str], cwd: Path) -> dict[str, float]:
    """Run ``code`` in a fresh Python in ``cwd``: its own ELAPSED / CPU lines (the timed part), the
    whole process's wall, CPU (user + sys, os.wait4) and peak RSS. Not in the checkout: ``python -c``
    puts its working directory first on ``sys.path``, before PYTHONPATH (``--base`` would import
    this checkout)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=out, stderr=err, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        out.seek(0), err.seek(0)
        if os.waitstatus_to_exitcode(status):
            raise RuntimeError(f"benchmark step failed:\n{err.read().decode()[-3000:]}")
        lines = out.read().decode().splitlines()
    found = dict(line.split("=", 1) for line in lines if line.startswith(("ELAPSED=", "CPU=")))
    return {"in_wall": float(found["ELAPSED"]), "in_cpu": float(found["CPU"]), "wall": wall,
            "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / 1024}


def pairs(server, args) -> None:
    """(a), (b), (c) [and (a')] in ``args.pairs`` alternating rounds: see the module's docstring."""
    import statistics

    import duckdb

    server.execute(CREATE.format(name="orders", rows=args.rows), "bench")
    server.execute("VACUUM ANALYZE orders", "bench")
    checksum = ("SELECT count(*), sum(id)::bigint, sum(amount), sum(customer_id)::bigint, sum(length(note))::bigint, "
                "round(sum(ratio)::numeric, 3), min(digest), max(digest), min(updated_at), max(day), "
                "sum(CASE WHEN flag THEN 1 ELSE 0 END)::bigint FROM {}")
    source = tuple(server.execute(checksum.format("orders"), "bench")[0])
    dsn = f"host={server.host} port={server.port} dbname=bench user={server.user} password={server.password}"
    variant = dict(item.split("=", 1) for item in args.a_env)
    sides = ["a", "b", "c"] + (["a'"] if variant else []) + (["a0"] if args.base else [])
    results: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
    loads = []
    with tempfile.TemporaryDirectory() as tmp:
        for round_no in range(args.pairs):
            loads.append(os.getloadavg()[0])
            for side in (sides if round_no % 2 == 0 else sides[::-1]):
                folder = Path(tmp) / f"{round_no}{side}"
                folder.mkdir()
                if side.startswith("a"):
                    env = {**os.environ, "PYTHONPATH": str(args.base if side == "a0" else REPO),
                           **project(folder, server), **(variant if side == "a'" else {})}
                    results[side].append(child(INGEST_TIMED, env, folder))
                    with duckdb.connect(str(folder / ".ingest" / "local_duckdb.duckdb"), read_only=True) as con:
                        landed = con.execute(checksum.format("pg.orders")).fetchone()
                    if tuple(landed) != source:
                        raise RuntimeError(f"({side}) landed {landed}, PostgreSQL has {source}")
                elif side == "b":
                    code = PLAIN_DLT_TIMED.format(url=server.url("bench"), dir=str(folder / "plain"),
                                                  db=str(folder / "plain.duckdb"))
                    results[side].append(child(code, dict(os.environ), folder))
                else:
                    code = DUCKDB_SCAN_TIMED.format(db=str(folder / "scan.duckdb"), dsn=dsn)
                    results[side].append(child(code, dict(os.environ), folder))
                shutil.rmtree(folder)
        loads.append(os.getloadavg()[0])

    def spread(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"

    rows = [(f"({side})", *(spread([r[key] for r in results[side]]) for key in ("in_wall", "in_cpu", "wall", "cpu")),
             f"{max(r['rss'] for r in results[side]):.0f}") for side in sides]
    print(f"PostgreSQL -> DuckDB, {args.rows:,} rows x 10 columns, {args.pairs} alternating rounds, "
          f"load average (1 min) {' '.join(f'{x:.1f}' for x in loads)}; landed count and sums equal to the source's")
    print(table(rows, ("side", "in-process s", "in-process CPU s", "whole process s", "whole CPU s", "peak MB")))

    def same_round(key: str, side: str, other: str) -> str:
        pairs = zip(results[side], results[other], strict=True)
        return f"{other}/{side}: " + spread([o[key] / s[key] for s, o in pairs])

    for key, name in (("in_wall", "in-process wall"), ("in_cpu", "in-process CPU"), ("wall", "whole-process wall")):
        ratios = [same_round(key, side, other) for side in sides if side.startswith("a") for other in ("b", "c")]
        ratios += [same_round(key, "a", other) for other in sides if other in ("a'", "a0")]
        print(f"{name}, same round: " + "; ".join(ratios))


def peak_rss(server, rows: int) -> None:
    """``ingest run`` of a ``rows``-row table as a child process: peak RSS, time, and the landed
    table checked against the source (count, sum of ids, sum of amounts)."""
    import duckdb

    started = time.perf_counter()
    server.execute(CREATE.format(name="huge", rows=rows), "bench")
    server.execute("VACUUM ANALYZE huge", "bench")
    print(f"huge ({rows:,} rows) created in {time.perf_counter() - started:.0f} s")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": str(REPO), **project(Path(tmp), server)}
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-m", "ingestion_core", "run", "pg", "--tables", "huge", "--json"],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        output = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)
        elapsed, load_after = time.perf_counter() - started, os.getloadavg()[0]
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(output[-2000:].decode())
        record = json.loads(output)
        source = server.execute("SELECT count(*), sum(id), sum(amount) FROM huge", "bench")[0]
        with duckdb.connect(str(Path(tmp) / ".ingest" / "local_duckdb.duckdb"), read_only=True) as con:
            landed = con.execute("SELECT count(*), sum(id), sum(amount) FROM pg.huge").fetchone()
            types = con.execute("SELECT data_type FROM information_schema.columns WHERE table_name = 'huge' "
                                "AND column_name = 'amount'").fetchone()[0]
    print(f"ingest run of {rows:,} rows: peak RSS {usage.ru_maxrss / 1024:,.0f} MB, {elapsed:.1f} s whole process, "
          f"{record['duration_s']:.1f} s in-process, CPU {usage.ru_utime + usage.ru_stime:.1f} s, "
          f"load average (1 min) {load_before:.2f} -> {load_after:.2f}")
    print(f"  landed {landed[0]:,} rows, amount {types}; count and sums equal to PostgreSQL's: "
          f"{tuple(landed) == tuple(source)}")
    server.execute("DROP TABLE huge", "bench")


def child_cpu() -> float:
    """CPU seconds (user + sys) of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure_peak_ingest(env: dict[str, str]) -> float:
    code = "from ingestion_core.cli.main import main\nmain(['run', 'pg', '--tables', 'orders'])\n"
    return measure(code, env, repeat=1)[1]


TABLES = ("  - {name: orders, mode: full}\n  - {name: big, mode: full}\n  - {name: huge, mode: full}\n"
          "  - {name: orders_inc, source_table: orders, mode: merge, primary_key: id, cursor: updated_at}\n")


def project(folder: Path, server, tables: str = TABLES) -> dict[str, str]:
    """A project with the source ``pg`` (the bench database, ``tables`` as YAML list items), read in
    batches of the product's default ``chunk_size`` (until 2026-12-07 the bench set 100,000)."""
    (folder / "configs" / "sources").mkdir(parents=True)
    (folder / "configs" / "destinations").mkdir()
    (folder / "configs" / "destinations" / "local_duckdb.yaml").write_text("type: duckdb\n")
    (folder / "configs" / "sources" / "pg.yaml").write_text(
        f"name: pg\nowner: bench\nsource:\n  type: postgres\n  host: {server.host}\n  port: {server.port}\n"
        f"  database: bench\n  username: {server.user}\n  password: '${{env:BENCH_PG_PASSWORD}}'\n"
        f"tables:\n{tables}"
    )
    return {"INGEST_CONFIG_DIR": str(folder / "configs"), "INGEST_DATA_DIR": str(folder / ".ingest"),
            "INGEST_RUNS_DIR": str(folder / "runs"), "BENCH_PG_PASSWORD": server.password}


if __name__ == "__main__":
    main()
