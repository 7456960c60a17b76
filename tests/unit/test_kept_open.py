"""A preview's DuckDB file kept open for its run (engine.destinations.duckdb.kept_open)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from ingestion_core.engine.destinations.duckdb import PreviewFileBusyError, kept_open
from ingestion_core.engine.errors import explain


def test_connections_inside_join_the_open_database_and_it_closes_after(tmp_path: Path) -> None:
    path = tmp_path / "preview" / "p.duckdb"
    with kept_open(path):
        with duckdb.connect(str(path)) as first:  # what dlt, the checks and the samples each do
            first.execute("SET GLOBAL default_order = 'DESC'")  # the open database's, not the file's
            first.execute("CREATE TABLE t AS SELECT 1 AS x")
        with duckdb.connect(str(path)) as second:  # the same open database, not the file opened again
            assert second.execute("SELECT current_setting('default_order'), (SELECT x FROM t)").fetchone() == (
                "DESC", 1)
        with pytest.raises(duckdb.ConnectionException):  # a different configuration cannot join it
            duckdb.connect(str(path), read_only=True)
    with duckdb.connect(str(path), read_only=True) as after:  # closed: opened afresh, as anyone may
        assert after.execute("SELECT x, current_setting('default_order') FROM t").fetchall() == [(1, "ASCENDING")]


def hold(path: Path, seconds: float) -> subprocess.Popen:
    """Another process with the DuckDB file open for ``seconds`` (returns once it holds it)."""
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import duckdb, sys, time
        connection = duckdb.connect({str(path)!r})
        print("held", flush=True)
        time.sleep({seconds})
        connection.close()
    """)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    return child


def test_a_file_held_by_another_process_is_waited_for(tmp_path: Path) -> None:
    """A preview of the same source in another process (a terminal while the portal test-runs):
    the second waits for the first instead of failing with DuckDB's lock error."""
    path = tmp_path / "p.duckdb"
    child = hold(path, 1.5)
    try:
        with kept_open(path, wait_s=120), duckdb.connect(str(path)) as con:
            assert child.poll() is not None  # it got the file only once the other process let go
            assert con.execute("SELECT 1").fetchone() == (1,)
    finally:
        child.kill()


def test_a_file_held_too_long_names_the_process_and_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "p.duckdb"
    child = hold(path, 120)
    try:
        with pytest.raises(PreviewFileBusyError) as raised, kept_open(path, wait_s=0.5):
            pass
    finally:
        child.kill()
        child.wait()
    assert f"in use by process {child.pid} and was not released within 0.5 s" in str(raised.value)
    message, hint = explain(raised.value)
    assert message == str(raised.value) and "another test run of this source is going" in hint
