"""Demo shop (4 SQLite tables): ``ingest preview`` against the full ``ingest run`` of the same
source (issue 18 target 1), in alternating pairs, in-process and as whole processes, with wall
and CPU time, and where each table's time goes (bench/breakdown.py).

A preview must never cost more than the full run of the same small source: the ratio column.

Example::

    .venv/bin/python bench/bench_preview.py --pairs 5
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from common import table  # noqa: E402


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def whole_process(kind: str, folder: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one ``ingest <kind> demo_shop`` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ingestion_core", kind, "demo_shop"], cwd=folder, check=True,
                   env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - started, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5, help="alternating preview/run pairs (default 5)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench_preview_"))
    shutil.copytree(REPO / "configs", folder / "configs")
    os.chdir(folder)
    subprocess.run([sys.executable, "-m", "ingestion_core", "demo"], check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(REPO)})
    print(f"load before: {load()}")

    timings: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": []} for k in
                                                  ("preview process", "run process", "preview", "run")}
    for _ in range(args.pairs):
        for kind in ("preview", "run"):
            wall, cpu = whole_process(kind, folder)
            timings[f"{kind} process"]["wall"].append(wall)
            timings[f"{kind} process"]["cpu"].append(cpu)

    from breakdown import Breakdown

    from ingestion_core.common import preload
    from ingestion_core.config.store import ConfigStore
    from ingestion_core.pipeline import runner

    preload.skip_streamlit_secrets_lookup()  # as the CLI does (in the portal Streamlit is loaded anyway)
    started = time.perf_counter()
    preload.load_heavy_modules()
    imports = time.perf_counter() - started
    config = ConfigStore().load_source("demo_shop").config
    calls = {"preview": lambda: runner.preview_source(config, actor="bench"),
             "run": lambda: runner.run_source(config, actor="bench")}
    breakdowns: dict[str, list[str]] = {"preview": [], "run": []}
    firsts = {}
    for index in range(args.pairs + 1):  # the first pair: the first calls of the process
        for kind in ("preview", "run"):
            with Breakdown() as breakdown:
                wall, cpu = time.perf_counter(), time.process_time()
                calls[kind]()
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if index == 0:
                firsts[kind] = (wall, cpu, breakdown.table())
                continue
            timings[kind]["wall"].append(wall)
            timings[kind]["cpu"].append(cpu)
            breakdowns[kind].append(breakdown.table())
    print(f"load after: {load()}; heavy imports in process {imports:.2f} s")
    rows = []
    for what in ("process", ""):
        preview, run = timings[f"preview {what}".strip()], timings[f"run {what}".strip()]
        ratios = [p / r for p, r in zip(preview["wall"], run["wall"], strict=True)]
        rows.append((what or "in-process", spread(preview["wall"]), spread(preview["cpu"]), spread(run["wall"]),
                     spread(run["cpu"]), spread(ratios)))
    print(table(rows, ("demo shop", "preview wall s", "preview CPU s", "run wall s", "run CPU s",
                       "preview/run (wall)")))
    for kind in ("preview", "run"):
        wall, cpu, text = firsts[kind]
        print(f"\nfirst {kind} of the process: {wall:.2f} s wall, {cpu:.2f} s CPU\n{text}")
        print(f"\nlast {kind} (seconds per table and step; steps overlap across the table threads):\n"
              f"{breakdowns[kind][-1]}")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
