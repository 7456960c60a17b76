"""Bounded memory on big SQL tables: connectorx hands dlt one Arrow batch per ``chunk_size`` rows
(each cast by the type plan), and every connection of a DuckDB destination carries a memory
limit, so a large load or merge spills to disk instead of growing with the table."""

from __future__ import annotations

import logging
import math
from decimal import Decimal
from pathlib import Path

import dlt
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingestion_core.common import settings
from ingestion_core.engine.destinations.duckdb import duckdb_plan
from ingestion_core.engine.sources import BuildContext
from ingestion_core.engine.sources.sql import SqlSource
from ingestion_core.pipeline.runner import run_source
from tests.integration.test_type_fidelity_postgres import write_source

pytestmark = pytest.mark.services

ROWS = 2_500
TABLE = """
CREATE TABLE sales AS
SELECT g::bigint AS id, round(g / 7.0, 2)::numeric(12,2) AS amount, 'note ' || g AS note,
       timestamp '2024-01-01' + (g || ' seconds')::interval AS updated_at
FROM generate_series(1, {rows}) g;
ALTER TABLE sales ADD PRIMARY KEY (id);
"""


def batches(config, destination_type: str = "duckdb") -> list[pa.Table]:
    """What the table's resource, built as a run builds it, hands dlt."""
    table = config.tables[0]
    return list(SqlSource().resource(BuildContext(config, table, config.settings_for(table), destination_type)))


def test_connectorx_hands_dlt_one_cast_batch_per_chunk(ingest_env: Path, postgres_db) -> None:
    postgres_db.execute(TABLE.format(rows=ROWS))
    config = write_source(ingest_env, postgres_db, "  - {name: sales, mode: full}\n",
                          defaults="{chunk_size: 1000, backend: connectorx}")
    items = batches(config)
    assert [item.num_rows for item in items] == [1000, 1000, 500]  # ceil(2500 / 1000) batches
    assert len(items) == math.ceil(ROWS / 1000)
    for item in items:  # the type plan ran on each: connectorx reads numeric as decimal128(38,10)
        assert item.schema.field("amount").type == pa.decimal128(12, 2)
        assert item.schema.field("id").nullable is False  # the primary key is NOT NULL
    assert sum(pa.concat_tables(items).column("id").to_pylist()) == ROWS * (ROWS + 1) // 2


def test_a_streamed_table_lands_without_dlts_hint_warning(ingest_env: Path, postgres_db, caplog) -> None:
    """dlt warned once per batch that the table's column hints differ from the Arrow schema
    (connectorx calls every field nullable, the primary key is NOT NULL)."""
    postgres_db.execute(TABLE.format(rows=ROWS))
    config = write_source(ingest_env, postgres_db, "  - {name: sales, mode: full}\n",
                          defaults="{chunk_size: 1000, backend: connectorx}")
    dlt_logger = logging.getLogger("dlt")
    dlt_logger.addHandler(caplog.handler)  # dlt's logger does not hand records on to the root logger
    try:
        record = run_source(config, actor="ana")
    finally:
        dlt_logger.removeHandler(caplog.handler)
    assert record.status == "success", record.tables[0].error
    assert (record.tables[0].backend, record.tables[0].rows) == ("connectorx", ROWS)
    assert not [r for r in caplog.records if "hints were different" in r.getMessage()]


