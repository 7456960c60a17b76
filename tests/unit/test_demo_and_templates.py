"""The demo data generator, the demo sources and the templates: the demo is deterministic and
idempotent, and every shipped YAML file validates."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from ingestion_core.cli.main import main, validate_file
from ingestion_core.config.models.destinations import DESTINATION_TYPES
from ingestion_core.config.models.sources import SOURCE_MODELS
from ingestion_core.demo import generate_demo
from tests.conftest import REPO

CONFIGS = REPO / "configs"
TEMPLATES = sorted((CONFIGS / "templates").glob("*.yaml"))
SOURCES = sorted((CONFIGS / "sources").glob("*.yaml"))
SHOP_TABLES = ("customers", "products", "orders", "order_items")
EVENT_FILES = ("2024-01-01.jsonl", "2024-01-02.jsonl", "2024-01-03.jsonl")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "data"
    generate_demo(out)
    return out


def _shop_contents(path: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(path) as connection:
        return {t: connection.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in SHOP_TABLES}


def _all_contents(out: Path) -> dict[str, object]:
    files = out / "files"
    return {
        "shop": _shop_contents(out / "shop.sqlite"),
        "stores": (files / "stores.csv").read_bytes(),
        **{name: (files / "events" / name).read_bytes() for name in EVENT_FILES},
        "prices": pq.read_table(files / "prices.parquet").to_pylist(),
    }


# --- demo data ------------------------------------------------------------------------------

def test_demo_writes_every_file(demo: Path) -> None:
    expected = {demo / "shop.sqlite", demo / "files" / "stores.csv", demo / "files" / "prices.parquet",
                *(demo / "files" / "events" / name for name in EVENT_FILES)}
    assert set(generate_demo(demo)) == expected
    assert all(p.is_file() and p.stat().st_size > 0 for p in expected)
    leftovers = [p for p in demo.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]
    assert leftovers == []


def test_demo_shop_tables(demo: Path) -> None:
    with sqlite3.connect(demo / "shop.sqlite") as connection:
        counts = {t: connection.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in SHOP_TABLES}
        assert counts["customers"] == 300
        assert counts["products"] == 120
        assert counts["orders"] == 1500
        assert 2000 <= counts["order_items"] <= 6000
        assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
        for table in SHOP_TABLES:
            columns = {row[1]: row[2] for row in connection.execute(f"PRAGMA table_info({table})")}
            assert columns["updated_at"] == "TIMESTAMP"
            pk = [row[1] for row in connection.execute(f"PRAGMA table_info({table})") if row[5]]
            assert len(pk) == 1 and columns[pk[0]] == "INTEGER"
            # ISO text timestamps, same shape everywhere
            bad = connection.execute(
                f"SELECT count(*) FROM {table} WHERE updated_at NOT GLOB "
                "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]'"
            ).fetchone()[0]
            assert bad == 0
        # some NULLs, a boolean-ish column and dates, as a real source has
        assert connection.execute("SELECT count(*) FROM customers WHERE birth_date IS NULL").fetchone()[0] > 0
        assert connection.execute("SELECT count(*) FROM orders WHERE coupon_code IS NULL").fetchone()[0] > 0
        assert {r[0] for r in connection.execute("SELECT DISTINCT is_vip FROM customers")} == {0, 1}
        assert connection.execute("SELECT typeof(price) FROM products LIMIT 1").fetchone()[0] == "real"
        first, last = connection.execute("SELECT min(order_date), max(order_date) FROM orders").fetchone()
        assert "2023-01-01" <= first < last <= "2024-03-31"
        # the demo's incremental cursor starts before every order
        assert connection.execute("SELECT min(updated_at) FROM orders").fetchone()[0] > "2023-01-01"


def test_demo_files(demo: Path) -> None:
    files = demo / "files"
    stores = (files / "stores.csv").read_text("utf-8").splitlines()
    assert stores[0].startswith("store_id,store_name,")
    assert len(stores) == 41
    for name in EVENT_FILES:
        events = [json.loads(line) for line in (files / "events" / name).read_text("utf-8").splitlines()]
        assert len(events) == 400
        assert all(isinstance(e["context"], dict) and e["event_time"].startswith(name[:10]) for e in events)
        assert len({e["event_id"] for e in events}) == len(events)
    prices = pq.read_table(files / "prices.parquet")
    assert 200 <= prices.num_rows <= 1000
    types = {f.name: str(f.type) for f in prices.schema}
    assert types["price"] == "decimal128(10, 2)"
    assert types["valid_from"] == "date32[day]"
    assert types["updated_at"] == "timestamp[us, tz=UTC]"


def test_demo_is_deterministic(demo: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate_demo(again)
    assert _all_contents(again) == _all_contents(demo)


def test_demo_is_idempotent_without_force(tmp_path: Path) -> None:
    out = tmp_path / "data"
    paths = generate_demo(out)
    stamps = {p: p.stat().st_mtime_ns for p in paths}
    (out / "files" / "stores.csv").write_text("changed\n", encoding="utf-8")
    stamps[out / "files" / "stores.csv"] = (out / "files" / "stores.csv").stat().st_mtime_ns

    assert generate_demo(out) == paths
    assert {p: p.stat().st_mtime_ns for p in paths} == stamps
    assert (out / "files" / "stores.csv").read_text("utf-8") == "changed\n"

    generate_demo(out, force=True)
    assert (out / "files" / "stores.csv").read_text("utf-8").startswith("store_id,")


def test_demo_fills_in_missing_files(tmp_path: Path) -> None:
    out = tmp_path / "data"
    generate_demo(out)
    before = _all_contents(out)
    (out / "shop.sqlite").unlink()
    (out / "files" / "events" / EVENT_FILES[1]).unlink()
    generate_demo(out)
    assert _all_contents(out) == before


def test_ingest_demo_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path / "d")]) == 0
    assert (tmp_path / "d" / "shop.sqlite").is_file()
    assert "shop.sqlite" in capsys.readouterr().out


# --- demo sources and templates -------------------------------------------------------------

def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text("utf-8"))


@pytest.mark.parametrize("path", TEMPLATES + SOURCES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_yaml_validates(path: Path) -> None:
    issues = validate_file(path)
    assert [i for i in issues if i.severity == "error"] == []
    schema = "destination" if "source" not in _load(path) else "source"
    assert path.read_text("utf-8").splitlines()[0] == f"# yaml-language-server: $schema=../{schema}.schema.json"


def test_ingest_validate_configs_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(CONFIGS)]) == 0
    assert capsys.readouterr().out == ""


def test_templates_cover_every_source_and_destination_type() -> None:
    docs = [_load(p) for p in TEMPLATES]
    source_types = {d["source"]["type"] for d in docs if "source" in d}
    destination_types = {d["type"] for d in docs if "source" not in d}
    assert source_types == set(SOURCE_MODELS) == {
        "postgres", "mysql", "mssql", "azure_sql", "oracle", "sqlite", "rest_api", "filesystem"}
    assert destination_types == set(DESTINATION_TYPES) == {"duckdb", "filesystem", "databricks"}
    assert all(d.get("destination") == "local_duckdb" for d in docs if "source" in d)


def test_demo_sources_point_at_the_demo_data() -> None:
    shop, files = _load(CONFIGS / "sources" / "demo_shop.yaml"), _load(CONFIGS / "sources" / "demo_files.yaml")
    assert shop["source"] == {"type": "sqlite", "path": "demo/data/shop.sqlite"}
    assert {t["name"] for t in shop["tables"]} == set(SHOP_TABLES)
    assert files["source"]["bucket_url"] == "demo/data/files"
    assert {t["name"]: t["format"] for t in files["tables"]} == {"stores": "csv", "events": "jsonl",
                                                               "prices": "parquet"}


def test_demo_globs_match_the_generated_files(demo: Path) -> None:
    files = _load(CONFIGS / "sources" / "demo_files.yaml")
    for table in files["tables"]:
        assert list((demo / "files").glob(table["glob"])), table["name"]
