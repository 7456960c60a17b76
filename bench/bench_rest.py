"""REST API -> DuckDB, in one run (issue 5: REST sources):

  (a) `ingest run` of a rest_api source (its own record gives the in-process time)
  (b) plain dlt `rest_api_source` with its best settings (parquet loader files)
  (c) fetching the pages with plain `requests`, no dlt: the floor

over 100,000 records in 1,000 pages (offset paginator, 7 fields with a 2-item list and a
nested object) served by tests/http_api.py in a process of its own on 127.0.0.1; plus
`ingest preview --limit 100` of an API of 1,000,000 records (the first page only).

    .venv/bin/python bench/bench_rest.py [--items 100000] [--page-size 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from common import table  # noqa: E402

PLAIN_DLT = """
import time, dlt
from dlt.sources.rest_api import rest_api_source
started = time.perf_counter()
source = rest_api_source({{
    "client": {{"base_url": {url!r}, "paginator": {{"type": "offset", "limit": {size}, "total_path": "total"}}}},
    "resources": [{{"name": "items", "endpoint": {{"path": "offset/items", "data_selector": "data"}}}}],
}})
pipeline = dlt.pipeline(pipeline_name="plain", pipelines_dir={dir!r},
                        destination=dlt.destinations.duckdb({db!r}), dataset_name="bench_plain")
pipeline.run(source, loader_file_format="parquet", write_disposition="replace")
print(f"ELAPSED={{time.perf_counter() - started}}")
"""

FETCH_FLOOR = """
import time, requests
session = requests.Session()
started = time.perf_counter()
rows = 0
for offset in range(0, {items}, {size}):
    rows += len(session.get({url!r} + f"offset/items?offset={{offset}}&limit={size}").json()["data"])
assert rows == {items}, rows
print(f"ELAPSED={{time.perf_counter() - started}}")
"""

SOURCE = """name: api
owner: bench
source:
  type: rest_api
  base_url: {url}
  paginator: {{type: offset, limit: {size}, total_path: total}}
tables:
  - {{name: items, path: offset/items, data_selector: data, mode: full}}
"""


def start_api(items: int, page_size: int) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", "tests.http_api", "--items", str(items),
                                "--page-size", str(page_size)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    url = process.stdout.readline().strip()  # type: ignore[union-attr]
    if not url.startswith("http"):
        raise RuntimeError("the test API did not start")
    return process, url + "/"


def project(folder: Path, url: str, size: int) -> dict[str, str]:
    (folder / "configs" / "sources").mkdir(parents=True, exist_ok=True)
    (folder / "configs" / "destinations").mkdir(exist_ok=True)
    (folder / "configs" / "destinations" / "local_duckdb.yaml").write_text("type: duckdb\n")
    (folder / "configs" / "sources" / "api.yaml").write_text(SOURCE.format(url=url, size=size))
    return {"INGEST_CONFIG_DIR": str(folder / "configs"), "INGEST_DATA_DIR": str(folder / ".ingest"),
            "INGEST_RUNS_DIR": str(folder / "runs")}


@dataclass
class Measured:
    wall: float  # seconds, the whole process
    cpu: float  # user + system seconds of the process: steadier than wall time on a busy machine
    peak_mb: float
    inside: float | None = None  # what the process itself reports (ELAPSED= or the record's duration_s)
    output: str = ""


def run_process(command: list[str], env: dict[str, str] | None = None) -> Measured:
    """Run a process; its wall time, and its CPU time and peak RSS from its own rusage (os.wait4)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, env={**os.environ, **(env or {})}, stdout=out, stderr=err, cwd=REPO)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        output = out.read()
        if process.returncode:
            raise RuntimeError(f"{command[:3]} failed:\n{output[-2000:]}{err.read()[-3000:]}")
    inside = next((float(line.split("=", 1)[1]) for line in output.splitlines() if line.startswith("ELAPSED=")), None)
    return Measured(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, inside, output)


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def landed_rows(folder: Path) -> tuple[int, int]:
    import duckdb

    with duckdb.connect(str(folder / ".ingest" / "local_duckdb.duckdb"), read_only=True) as con:
        return con.execute("SELECT count(*), count(DISTINCT id) FROM api.items").fetchone()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--preview-items", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    process, url = start_api(args.items, args.page_size)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            run_benchmarks(Path(tmp), url, args)
    finally:
        process.terminate()
        process.wait()
    preview_benchmark(args)


