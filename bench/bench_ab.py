"""Two checkouts of the product against each other on the demo shop's test run (issue 18 target
1): ``ingest preview demo_shop`` as a whole process and ``preview_source`` in-process (warm),
alternating base / branch, with the load average.

Example::

    .venv/bin/python bench/bench_ab.py --base /path/to/main --branch . --pairs 6
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IN_PROCESS = """
import json, sys, time
from ingestion_core.common import preload
from ingestion_core.config.store import ConfigStore
from ingestion_core.pipeline import runner
preload.skip_streamlit_secrets_lookup()  # as the CLI does
preload.load_heavy_modules()
config = ConfigStore().load_source(sys.argv[1]).config
runner.preview_source(config, actor="bench")  # the first of the process: not counted
walls, cpus = [], []
for _ in range(int(sys.argv[2])):
    wall, cpu = time.perf_counter(), time.process_time()
    result = runner.preview_source(config, actor="bench")
    walls.append(time.perf_counter() - wall)
    cpus.append(time.process_time() - cpu)
    assert result.record.status == "success", result.record.status
print(json.dumps({"wall": walls, "cpu": cpus, "rows": result.record.rows_total}))
"""


def whole(checkout: Path, folder: Path, source: str) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ingestion_core", "preview", source], cwd=folder, check=True,
                   env={**os.environ, "PYTHONPATH": str(checkout)}, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - started, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def in_process(checkout: Path, folder: Path, source: str, repeat: int) -> dict:
    done = subprocess.run([sys.executable, "-c", IN_PROCESS, source, str(repeat)], cwd=folder, check=True,
                          env={**os.environ, "PYTHONPATH": str(checkout)}, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--branch", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--source", default="demo_shop")
    args = parser.parse_args()
    # absolute: the processes run in another folder, where a relative PYTHONPATH would miss the checkout
    # and the installed package (whichever checkout the venv's editable install points to) be measured
    args.base, args.branch = args.base.resolve(), args.branch.resolve()
    folder = Path(tempfile.mkdtemp(prefix="bench_ab_"))
    shutil.copytree(args.branch / "configs", folder / "configs")
    subprocess.run([sys.executable, "-m", "ingestion_core", "demo"], cwd=folder, check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(args.branch)})
    loads = [os.getloadavg()[0]]
    figures: dict[str, dict[str, list[float]]] = {
        f"{who} {how}": {"wall": [], "cpu": []} for who in ("base", "branch") for how in ("process", "in-process")}
    for _ in range(args.pairs):
        for who, checkout in (("base", args.base), ("branch", args.branch)):
            wall, cpu = whole(checkout, folder, args.source)
            figures[f"{who} process"]["wall"].append(wall)
            figures[f"{who} process"]["cpu"].append(cpu)
            inside = in_process(checkout, folder, args.source, 1)
            figures[f"{who} in-process"]["wall"] += inside["wall"]
            figures[f"{who} in-process"]["cpu"] += inside["cpu"]
        loads.append(os.getloadavg()[0])
    print(f"{args.source}, {args.pairs} alternating pairs, load average (1 min) {min(loads):.1f}-{max(loads):.1f}")
    print("| | base wall s | branch wall s | branch/base wall | base CPU s | branch CPU s | branch/base CPU |")
    print("|---|---|---|---|---|---|---|")
    for how in ("process", "in-process"):
        base, branch = figures[f"base {how}"], figures[f"branch {how}"]
        ratio = {k: [b / a for a, b in zip(base[k], branch[k], strict=True)] for k in ("wall", "cpu")}
        print(f"| {how} | {spread(base['wall'])} | {spread(branch['wall'])} | {spread(ratio['wall'])} | "
              f"{spread(base['cpu'])} | {spread(branch['cpu'])} | {spread(ratio['cpu'])} |")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
