"""The preview explorer on a real preview DuckDB: queries by bare table name, DuckDB itself
refusing files, writes, other databases, extensions and settings, the row cap, the timeout,
and downloads that read back equal."""

from __future__ import annotations

import io
import shutil
import sqlite3
from pathlib import Path

import pyarrow.csv
import pyarrow.parquet
import pytest

from ingestion_core.common import settings
from ingestion_core.config.store import ConfigStore
from ingestion_core.engine.destinations.duckdb import preview_database, preview_plan
from ingestion_core.engine.plan import load_slot
from ingestion_core.pipeline.explorer import ExplorerError, export_table, preview_tables, query_preview
from ingestion_core.pipeline.runner import preview_source
from tests.conftest import REPO_CONFIGS

SECRET = "s3cr3t-explorer-value"


@pytest.fixture(scope="module")
def preview_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real preview for the module (a test run of a SQLite source); each test gets a copy."""
    project = tmp_path_factory.mktemp("explorer")
    shutil.copytree(REPO_CONFIGS / "destinations", project / "configs" / "destinations")
    (project / "configs" / "sources").mkdir()
    with sqlite3.connect(project / "shop.sqlite") as con:
        con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, amount REAL, note TEXT)")
        con.executemany("INSERT INTO orders VALUES (?, ?, ?)", [(i, i / 4, f"n,{i}\n\"q\"") for i in range(300)])
        con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        con.executemany("INSERT INTO customers VALUES (?, ?)", [(i, f"c{i}") for i in range(12)])
    (project / "configs" / "sources" / "shop.yaml").write_text(
        "name: shop\nowner: market-de\nsource: {type: sqlite, path: shop.sqlite}\ndataset: raw_shop\n"
        "tables:\n  - {name: orders, mode: full}\n  - {name: customers, mode: full}\n"
    )
    with pytest.MonkeyPatch.context() as env:
        for name, folder in (("CONFIG", "configs"), ("RUNS", "runs"), ("DATA", ".ingest")):
            env.setenv(f"INGEST_{name}_DIR", str(project / folder))
        result = preview_source(ConfigStore().load_source("shop").config, actor="ana", limit=50)
        assert result.record.status == "success"
        return preview_database("shop")


@pytest.fixture
def previewed(ingest_env: Path, preview_file: Path) -> Path:
    preview_database("shop").parent.mkdir(parents=True)
    shutil.copy(preview_file, preview_database("shop"))
    secrets = settings.secrets_file()
    secrets.parent.mkdir(parents=True, exist_ok=True)
    secrets.write_text(f'[shop]\npassword = "{SECRET}"\n')
    return ingest_env


def test_no_preview_yet_is_said_plainly(ingest_env: Path) -> None:
    assert preview_tables("shop") == []
    with pytest.raises(ExplorerError, match=r"no preview of shop yet.*ingest preview shop") as error:
        query_preview("shop", "SELECT 1")
    assert error.value.reason == "no_preview"


def test_queries_use_bare_table_names_of_the_preview_dataset(previewed: Path) -> None:
    assert preview_tables("shop") == ["customers", "orders"]
    result = query_preview("shop", "SELECT count(*) AS n, sum(amount) AS total FROM orders")
    assert result.columns == ["n", "total"] and result.rows.to_pylist() == [{"n": 50, "total": sum(i / 4 for i in
                                                                                                     range(50))}]
    assert result.truncated is False and result.duration_s >= 0
    joined = query_preview("shop", "SELECT c.name FROM customers c JOIN orders o ON o.id = c.id ORDER BY c.id")
    assert joined.rows.column("name").to_pylist() == [f"c{i}" for i in range(12)]


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_text('{secrets}')",
    "SELECT * FROM read_csv('{secrets}')",
    "SELECT * FROM read_csv_auto('/etc/passwd')",
    "SELECT * FROM glob('{project}/*')",
    "COPY orders TO '{project}/stolen.csv'",
    "ATTACH '{project}/other.duckdb' AS other",
    "SET enable_external_access = true",
    "RESET lock_configuration",
    "INSTALL httpfs",
    "LOAD httpfs",
    "DELETE FROM orders",
    "CREATE TABLE copied AS SELECT * FROM orders",
])
def test_files_writes_databases_extensions_and_settings_are_refused_by_duckdb(previewed: Path, sql: str) -> None:
    statement = sql.format(secrets=settings.secrets_file(), project=previewed)
    with pytest.raises(ExplorerError, match="refused: the explorer only reads the preview's tables") as error:
        query_preview("shop", statement)
    assert error.value.reason == "refused"
    assert SECRET not in str(error.value)
    assert not (previewed / "stolen.csv").exists() and not (previewed / "other.duckdb").exists()
    assert query_preview("shop", "SELECT count(*) AS n FROM orders").rows.to_pylist() == [{"n": 50}]


def test_row_cap_truncates_and_says_so(previewed: Path) -> None:
    capped = query_preview("shop", "SELECT * FROM orders ORDER BY id", max_rows=10)
    assert capped.rows.num_rows == 10 and capped.truncated is True
    assert capped.rows.column("id").to_pylist() == list(range(10))
    whole = query_preview("shop", "SELECT * FROM range(25000)", max_rows=25000)
    assert whole.rows.num_rows == 25000 and whole.truncated is False


def test_a_long_query_is_interrupted_by_the_timeout(previewed: Path) -> None:
    with pytest.raises(ExplorerError, match=r"ran longer than 0.5 s and was stopped") as error:
        query_preview("shop", "SELECT count(*) FROM range(1000000000) a, range(1000000) b", timeout_s=0.5)
    assert error.value.reason == "timeout"
    assert query_preview("shop", "SELECT 1 AS one").rows.to_pylist() == [{"one": 1}]  # the next query runs


def test_sql_errors_and_bad_input_come_back_as_messages(previewed: Path) -> None:
    with pytest.raises(ExplorerError, match=r"SQL error: .*ordrs does not exist") as error:
        query_preview("shop", "SELECT * FROM ordrs")
    assert error.value.reason == "sql"
    with pytest.raises(ExplorerError, match="the query is empty"):
        query_preview("shop", "  ")


def test_a_preview_being_written_makes_the_query_wait_then_say_busy(previewed: Path) -> None:
    with load_slot(preview_plan("shop")), pytest.raises(ExplorerError, match="being written right now") as error:
        query_preview("shop", "SELECT 1", timeout_s=0.3)
    assert error.value.reason == "busy"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_round_trips(previewed: Path, fmt: str) -> None:
    data = export_table("shop", "orders", fmt)
    read = pyarrow.csv.read_csv(io.BytesIO(data)) if fmt == "csv" else pyarrow.parquet.read_table(io.BytesIO(data))
    expected = query_preview("shop", "SELECT id, amount, note FROM orders").rows
    assert read.column_names == ["id", "amount", "note"]  # dlt's own columns left out
    assert read.to_pylist() == expected.to_pylist()
    assert len(export_table("shop", "orders", fmt, limit=7)) < len(data)


def test_export_names_the_valid_tables_and_formats(previewed: Path) -> None:
    with pytest.raises(ExplorerError, match="has no table 'ordrs'; its tables: customers, orders"):
        export_table("shop", "ordrs", "csv")
    with pytest.raises(ExplorerError, match="format 'xlsx' is not one of csv, parquet"):
        export_table("shop", "orders", "xlsx")  # type: ignore[arg-type]
