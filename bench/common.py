"""Shared helpers: run a Python snippet in a fresh process and measure wall time and peak RSS."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time


def measure(code: str, env: dict[str, str] | None = None, repeat: int = 3) -> tuple[float, float]:
    """(median seconds, max peak RSS in MB) of running ``code`` with ``python -c`` ``repeat`` times.

    The time covers the whole process (imports included) unless the snippet prints
    ``ELAPSED=<seconds>``, which is then used instead."""
    times, peaks = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code], env={**os.environ, **(env or {})},
                              capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"benchmark step failed:\n{done.stderr[-3000:]}")
        for line in done.stdout.splitlines():
            if line.startswith("ELAPSED="):
                elapsed = float(line.split("=", 1)[1])
        times.append(elapsed)
        peaks.append(max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024)
    return statistics.median(times), max(peaks)


def table(rows: list[tuple], headers: tuple[str, ...]) -> str:
    cells = [headers, *[tuple(str(c) for c in r) for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "-|-".join("-" * w for w in widths))
    return "\n".join(lines)
