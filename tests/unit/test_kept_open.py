"""A preview's DuckDB file kept open for its run (engine.destinations.duckdb.kept_open)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from ingestion_core.engine.destinations.duckdb import kept_open


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
