"""REST API -> DuckDB, in one run (issue 5: REST sources):

  (a) `ingest run` of a rest_api source (its own record gives the in-process time): by default
      through dlt's Arrow path (engine/sources/rest_arrow.py, issue 18 target 3)
  (a0) the same with INGEST_REST_ARROW=0: dlt's JSON path
  (b) plain dlt `rest_api_source` with its best settings (parquet loader files)
  (c) fetching the pages with plain `requests`, no dlt: the floor

over 100,000 records in 1,000 pages (offset paginator, 7 fields with a 2-item list and a
nested object) served by tests/http_api.py in a process of its own on 127.0.0.1; plus
`ingest preview --limit 100` of an API of 1,000,000 records (the first page only).

    .venv/bin/python bench/bench_rest.py [--items 100000] [--page-size 100] [--repeat 5] [--no-preview]

Every round runs each candidate once (the order rotated); the ratios plain/ingest are taken
within a round. The result check compares (a) and (a0) with (b): tables, columns, types, rows
and a checksum per table.
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


def run_process(command: list[str], env: dict[str, str] | None = None, cwd: Path = REPO) -> Measured:
    """Run a process; its wall time, and its CPU time and peak RSS from its own rusage (os.wait4).
    ``cwd``: where it runs (``python -m`` imports the package from there before PYTHONPATH)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        base = {k: v for k, v in os.environ.items() if k != "INGEST_REST_ARROW"}  # each candidate sets its own
        process = subprocess.Popen(command, env={**base, **(env or {})}, stdout=out, stderr=err, cwd=cwd)
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
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-preview", action="store_true", help="skip the preview of a million records")
    args = parser.parse_args()
    process, url = start_api(args.items, args.page_size)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            run_benchmarks(Path(tmp), url, args)
    finally:
        process.terminate()
        process.wait()
    if not args.no_preview:
        preview_benchmark(args)


INGEST = [sys.executable, "-m", "ingestion_core"]  # this checkout's `ingest` (run_process sets PYTHONPATH)


CANDIDATES = {
    "a": "(a) ingest run (default: dlt's Arrow path)",
    "a0": "(a0) ingest run, INGEST_REST_ARROW=0 (dlt's JSON path)",
    "b": "(b) plain dlt rest_api_source, parquet",
    "c": "(c) requests only (the floor)",
}


def run_benchmarks(folder: Path, url: str, args: argparse.Namespace) -> None:
    env = project(folder / "arrow", url, args.page_size)  # the default: no INGEST_REST_ARROW (run_process drops it)
    env_json = {**project(folder / "json", url, args.page_size), "INGEST_REST_ARROW": "0"}
    plain_code = PLAIN_DLT.format(url=url, size=args.page_size, dir=str(folder / "plain"),
                                  db=str(folder / "plain.duckdb"))
    floor_code = FETCH_FLOOR.format(url=url, items=args.items, size=args.page_size)
    commands = {"a": ([*INGEST, "run", "api", "--json"], env), "a0": ([*INGEST, "run", "api", "--json"], env_json),
                "b": ([sys.executable, "-c", plain_code], None), "c": ([sys.executable, "-c", floor_code], None)}
    runs: dict[str, list[Measured]] = {key: [] for key in commands}
    loads = []
    for round_ in range(args.repeat):  # interleaved, the order rotated, so machine noise hits each alike
        keys = list(commands)
        for key in keys[round_ % len(keys):] + keys[:round_ % len(keys)]:
            measured = run_process(*commands[key])
            if key.startswith("a"):
                record = json.loads(measured.output)
                assert record["tables"][0]["backend"] == ("rest_arrow" if key == "a" else "rest_api"), record
                measured.inside = record["duration_s"]
            runs[key].append(measured)
        loads.append(os.getloadavg()[0])
    for sub in ("json", "arrow"):
        assert landed_rows(folder / sub) == (args.items, args.items)
    expected = describe(folder / "plain.duckdb", "bench_plain")
    for key, db in (("a", folder / "arrow"), ("a0", folder / "json")):
        got = describe(db / ".ingest" / "local_duckdb.duckdb", "api")
        assert got == expected, f"{key} landed otherwise than plain dlt:\n{got}\n{expected}"
    print(f"result check: (a) and (a0) land the same tables, columns, types, rows and checksums as (b): {expected}")
    report(runs, args, loads)


def report(runs: dict[str, list[Measured]], args: argparse.Namespace, loads: list[float]) -> None:
    n = args.items
    rows = []
    for key, measured in runs.items():
        inside = [m.inside for m in measured]
        rows.append((CANDIDATES[key], spread(inside), spread([m.wall for m in measured]),
                     spread([m.cpu for m in measured]), f"{n / median(inside):,.0f}",
                     f"{max(m.peak_mb for m in measured):.0f}"))
    print(f"REST API -> DuckDB, {n:,} records in {n // args.page_size:,} pages, median (min-max) of {args.repeat}")
    print(table(rows, ("method", "seconds in-process", "seconds whole process", "CPU seconds", "rows/s",
                       "peak MB")))
    for key in ("a", "a0"):
        pairs = list(zip(runs["b"], runs[key], strict=True))
        print(f"plain/{key} same round: in-process {spread([b.inside / x.inside for b, x in pairs])}, "
              f"CPU {spread([b.cpu / x.cpu for b, x in pairs])}")
    print(f"load average (1 min) after each round: {' '.join(f'{x:.1f}' for x in loads)}")


def spread(values: list[float]) -> str:
    return f"{median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def describe(db: Path, dataset: str) -> dict[str, tuple]:
    """Per table: columns (name, type, nullable) in order, rows, a checksum over the data columns
    (a child row through its root row's id and its list index, as _dlt ids differ per run)."""
    import duckdb

    out = {}
    with duckdb.connect(str(db), read_only=True) as con:
        tables = [t for (t,) in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
                                            "AND table_name NOT LIKE '_dlt%' ORDER BY 1", [dataset]).fetchall()]
        for name in tables:
            columns = con.execute("SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                                  "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                                  [dataset, name]).fetchall()
            data = ", ".join(f"t.{c}" for c, _, _ in columns if not c.startswith("_dlt"))
            if "__" in name:
                root = name.split("__")[0]
                checksum = con.execute(f"SELECT sum(hash(r.id, t._dlt_list_idx, {data})) FROM {dataset}.{name} t "
                                       f"JOIN {dataset}.{root} r ON t._dlt_parent_id = r._dlt_id").fetchone()[0]
            else:
                checksum = con.execute(f"SELECT sum(hash({data})) FROM {dataset}.{name} t").fetchone()[0]
            rows = con.execute(f"SELECT count(*) FROM {dataset}.{name}").fetchone()[0]
            out[name] = (tuple(columns), rows, str(checksum))
    return out


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