INGEST = [sys.executable, "-m", "ingestion_core"]  # this checkout's `ingest` (run_process sets PYTHONPATH)


def run_benchmarks(folder: Path, url: str, args: argparse.Namespace) -> None:
    env = project(folder, url, args.page_size)
    plain_code = PLAIN_DLT.format(url=url, size=args.page_size, dir=str(folder / "plain"),
                                  db=str(folder / "plain.duckdb"))
    floor_code = FETCH_FLOOR.format(url=url, items=args.items, size=args.page_size)
    runs: dict[str, list[Measured]] = {"a": [], "b": [], "c": []}
    for _ in range(args.repeat):  # interleaved, so machine noise hits each alike
        a = run_process([*INGEST, "run", "api", "--json"], env)
        a.inside = json.loads(a.output)["duration_s"]
        runs["a"].append(a)
        runs["b"].append(run_process([sys.executable, "-c", plain_code]))
        runs["c"].append(run_process([sys.executable, "-c", floor_code]))
    assert landed_rows(folder) == (args.items, args.items), landed_rows(folder)
    n = args.items
    label = {"a": "(a) ingest run", "b": "(b) plain dlt rest_api_source, parquet", "c": "(c) requests only (the floor)"}
    rows = []
    for key, measured in runs.items():
        inside = median([m.inside for m in measured])
        rows.append((label[key], f"{inside:.2f}", f"{median([m.wall for m in measured]):.2f}",
                     f"{median([m.cpu for m in measured]):.2f}", f"{n / inside:,.0f}",
                     f"{max(m.peak_mb for m in measured):.0f}"))
    print(f"REST API -> DuckDB, {n:,} records in {n // args.page_size:,} pages, medians of {args.repeat}")
    print(table(rows, ("method", "seconds in-process", "seconds whole process", "CPU seconds", "rows/s",
                       "peak MB")))
    a_in, b_in = median([m.inside for m in runs["a"]]), median([m.inside for m in runs["b"]])
    a_cpu, b_cpu = median([m.cpu for m in runs["a"]]), median([m.cpu for m in runs["b"]])
    print(f"ratio a/b (throughput, in-process) = {b_in / a_in:.2f}; (CPU seconds) = {b_cpu / a_cpu:.2f}; "
          f"floor/a = {median([m.inside for m in runs['c']]) / a_in:.2f}")
    print("each run's in-process seconds, a / b / c:",
          " ".join(f"{x.inside:.1f}/{y.inside:.1f}/{z.inside:.1f}" for x, y, z in zip(*runs.values(), strict=True)))


def preview_benchmark(args: argparse.Namespace) -> None:
    process, url = start_api(args.preview_items, args.page_size)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env = project(Path(tmp), url, args.page_size)
            runs = []
            for _ in range(args.repeat):
                measured = run_process([*INGEST, "preview", "api", "--limit", str(args.page_size), "--json"], env)
                result = json.loads(measured.output)
                assert result["tables"][0]["rows"] >= args.page_size, result
                runs.append((result["duration_s"], measured.wall))
        print(f"preview --limit {args.page_size} of an API of {args.preview_items:,} records: "
              f"{median([r[0] for r in runs]):.2f} s in-process, {median([r[1] for r in runs]):.2f} s whole CLI "
              "process (median)")
    finally:
        process.terminate()
        process.wait()


if __name__ == "__main__":
    main()
