"""Type adapters keyed by (source type, destination type) change the type a column is read as,
at reflection time, through dlt's type_adapter_callback."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import duckdb
import sqlalchemy as sa

from ingestion_core.config.store import ConfigStore
from ingestion_core.pipeline.runner import run_source
from ingestion_core.typemap import adapters as type_adapters


def test_registered_adapter_changes_the_landed_type(ingest_env: Path, monkeypatch) -> None:
    with sqlite3.connect(ingest_env / "a.sqlite") as con:
        con.execute("CREATE TABLE prices (id INTEGER, price REAL, label TEXT)")
        con.execute("INSERT INTO prices VALUES (1, 2.5, 'x')")
    (ingest_env / "configs" / "sources" / "adapt.yaml").write_text(
        "name: adapt\nowner: data-ops\nsource: {type: sqlite, path: a.sqlite}\ntables:\n  - {name: prices}\n")
    monkeypatch.setattr(type_adapters, "TYPE_ADAPTERS", {})

    @type_adapters.register_type_adapter("sqlite", "duckdb")
    def money(sql_type):
        return sa.Numeric(12, 2) if isinstance(sql_type, sa.Float) else None

    @type_adapters.register_type_adapter("sqlite", "databricks")
    def never(sql_type):  # another destination: must not apply
        return sa.Text()

    record = run_source(ConfigStore().load_source("adapt").config, actor="ana")
    assert record.status == "success", record.error
    with duckdb.connect(str(ingest_env / ".ingest" / "local_duckdb.duckdb"), read_only=True) as con:
        types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_name = 'prices'").fetchall())
    assert types["price"] == "DECIMAL(12,2)" and types["label"] == "VARCHAR"


def test_no_adapter_for_a_pair_means_no_callback(monkeypatch) -> None:
    monkeypatch.setattr(type_adapters, "TYPE_ADAPTERS", {})
    assert type_adapters.type_adapter_for("oracle", "duckdb") is None
    type_adapters.register_type_adapter("oracle")(lambda t: sa.Float() if isinstance(t, sa.Numeric) else None)
    adapt = type_adapters.type_adapter_for("oracle", "databricks")
    assert isinstance(adapt(sa.Numeric()), sa.Float) and adapt(sa.Text()) is None
