"""Queries over 10,000 run records (the dashboards' load): DuckDB read_json over the folder,
against plain json.load of every file in Python as the naive baseline."""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingestion_core.observe.records import RunRecord, TableResult, latest_runs, table_history, write_record


def generate(count: int) -> None:
    rng = random.Random(7)
    now = datetime.now(UTC)
    for i in range(count):
        source = f"source_{i % 40}"
        tables = [TableResult(name=f"t{t}", mode="full", status="success", rows=rng.randint(0, 10**6),
                              duration_s=rng.random() * 60,
                              quality=[{"check": "not_null", "status": rng.choice(["pass", "fail"])}])
                  for t in range(5)]
        write_record(RunRecord(run_id=f"run-{i:05d}", kind=rng.choice(["run", "run", "preview"]), source=source,
                               source_type="postgres", owner="team", destination="local_duckdb",
                               destination_type="duckdb", dataset=source, actor="bench",
                               status=rng.choice(["success"] * 8 + ["failed", "partial"]),
                               started_at=now - timedelta(minutes=i * 7), tables=tables, duration_s=rng.random() * 300))


def timed(func, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def naive() -> int:
    return sum(1 for p in Path(os.environ["INGEST_RUNS_DIR"]).rglob("*.json") if json.loads(p.read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["INGEST_RUNS_DIR"] = tmp
        started = time.perf_counter()
        generate(args.records)
        print(f"generated {args.records:,} records in {time.perf_counter() - started:.1f} s")
        results = [
            ("latest_runs(limit=50)", timed(lambda: latest_runs(limit=50))),
            ("latest_runs(source=..., status=failed)", timed(lambda: latest_runs(source="source_3", status="failed"))),
            ("all runs (limit 100000)", timed(lambda: latest_runs(limit=100_000))),
            ("table_history(source, table)", timed(lambda: table_history("source_3", "t1"))),
            ("naive: json.load every file", timed(naive, repeat=3)),
        ]
        for name, seconds in results:
            print(f"{name:<42} {seconds:6.3f} s")


if __name__ == "__main__":
    main()
