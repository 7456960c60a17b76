"""A 1,000-row preview of one table, as a whole ``ingest preview --limit 1000`` process (issue 18
target 1: < 1.5 s), for
  - one PostgreSQL table of --pg-rows rows (bench_postgres.py's table, 10 columns),
  - one REST API of --api-items records (tests/http_api.py, 100 records a page: 10 pages),
  - one SQLite table of the demo shop (order_items);
each --repeat times, alternating between the sources; median and spread of the wall time and of
the process's CPU seconds (steadier on a busy machine), the in-process time from the run record,
and the load average before and after. With --base CHECKOUT, each preview runs with that checkout
and with this one in turn (the order swapped every round), and the ratios branch/base are taken
within each round.

    .venv/bin/python bench/bench_single_preview.py [--pg-rows 2000000] [--api-items 1000000] [--repeat 5]
    .venv/bin/python bench/bench_single_preview.py --base /path/to/main --repeat 6

Needs the PostgreSQL binaries (scripts/bootstrap.sh --test).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

import bench_postgres  # noqa: E402
import bench_rest  # noqa: E402
from common import table  # noqa: E402

from ingestion_core.demo import generate_demo  # noqa: E402
from tests.services import _start_postgres  # noqa: E402

LIMIT = 1000


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-rows", type=int, default=2_000_000)
    parser.add_argument("--api-items", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--base", type=Path, help="another checkout to run against this one (A/B)")
    args = parser.parse_args()
    checkouts = {"branch": REPO} if args.base is None else {"base": args.base.resolve(), "branch": REPO}
    load_before = os.getloadavg()
    server = _start_postgres()
    api, url = bench_rest.start_api(args.api_items, 100)
    tmp = Path(tempfile.mkdtemp(prefix="single-preview-"))
    try:
        server.create_database("bench")
        server.execute(bench_postgres.CREATE.format(name="big", rows=args.pg_rows), "bench")
        server.execute("VACUUM ANALYZE big", "bench")
        env = {**bench_postgres.project(tmp / "pg", server), **{"PYTHONPATH": str(REPO)}}
        api_env = {**bench_rest.project(tmp / "api", url, 100), "PYTHONPATH": str(REPO)}
        demo = tmp / "demo"
        (demo / "configs" / "sources").mkdir(parents=True)
        shutil.copytree(REPO / "configs" / "destinations", demo / "configs" / "destinations")
        shutil.copy(REPO / "configs" / "sources" / "demo_shop.yaml", demo / "configs" / "sources")
        generate_demo(demo / "demo" / "data")
        demo_env = {"INGEST_CONFIG_DIR": str(demo / "configs"), "INGEST_DATA_DIR": str(demo / ".ingest"),
                    "INGEST_RUNS_DIR": str(demo / "runs"), "PYTHONPATH": str(REPO)}
        cases = {
            f"PostgreSQL table of {args.pg_rows:,} rows": (["pg", "--tables", "big"], env),
            f"REST API of {args.api_items:,} records (100 a page)": (["api"], api_env),
            "SQLite table (demo shop order_items)": (["demo_shop", "--tables", "order_items"], demo_env),
        }
        figures: dict[tuple[str, str], list[tuple[float, float, float]]] = {
            (name, who): [] for name in cases for who in checkouts}
        for round_ in range(args.repeat + 1):  # the first round warms the disk cache and is left out
            order = list(cases) if round_ % 2 else list(reversed(cases))
            whos = list(checkouts) if round_ % 2 else list(reversed(checkouts))
            for name in order:
                command, case_env = cases[name]
                for who in whos:
                    measured = bench_rest.run_process(
                        [*bench_rest.INGEST, "preview", *command, "--limit", str(LIMIT), "--json"],
                        {**case_env, "PYTHONPATH": str(checkouts[who])}, cwd=tmp)  # not a checkout: see run_process
                    record = json.loads(measured.output)
                    if record["status"] != "success" or record["tables"][0]["rows"] < min(LIMIT, 900):
                        raise RuntimeError(f"{name}: {record['status']}, {record['tables'][0]['rows']} rows")
                    if round_:
                        figures[name, who].append((measured.wall, measured.cpu, record["duration_s"]))
    finally:
        api.terminate()
        api.wait()
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    rows = [(name if who == "branch" else f"{name}, base", spread([f[0] for f in runs]),
             spread([f[1] for f in runs]), spread([f[2] for f in runs])) for (name, who), runs in figures.items()]
    print(f"`ingest preview --limit {LIMIT}` of one table, whole process, median (min-max) of {args.repeat}")
    print(table(rows, ("source", "wall s", "CPU s", "in-process s (record)")))
    if args.base is not None:
        ratios = [(name, *(spread([b[i] / a[i] for a, b in zip(figures[name, "base"], figures[name, "branch"],
                                                                   strict=True)]) for i in range(3)))
                  for name in cases]
        print("branch / base, same round")
        print(table(ratios, ("source", "wall", "CPU", "in-process")))
    print(f"load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
