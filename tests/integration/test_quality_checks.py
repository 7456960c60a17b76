"""Quality checks end to end: a SQLite source loaded into DuckDB, every check kind passing on
clean data and failing on planted bad rows, severities and exit codes, odd identifiers,
custom_sql on its read-only connection, previews, append tables and failed tables."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from ingestion_core.cli.main import main
from ingestion_core.config.secrets import register_secret
from ingestion_core.config.store import ConfigStore
from ingestion_core.engine.destinations.filesystem import install_duckdb_extension
from ingestion_core.observe.records import check_history, load_record, record_path
from ingestion_core.pipeline.runner import preview_source, run_source

RECENT = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
EVERY_CHECK = """\
    checks:
      - {row_count: {min: 1, max: 100}}
      - {not_null: Group}
      - {unique: email}
      - {unique: [email, Status Code]}
      - {accepted_values: {column: Status Code, values: [open, paid]}}
      - {regex: {column: email, pattern: '^[^@]+@[^@]+$'}}
      - {range: {column: amount, min: 0}}
      - {freshness: {column: updated_at, max_age: 1d}}
      - {custom_sql: {name: negative amounts, sql: "SELECT * FROM {table} WHERE amount < 0"}}
      - {custom_sql: {sql: "SELECT count(*) FROM {table} WHERE amount < 0", max_value: 0}}
