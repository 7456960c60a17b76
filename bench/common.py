"""Shared helpers: run a Python snippet in a fresh process and measure wall time and peak RSS."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time


def measure(code: str, env: dict[str, str] | None = None, repeat: int = 3) -> tuple[float, float]:
    """(median seconds, max peak RSS in MB) of running ``code`` with ``python -c`` ``repeat`` times.

    The time covers the whole process (imports included) unless the snippet prints
    ``ELAPSED=<seconds>``, which is then used instead. The peak RSS is the process's own."""
    times, peaks = [], []
    code = code + PEAK
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code], env={**os.environ, **(env or {})},
                              capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"benchmark step failed:\n{done.stderr[-3000:]}")
        for line in done.stdout.splitlines():
            if line.startswith("ELAPSED="):
                elapsed = float(line.split("=", 1)[1])
            if line.startswith("PEAK_KB="):
                peaks.append(int(line.split("=", 1)[1]) / 1024)
        times.append(elapsed)
    return statistics.median(times), max(peaks)


PEAK = """
import atexit as _atexit, resource as _resource
_atexit.register(lambda: print(f"PEAK_KB={_resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss}", flush=True))
"""


def table(rows: list[tuple], headers: tuple[str, ...]) -> str:
    cells = [headers, *[tuple(str(c) for c in r) for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "-|-".join("-" * w for w in widths))
    return "\n".join(lines)
