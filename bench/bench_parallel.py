"""Speed-up of loading tables in parallel: a SQLite source of 10 tables into DuckDB with
workers.tables_in_parallel = 1, 2 and 4 (the machine has 2 cores)."""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
from pathlib import Path

from common import measure, table

RUN = """
import time
from ingestion_core.config.store import ConfigStore
from ingestion_core.pipeline.runner import run_source
config = ConfigStore().load_source("wide").config
config.workers.tables_in_parallel = {workers}
started = time.perf_counter()
record = run_source(config, actor="bench")
assert record.status == "success", record.error
print(f"ELAPSED={{time.perf_counter() - started}}")
"""


def make_project(folder: Path, tables: int, rows: int) -> None:
    (folder / "configs" / "sources").mkdir(parents=True)
    (folder / "configs" / "destinations").mkdir()
    (folder / "configs" / "destinations" / "local_duckdb.yaml").write_text("type: duckdb\n")
    with sqlite3.connect(folder / "wide.sqlite") as con:
        for t in range(tables):
            con.execute(f"CREATE TABLE t{t} (id INTEGER PRIMARY KEY, a TEXT, b REAL, c TEXT)")
            con.executemany(f"INSERT INTO t{t} VALUES (?, ?, ?, ?)",
                            ((i, f"text {i}", i * 0.5, "2024-01-01") for i in range(rows)))
    entries = "".join(f"  - {{name: t{t}, mode: full}}\n" for t in range(tables))
    (folder / "configs" / "sources" / "wide.yaml").write_text(
        f"name: wide\nowner: bench\nsource: {{type: sqlite, path: wide.sqlite}}\ntables:\n{entries}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tables", type=int, default=10)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_project(folder, args.tables, args.rows)
        env = {"INGEST_CONFIG_DIR": str(folder / "configs"), "INGEST_DATA_DIR": str(folder / ".ingest"),
               "INGEST_RUNS_DIR": str(folder / "runs")}
        results = []
        for workers in (1, 2, 4):
            seconds, peak = measure(RUN.format(workers=workers), env, args.repeat)
            results.append((workers, seconds, peak))
        base = results[0][1]
        print(f"{args.tables} tables x {args.rows:,} rows, SQLite -> DuckDB, medians of {args.repeat}")
        print(table([(w, f"{s:.2f}", f"{args.tables * args.rows / s:,.0f}", f"{base / s:.2f}x", f"{p:.0f}")
                     for w, s, p in results], ("tables_in_parallel", "seconds", "rows/s", "speed-up", "peak MB")))


if __name__ == "__main__":
    main()