"""


def make_db(path: Path, rows: int = 100) -> None:
    with sqlite3.connect(path) as con:
        con.execute('CREATE TABLE "Order Lines" ("Order ID" INTEGER PRIMARY KEY, "Status Code" TEXT, email TEXT, '
                    'amount REAL, "Group" TEXT, updated_at TEXT)')
        con.executemany('INSERT INTO "Order Lines" VALUES (?, ?, ?, ?, ?, ?)',
                        [(i, ["open", "paid"][i % 2], f"user{i}@example.com", float(i), f"g{i % 3}", RECENT)
                         for i in range(rows)])


def plant_bad_rows(project: Path) -> None:
    with sqlite3.connect(project / "shop.sqlite") as con:
        con.executemany('INSERT INTO "Order Lines" VALUES (?, ?, ?, ?, ?, ?)', [
            (100, "lost", "user100@example.com", 1.0, "g1", RECENT),  # a status not in the list
            (101, "open", "not-an-email", 2.0, "g1", RECENT),  # an email not matching
            (102, "open", "user0@example.com", 3.0, "g1", RECENT),  # the email (and status) of row 0
            (103, "paid", "user103@example.com", -5.0, None, RECENT),  # negative, no group
        ])
        con.execute("UPDATE \"Order Lines\" SET updated_at = '2020-01-01T00:00:00'")  # stale


def write_source(project: Path, table: str, name: str = "shop") -> object:
    (project / "configs" / "sources" / f"{name}.yaml").write_text(
        f"name: {name}\nowner: market-de\nsource: {{type: sqlite, path: shop.sqlite}}\n"
        f"retries: {{attempts: 1}}\ntables:\n{table}"
    )
    return ConfigStore().load_source(name).config


def landed(project: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(project / ".ingest" / "local_duckdb.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def by_name(results: list[dict]) -> dict[str, dict]:
    return {r["name"]: r for r in results}


@pytest.fixture
def shop(ingest_env: Path) -> Path:
    make_db(ingest_env / "shop.sqlite")
    return ingest_env


EXPECTED_ON_BAD_ROWS = [  # name, status, observed (None: checked apart)
    ("row_count", "fail", 104),
    ("not_null(Group)", "fail", 1),
    ("unique(email)", "fail", 1),
    ("unique(email, Status Code)", "fail", 1),
    ("accepted_values(Status Code)", "fail", 1),
    ("regex(email)", "fail", 1),
    ("range(amount)", "fail", 1),
    ("freshness(updated_at)", "fail", None),
    ("negative amounts", "fail", 1),
    ("custom_sql", "fail", 1),
]


def test_every_check_passes_on_clean_data_and_fails_on_planted_rows(shop: Path) -> None:
    config = write_source(shop, "  - name: Order Lines\n" + EVERY_CHECK)
    clean = run_source(config, actor="ana")
    assert clean.status == "success", clean.tables[0].quality
    assert [(q["name"], q["status"]) for q in clean.tables[0].quality] == [
        (name, "pass") for name, _, _ in EXPECTED_ON_BAD_ROWS]

    plant_bad_rows(shop)
    bad = run_source(config, actor="ana")
    results = bad.tables[0].quality
    assert (bad.status, bad.exit_code, bad.tables[0].status) == ("quality_failed", 2, "quality_failed")
    assert [(q["name"], q["status"]) for q in results] == [(name, status) for name, status, _ in EXPECTED_ON_BAD_ROWS]
    observed = {name: value for name, _, value in EXPECTED_ON_BAD_ROWS if value is not None}
    assert {q["name"]: q["observed"] for q in results if q["name"] in observed} == observed
    checks = by_name(results)
    assert checks["freshness(updated_at)"]["observed"] > 86400 and "2020-01-01" in checks["freshness(updated_at)"][
        "message"]
    assert checks["not_null(Group)"]["sample"][0]["order_id"] == 103
    assert checks["unique(email)"]["sample"] == [{"email": "user0@example.com", "rows": 2}]
    assert checks["accepted_values(Status Code)"]["sample"][0]["status_code"] == "lost"
    assert checks["negative amounts"]["sample"][0]["amount"] == -5.0
    assert checks["row_count"]["threshold"] == {"min": 1, "max": 100}
    assert all(q["severity"] == "error" and q["duration_s"] >= 0 for q in results)
    # the data stays loaded, and the record on disk holds the same results
    assert landed(shop, "SELECT count(*) FROM shop.order_lines") == [(104,)]
    assert load_record(record_path(bad)).tables[0].quality == results
    assert [h["status"] for h in check_history("shop", check="range")] == ["fail", "pass"]


@pytest.mark.parametrize(("nulls", "status"), [(6, "fail"), (5, "pass"), (4, "pass")])
def test_null_rate_fails_above_its_share_of_nulls(shop: Path, nulls: int, status: str) -> None:
    with sqlite3.connect(shop / "shop.sqlite") as con:  # 100 rows, `nulls` of them without a group
        con.execute(f'UPDATE "Order Lines" SET "Group" = NULL WHERE "Order ID" < {nulls}')
    config = write_source(shop, "  - name: Order Lines\n    checks: [{null_rate: {column: Group, max: 0.05}}]\n")
    record = run_source(config, actor="ana")
    check = record.tables[0].quality[0]
    assert (check["name"], check["status"], check["observed"], check["threshold"]) == (
        "null_rate(Group)", status, nulls / 100, 0.05)
    assert record.status == ("quality_failed" if status == "fail" else "success")
    assert f"{nulls} of 100 row(s) have group NULL ({nulls}.00%); at most 5.00% allowed" == check["message"]
    assert [row["order_id"] for row in check["sample"]] == (list(range(5)) if status == "fail" else [])


def test_null_rate_of_an_append_table_measures_this_load(shop: Path) -> None:
    config = write_source(shop, "  - name: Order Lines\n    mode: append\n"
                                "    checks: [{null_rate: {column: Group, max: 0.05}}]\n")
    assert run_source(config, actor="ana").tables[0].quality[0]["status"] == "pass"
    with sqlite3.connect(shop / "shop.sqlite") as con:  # the second load: 10 of its 100 rows without a group
        con.execute('UPDATE "Order Lines" SET "Group" = NULL WHERE "Order ID" < 10')
    check = run_source(config, actor="ana").tables[0].quality[0]
    assert (check["scope"], check["status"], check["observed"]) == ("load", "fail", 0.1)  # 10 of 200 would pass


def test_warn_severity_is_recorded_and_the_run_succeeds(shop: Path, capsys) -> None:
    plant_bad_rows(shop)
    write_source(shop, "  - name: Order Lines\n    checks:\n"
                       "      - {not_null: {column: Group, severity: warn}}\n"
                       "      - {accepted_values: {column: Status Code, values: [open], severity: warn}}\n")
    assert main(["run", "shop"]) == 0
    record = _last_record(shop)
    assert record.status == "success"
    assert [(q["name"], q["status"], q["severity"]) for q in record.tables[0].quality] == [
        ("not_null(Group)", "warn", "warn"), ("accepted_values(Status Code)", "warn", "warn")]


def test_error_severity_exits_2_and_keeps_the_loaded_data(shop: Path, capsys) -> None:
    plant_bad_rows(shop)
    write_source(shop, "  - name: Order Lines\n    checks: [{not_null: Group}, {not_null: {column: email, "
                       "severity: warn}}]\n")
    assert main(["run", "shop"]) == 2
    record = _last_record(shop)
    assert (record.status, record.exit_code) == ("quality_failed", 2)
    assert [q["status"] for q in record.tables[0].quality] == ["fail", "pass"]
    assert landed(shop, "SELECT count(*) FROM shop.order_lines") == [(104,)]


def _last_record(project: Path):
    paths = sorted((project / "runs").glob("*/*/*/*.json"), key=lambda p: p.stat().st_mtime)
    return load_record(paths[-1])


def test_shorthand_and_full_forms_check_the_same(shop: Path) -> None:
    plant_bad_rows(shop)
    config = write_source(shop, "  - name: Order Lines\n    checks:\n"
                                "      - {not_null: Group}\n"
                                "      - {not_null: {column: Group, severity: error}}\n"
                                "      - {unique: email}\n"
                                "      - {unique: {columns: [email]}}\n"
                                "      - {unique: [email, Status Code]}\n")
    results = run_source(config, actor="ana").tables[0].quality
    assert [(q["name"], q["status"], q["observed"]) for q in results] == [
        ("not_null(Group)", "fail", 1), ("not_null(Group)", "fail", 1), ("unique(email)", "fail", 1),
        ("unique(email)", "fail", 1), ("unique(email, Status Code)", "fail", 1)]


def test_odd_identifiers_are_normalized_and_quoted(shop: Path) -> None:
    """A table and columns with spaces, mixed case and a reserved word ("Group") land as dlt
    names them; the checks find them there and quote them."""
    with sqlite3.connect(shop / "shop.sqlite") as con:
        con.execute('CREATE TABLE "Mixed Case" ("Select" TEXT, "Order" INTEGER, "Net-Amount $" REAL)')
        con.executemany('INSERT INTO "Mixed Case" VALUES (?, ?, ?)', [("a", 1, 1.5), ("b", 2, None)])
    config = write_source(shop, "  - name: Mixed Case\n    checks: [{not_null: Select}, {unique: [Order, Select]}, "
                                "{not_null: {column: Net-Amount $, severity: warn}}, "
                                "{accepted_values: {column: Order, values: [1, 2]}}, "
                                "{range: {column: Net-Amount $, max: 2}}]\n")
    record = run_source(config, actor="ana")
    assert [(q["status"], q["observed"]) for q in record.tables[0].quality] == [
        ("pass", 0), ("pass", 0), ("warn", 1), ("pass", 0), ("pass", 0)]
    assert landed(shop, 'SELECT "select", "order" FROM shop.mixed_case ORDER BY 2') == [("a", 1), ("b", 2)]


def test_a_check_on_a_column_that_did_not_land_fails_with_the_columns_listed(shop: Path) -> None:
    config = write_source(shop, "  - name: Order Lines\n    checks: [{not_null: order_no}]\n")
    result = run_source(config, actor="ana").tables[0].quality[0]
    assert result["status"] == "fail"
    assert "column 'order_no' (landed as 'order_no') is not in the loaded table order_lines" in result["error"]
    assert "order_id, status_code, email" in result["error"]


def test_failing_rows_are_masked_in_the_sample(shop: Path) -> None:
    register_secret("s3cr3t-token-value")
    with sqlite3.connect(shop / "shop.sqlite") as con:
        con.execute('UPDATE "Order Lines" SET "Group" = NULL, email = ? WHERE "Order ID" = 5',
                    ["password=hunter2 and s3cr3t-token-value"])
    config = write_source(shop, "  - name: Order Lines\n    checks: [{not_null: Group}]\n")
    record = run_source(config, actor="ana")
    sample = record.tables[0].quality[0]["sample"]
    assert sample[0]["email"] == "password=*** and ***"
    text = Path(record_path(record)).read_text()
    assert "hunter2" not in text and "s3cr3t-token-value" not in text


# --- custom_sql: read-only, one SELECT ------------------------------------------------------

@pytest.mark.parametrize(("sql", "found"), [
    ("DROP TABLE {table}", "found DROP"),
    ("INSERT INTO {table} SELECT * FROM {table}", "found INSERT"),
    ("SELECT 1; DELETE FROM {table}", "found 2 statements"),
    ("WITH gone AS (DELETE FROM {table} RETURNING *) SELECT * FROM gone", "found DELETE"),
    ("COPY {table} TO '/tmp/out.csv'", "found COPY"),
    ("SELECT * INTO copy_of_it FROM {table}", "found SELECT ... INTO"),
])
def test_custom_sql_that_writes_is_refused_before_it_runs(shop: Path, sql: str, found: str) -> None:
    path = shop / "configs" / "sources" / "shop.yaml"
    path.write_text("name: shop\nowner: market-de\nsource: {type: sqlite, path: shop.sqlite}\ntables:\n"
                    f"  - name: Order Lines\n    checks: [{{custom_sql: {{sql: \"{sql}\"}}}}]\n")
    with pytest.raises(Exception) as refused:
        ConfigStore().load_source("shop")
    assert "tables[0].checks[0].custom_sql.sql" in str(refused.value)
    assert "custom_sql must be one read-only SELECT" in str(refused.value) and found in str(refused.value)


def test_custom_sql_refused_at_run_time_too(shop: Path) -> None:
    """A spec built around validation (model_construct) is parsed again before it runs."""
    from ingestion_core.config.models.checks import CustomSqlCheck
    from ingestion_core.quality.checks import CheckError, run_custom_sql

    executed: list[str] = []
    spec = CustomSqlCheck.model_construct(sql="DROP TABLE {table}", severity="error", returns=None,
                                          min_value=None, max_value=None, name=None, scope=None)
    with pytest.raises(CheckError, match="found DROP"):
        run_custom_sql(lambda sql: executed.append(sql) or ([], []), '"shop"."t"', spec, "duckdb")
    assert executed == []


def test_custom_sql_cannot_read_files_or_write_on_duckdb(shop: Path) -> None:
    config = write_source(shop, "  - name: Order Lines\n    checks:\n"
                                "      - {custom_sql: {sql: \"SELECT * FROM read_text('/etc/passwd')\"}}\n"
                                "      - {custom_sql: {sql: \"SELECT * FROM read_csv('/etc/passwd')\"}}\n"
                                "      - {custom_sql: {sql: \"SELECT * FROM {table} WHERE amount < 0\"}}\n")
    record = run_source(config, actor="ana")
    passwd, csv, fine = record.tables[0].quality
    for refused in (passwd, csv):
        assert refused["status"] == "fail"
        assert "Permission Error" in refused["error"] and "file system operations are disabled" in refused["error"]
    assert fine["status"] == "pass"
    assert "root:" not in Path(record_path(record)).read_text()


def test_custom_sql_runs_on_a_connection_that_cannot_write(shop: Path) -> None:
    """Even a function with a side effect meets a read-only database."""
    from ingestion_core.common.sql_guard import _duckdb_read_only
    from ingestion_core.config.models.checks import CustomSqlCheck

    config = write_source(shop, "  - name: Order Lines\n")
    run_source(config, actor="ana")

    class Plan:  # what the opener reads of a RunPlan
        destination = type("D", (), {"location": str(shop / ".ingest" / "local_duckdb.duckdb")})()

    with _duckdb_read_only(Plan(), None) as execute:
        assert execute("SELECT count(*) FROM shop.order_lines")[1] == [(100,)]
        for statement in ("CREATE TABLE shop.x AS SELECT 1", "SET enable_external_access = true",
                          "ATTACH '/tmp/elsewhere.duckdb' AS other", "INSTALL httpfs"):
            with pytest.raises(duckdb.Error):
                execute(statement)
    assert CustomSqlCheck(sql="SELECT * FROM {table}").result_kind == "failing_rows"


def test_custom_sql_elsewhere_runs_in_a_transaction_that_is_rolled_back(shop: Path) -> None:
    """The opener used for destinations without a read-only connection (Databricks, ...), tried
    on DuckDB: even a write that got past the parse leaves nothing behind."""
    import dlt

    from ingestion_core.common.sql_guard import _rolled_back

    run_source(write_source(shop, "  - name: Order Lines\n"), actor="ana")
    pipeline = dlt.pipeline(pipeline_name="shop__check", pipelines_dir=str(shop / ".ingest" / "scratch"),
                            destination=dlt.destinations.duckdb(str(shop / ".ingest" / "local_duckdb.duckdb")),
                            dataset_name="shop")
    with _rolled_back(None, pipeline) as execute:
        execute("DELETE FROM shop.order_lines")
        assert execute("SELECT count(*) FROM shop.order_lines")[1] == [(0,)]
    assert landed(shop, "SELECT count(*) FROM shop.order_lines") == [(100,)]


# --- which rows: previews, append tables, scd2 ------------------------------------------------

def test_preview_runs_the_checks_on_its_sample(shop: Path) -> None:
    plant_bad_rows(shop)
    config = write_source(shop, "  - name: Order Lines\n    checks:\n"
                                "      - {not_null: Group}\n"
                                "      - {row_count: {min: 500}}\n"
                                "      - {unique: Order ID}\n")
    preview = preview_source(config, actor="ana", limit=20)
    results = by_name(preview.record.tables[0].quality)
    assert results["not_null(Group)"]["status"] == "pass"  # the first 20 rows are clean
    assert results["row_count"]["status"] == "skipped"  # 20 of maybe more rows proves nothing
    assert "not judged on a preview" in results["row_count"]["message"]
    assert results["unique(Order ID)"]["status"] == "pass"
    assert preview.record.status == "success"
    assert preview.as_json()["tables"][0]["quality"] == preview.record.tables[0].quality
    whole = preview_source(config, actor="ana", limit=1000)  # the whole table fits: judged
    assert [q["status"] for q in whole.record.tables[0].quality] == ["fail", "fail", "pass"]


def test_append_tables_check_the_rows_of_this_load(shop: Path) -> None:
    """A bad row from an earlier load fails that run only; scope: table keeps failing; unique
    looks at the whole table, so rows appended twice are caught."""
    with sqlite3.connect(shop / "shop.sqlite") as con:
        con.execute("UPDATE \"Order Lines\" SET \"Group\" = NULL WHERE \"Order ID\" = 7")
    config = write_source(shop, "  - name: Order Lines\n    mode: append\n    checks:\n"
                                "      - {not_null: Group}\n"
                                "      - {not_null: {column: Group, scope: table, severity: warn}}\n"
                                "      - {unique: Order ID}\n")
    first = by_name_list(run_source(config, actor="ana"))
    assert first == [("not_null(Group)", "fail", "load", 1), ("not_null(Group)", "warn", "table", 1),
                     ("unique(Order ID)", "pass", "table", 0)]
    with sqlite3.connect(shop / "shop.sqlite") as con:
        con.execute("UPDATE \"Order Lines\" SET \"Group\" = 'fixed' WHERE \"Order ID\" = 7")
    second = by_name_list(run_source(config, actor="ana"))
    assert second == [("not_null(Group)", "pass", "load", 0), ("not_null(Group)", "warn", "table", 1),
                      ("unique(Order ID)", "fail", "table", 100)]


def by_name_list(record) -> list[tuple]:
    return [(q["name"], q["status"], q["scope"], q["observed"]) for q in record.tables[0].quality]


def test_incremental_checks_only_new_rows_and_scd2_only_current_rows(shop: Path) -> None:
    with sqlite3.connect(shop / "shop.sqlite") as con:
        con.execute("CREATE TABLE lines AS SELECT \"Order ID\" AS id, amount FROM \"Order Lines\"")
        con.execute("UPDATE lines SET amount = 500 WHERE id = 50")
    config = write_source(shop, "  - name: lines\n    mode: incremental\n    cursor: id\n"
                                "    checks: [{range: {column: amount, max: 500}},\n"
                                "             {range: {column: amount, max: 99}}]\n"
                                "  - name: versions\n    source_table: lines\n    mode: scd2\n"
                                "    primary_key: id\n    checks: [{unique: id}, {row_count: {max: 100}}]\n")
    first = run_source(config, actor="ana")
    assert by_name_list(first)[1] == ("range(amount)", "fail", "load", 1)
    with sqlite3.connect(shop / "shop.sqlite") as con:
        con.execute("INSERT INTO lines VALUES (100, 5.0)")
        con.execute("UPDATE lines SET amount = 1000 WHERE id = 3")
        con.execute("DELETE FROM lines WHERE id = 4")
    second = run_source(config, actor="ana")
    versions = second.tables[1]
    assert by_name_list(second)[1] == ("range(amount)", "pass", "load", 0)  # neither row 50 nor 3 was read again
    assert [(q["status"], q["observed"]) for q in versions.quality] == [("pass", 0), ("pass", 100)]
    # the table holds the retired versions too: unique and row_count saw only the current ones
    assert landed(shop, "SELECT count(*) > 100, count(DISTINCT id) FROM shop.versions") == [(True, 101)]
    nothing_new = run_source(config, actor="ana")
    assert (nothing_new.tables[0].rows, by_name_list(nothing_new)[1]) == (0, ("range(amount)", "pass", "load", 0))


# --- failed tables -----------------------------------------------------------------------------

def test_checks_of_a_table_whose_load_failed_are_skipped(shop: Path) -> None:
    config = write_source(shop, "  - name: Order Lines\n    checks: [{not_null: Group}]\n"
                                "  - name: missing\n    checks: [{not_null: id}, {row_count: {min: 1}}]\n"
                                "    reconcile: true\n")
    record = run_source(config, actor="ana")
    ok, failed = record.tables
    assert record.status == "partial"
    assert [q["status"] for q in ok.quality] == ["pass"]
    assert failed.status == "failed"
    assert [(q["name"], q["status"]) for q in failed.quality] == [
        ("not_null(id)", "skipped"), ("row_count", "skipped"), ("reconcile", "skipped")]
    assert all(q["message"] == "not run: the load of this table failed" for q in failed.quality)


@pytest.fixture
def duckdb_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A DuckDB without extensions: a fresh home folder (DuckDB keeps them under ~/.duckdb)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    install_duckdb_extension.cache_clear()
    yield home
    install_duckdb_extension.cache_clear()  # later tests run with the real home again


@pytest.mark.parametrize("table_format", ["parquet", "delta"])
def test_checks_on_files_destinations(shop: Path, table_format: str, duckdb_home: Path) -> None:
    """Parquet / Delta tables are checked through dlt's DuckDB views; custom_sql may read the
    dataset's files and nothing else. Delta on a machine whose DuckDB has no delta extension yet
    (a fresh home folder): the product installs it from the duckdb-extension-delta package."""
    plant_bad_rows(shop)
    (shop / "configs" / "destinations" / "lake.yaml").write_text(f"type: filesystem\nbucket_url: lake\n"
                                                                 f"format: {table_format}\n")
    (shop / "configs" / "sources" / "shop.yaml").write_text(
        "name: shop\nowner: market-de\nsource: {type: sqlite, path: shop.sqlite}\ndestination: lake\n"
        "retries: {attempts: 1}\ntables:\n  - name: Order Lines\n    reconcile: true\n    checks:\n"
        "      - {not_null: Group}\n      - {unique: email}\n      - {regex: {column: email, pattern: '@'}}\n"
        "      - {custom_sql: {sql: \"SELECT * FROM {table} WHERE amount < 0\"}}\n"
        "      - {custom_sql: {sql: \"SELECT * FROM read_text('/etc/passwd')\"}}\n")
    record = run_source(ConfigStore().load_source("shop").config, actor="ana")
    assert record.tables[0].rows == 104, record.tables[0].error
    results = record.tables[0].quality
    assert [(q["name"], q["status"], q["observed"]) for q in results[:4]] == [
        ("not_null(Group)", "fail", 1), ("unique(email)", "fail", 1), ("regex(email)", "fail", 1),
        ("custom_sql", "fail", 1)]
    assert results[4]["status"] == "fail" and "Permission Error" in results[4]["error"]
    assert (results[5]["name"], results[5]["status"], results[5]["observed"]) == ("reconcile", "pass", 104)
    assert [p.name for p in duckdb_home.glob(".duckdb/extensions/*/*/*.duckdb_extension")] == (
        ["delta.duckdb_extension"] if table_format == "delta" else [])


def test_without_the_delta_package_the_install_says_what_to_install(
        duckdb_home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "duckdb_extension_delta" else find_spec(name, *a))
    assert install_duckdb_extension("delta") is False
    assert f"pip install duckdb-extension-delta=={duckdb.__version__}" in caplog.text
    assert not list(duckdb_home.glob(".duckdb/extensions/*/*/*"))