@pytest.mark.parametrize("backend", ["connectorx", "pyarrow"])
def test_a_duckdb_load_gets_whole_duckdb_row_groups_in_an_uncompressed_parquet_file(
        ingest_env: Path, postgres_db, monkeypatch, backend: str) -> None:
    """The loader file dlt inserts into DuckDB, by default: row groups of 122,880 rows, DuckDB's own
    (it then writes each once; 100,000-row ones it wrote, merged and wrote again), not compressed
    (it is read once, on this machine). The rows land as read."""
    monkeypatch.setenv("LOAD__DELETE_COMPLETED_JOBS", "false")  # keep the loaded file to look at
    rows = 250_000
    postgres_db.execute(TABLE.format(rows=rows))
    config = write_source(ingest_env, postgres_db, "  - {name: sales, mode: full}\n",
                          defaults=f"{{backend: {backend}}}")
    record = run_source(config, actor="ana")
    assert (record.status, record.tables[0].backend, record.tables[0].rows) == ("success", backend, rows)
    [loaded] = (ingest_env / ".ingest" / "pipelines").glob("*/load/loaded/*/completed_jobs/sales.*.parquet")
    metadata = pq.ParquetFile(loaded).metadata
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [122_880, 122_880, 4_240]
    assert {metadata.row_group(0).column(i).compression for i in range(metadata.num_columns)} == {"UNCOMPRESSED"}
    with duckdb.connect(str(ingest_env / ".ingest" / "local_duckdb.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*), sum(id), min(amount), max(amount) FROM pg.sales").fetchone() == \
            (rows, rows * (rows + 1) // 2, Decimal("0.14"), Decimal("35714.29"))


@pytest.mark.parametrize(("setting", "mode", "reported"), [
    (None, "full", "286.1 MiB"), (None, "append", "286.1 MiB"), (None, "merge", "default"),
    ("1GiB", "full", "1.0 GiB"), ("1GiB", "scd2", "1.0 GiB")])
def test_the_duckdb_destination_connection_reports_the_memory_limit(tmp_path, monkeypatch, setting, mode,
                                                                    reported) -> None:
    if setting:
        monkeypatch.setenv("INGEST_DUCKDB_MEMORY_LIMIT", setting)
    else:
        monkeypatch.delenv("INGEST_DUCKDB_MEMORY_LIMIT", raising=False)
    if reported == "default":  # DuckDB's own: 80 % of this machine's memory
        with duckdb.connect() as con:
            reported = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    plan = duckdb_plan("limited", tmp_path / "limited.duckdb")
    pipeline = dlt.pipeline("limited", pipelines_dir=str(tmp_path / "pipelines"),
                            destination=plan.destination_for(mode), dataset_name="limited")
    with pipeline.sql_client() as client:  # the client the loader opens its connections through
        assert client.execute_sql("SELECT current_setting('memory_limit')") == [(reported,)]


def test_a_merge_larger_than_the_insert_limit_lands(ingest_env: Path, postgres_db, monkeypatch) -> None:
    """DuckDB cannot spill the window that de-duplicates a merge: 300,000 rows of ~200 bytes
    (60 MB) failed to merge under a 48MB limit. A full load of them spills and lands under it;
    the merge lands because merges keep DuckDB's own limit."""
    monkeypatch.delenv("INGEST_DUCKDB_MEMORY_LIMIT", raising=False)
    monkeypatch.setattr(settings, "DUCKDB_MEMORY_LIMIT", "48MB")  # the default, made small
    rows = 300_000
    postgres_db.execute(TABLE.format(rows=rows).replace("'note ' || g", "'note ' || g || repeat('x', 200)"))
    config = write_source(ingest_env, postgres_db, "  - {name: sales, mode: merge, primary_key: id}\n"
                          "  - {name: sales_copy, source_table: sales, mode: full}\n", defaults="{chunk_size: 50000}")
    assert run_source(config, actor="ana").status == "success"
    postgres_db.execute("UPDATE sales SET note = 'changed' WHERE id % 3 = 0")
    record = run_source(config, actor="ana", tables=["sales"])
    assert record.status == "success", record.tables[0].error
    with duckdb.connect(str(ingest_env / ".ingest" / "local_duckdb.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*), count(DISTINCT id), count(*) FILTER (note = 'changed') "
                           "FROM pg.sales").fetchone() == (rows, rows, rows // 3)
        assert con.execute("SELECT count(*), min(length(note)) FROM pg.sales_copy").fetchone() == (rows, 206)


def test_a_memory_limit_that_is_not_a_size_names_the_variable_and_the_units(monkeypatch) -> None:
    monkeypatch.setenv("INGEST_DUCKDB_MEMORY_LIMIT", "3 bananas")
    with pytest.raises(ValueError, match=r"INGEST_DUCKDB_MEMORY_LIMIT: '3 bananas' is not a memory size.*MB.*GiB"):
        settings.duckdb_memory_limit()
