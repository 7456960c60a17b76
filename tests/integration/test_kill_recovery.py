"""A run killed with SIGKILL during extract, normalize or load, then run again: for incremental
and merge modes no row is lost and none doubled; for full mode the table is complete. Exact counts: every
source id lands once, with its value (``-s`` prints rows / lost / duplicated per case).

The kill is made by a child process that runs the real engine with one of dlt's internal
steps patched to SIGKILL the process at that point (the patch is on dlt, the outside world)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from ingestion_core.config.store import ConfigStore
from ingestion_core.observe.records import latest_runs
from ingestion_core.pipeline.runner import run_source

ROWS = 20_000
KILL_AT = {
    # inside extract: after the first chunk of rows was read
    "extract": """
import ingestion_core.engine.sources.sql as sql
original = sql.SqlSource.resource
def resource(self, ctx):
    seen = []
    def kill_after_first_chunk(item):
        seen.append(1)
        if len(seen) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return item
    return original(self, ctx).add_map(kill_after_first_chunk)
sql.SqlSource.resource = resource
""",
    # inside normalize: before the extracted files are normalized
    "normalize": """
from dlt.normalize.normalize import Normalize
def killed(self, *args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
Normalize.spool_schema_files = killed
""",
    # inside load: every job loaded, the package not yet marked complete
    "load": """
from dlt.load.load import Load
def killed(self, *args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
Load.complete_package = killed
""",
}


def make_db(path: Path) -> None:
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, value TEXT, updated_at TEXT)")
        con.executemany("INSERT INTO events VALUES (?, ?, ?)",
                        [(i, f"v{i}", f"2024-01-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}")
                         for i in range(ROWS)])


def run_killed_child(project: Path, phase: str) -> int:
    script = "import os, signal\n" + textwrap.dedent(KILL_AT[phase]) + textwrap.dedent("""
        from ingestion_core.config.store import ConfigStore
        from ingestion_core.pipeline.runner import run_source
        run_source(ConfigStore().load_source("kills").config, actor="victim")
    """)
    child = subprocess.run([sys.executable, "-c", script], env=os.environ.copy(), cwd=project,
                           capture_output=True, text=True, timeout=300)
    return child.returncode


@pytest.mark.parametrize("phase", ["extract", "normalize", "load"])
@pytest.mark.parametrize("mode", ["incremental", "merge", "full"])
def test_killed_run_then_rerun_loses_and_doubles_nothing(ingest_env: Path, phase: str, mode: str) -> None:
    make_db(ingest_env / "src.sqlite")
    (ingest_env / "configs" / "sources" / "kills.yaml").write_text(
        "name: kills\nowner: data-ops\nsource: {type: sqlite, path: src.sqlite}\n"
        f"tables:\n  - {{name: events, mode: {mode}, cursor: updated_at, primary_key: id, chunk_size: 5000}}\n"
    )
    assert run_killed_child(ingest_env, phase) == -signal.SIGKILL
    assert [r["status"] for r in latest_runs()] == ["abandoned"]  # the dead run is reported as such

    record = run_source(ConfigStore().load_source("kills").config, actor="rescuer")
    assert record.status == "success", record.error
    with duckdb.connect(str(ingest_env / ".ingest" / "local_duckdb.duckdb"), read_only=True) as con:
        total, distinct, in_source = con.execute(
            "SELECT count(*), count(DISTINCT id), count(DISTINCT id) FILTER (WHERE id BETWEEN 0 AND ?) "
            "FROM kills.events", [ROWS - 1]).fetchone()
        changed = con.execute("SELECT count(*) FROM kills.events WHERE value <> 'v' || id").fetchone()[0]
    lost, duplicated = ROWS - in_source, total - distinct
    print(f"\nkill at {phase}, {mode}: {total} rows after re-run, {lost} lost, {duplicated} duplicated")
    assert (total, distinct, in_source, lost, duplicated, changed) == (ROWS, ROWS, ROWS, 0, 0, 0)
