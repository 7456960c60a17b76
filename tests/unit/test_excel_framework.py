"""The Excel framework's files as its users have them: a job sheet with the columns some teams
added (pagination_type, auth_type, page_size, rate_limit) and a secrets.toml with PostgreSQL,
Oracle, SQL Server (Windows authentication), Azure SQL (encrypt / trust_server_certificate), a
REST source with its own key header and params, and an ADLS [destination.filesystem] section.
Nothing they hold may be lost silently. The workbook and secret values are made at run time."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import yaml

from ingestion_core.cli.main import main
from ingestion_core.config.excel.importer import import_workbook
from tests.security.scanner import fake_secret

HEADER = ["source_type", "source_name", "table_name", "schema_name", "load_type", "watermark_column",
          "last_watermark", "api_endpoint", "enabled", "chunk_size", "pagination_type", "auth_type", "page_size",
          "rate_limit", "last_run_date", "last_run_status", "last_watermark_note"]


def row(source_type: str, source_name: str, table: str, load_type: str = "FULL", **cells: Any) -> list[Any]:
    values = {"source_type": source_type, "source_name": source_name, "table_name": table, "load_type": load_type,
              "enabled": "Y", "last_run_date": datetime(2030, 1, 2, 3, 4, 5), "last_run_status": "SUCCESS", **cells}
    return [values.get(c) for c in HEADER]


ROWS = [
    row("postgresql", "postgresql", "orders", "INCREMENTAL", schema_name="public", watermark_column="updated_at",
        last_watermark=datetime(2024, 6, 1)),
    row("oracle", "oracle", "GL_BALANCES", schema_name="FIN"),
    row("mssql", "sqlserver", "customers", schema_name="dbo", chunk_size=20000, page_size=500),
    row("azure_sql", "azuresql", "employees", schema_name="hr", last_watermark="2024-01-01"),
    row("api", "coingecko", "markets", api_endpoint="coins/markets", pagination_type="page", auth_type="api_key",
        page_size=250, rate_limit="30/min"),
    row("api", "coingecko", "categories", api_endpoint="coins/categories", pagination_type="none"),
]


def write_sheet(path: Path, rows: list[list[Any]] = ROWS) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "SourceConfig"
    sheet.append(HEADER)
    for values in rows:
        sheet.append(values)
    workbook.save(path)
    return path


REST_SHAPES = {
    "key named as its header": 'x-cg-demo-api-key = "{key}"\n',
    "api_key with api_key_header": 'api_key = "{key}"\napi_key_header = "x-cg-demo-api-key"\n',
    "a headers subsection": '[sources.coingecko.headers]\nx-cg-demo-api-key = "{key}"\nAccept = "application/json"\n',
}


def framework_toml(path: Path, rest_shape: str = "key named as its header") -> dict[str, str]:
    values = {n: fake_secret(f"excel_framework_{n}") for n in ("pg", "ora", "az", "cg", "adls")}
    rest = REST_SHAPES[rest_shape].format(key=values["cg"])
    rest_keys, rest_sub = (rest, "") if rest_shape != "a headers subsection" else ("", rest)
    path.write_text(f"""
[sources.postgresql]
host = "pg.corp.internal"
port = 5432
database = "sales"
username = "ingest"
password = "{values['pg']}"
sslrootcert = "/etc/ssl/corp.pem"

[sources.oracle]
host = "ora.corp.internal"
port = 1521
service_name = "FINPDB1"
username = "fin_ro"
password = "{values['ora']}"

[sources.sqlserver]
server = "sql01.corp.internal"
database = "crm"
driver = "ODBC Driver 17 for SQL Server"
trusted_connection = "yes"

[sources.azuresql]
host = "acme-dw"
database = "dw"
username = "loader"
password = "{values['az']}"
encrypt = "yes"
trust_server_certificate = "no"

[sources.coingecko]
base_url = "https://api.coingecko.com/api/v3/"
{rest_keys}
[sources.coingecko.params]
vs_currency = "usd"
per_page = 100
{rest_sub}
[destination.filesystem]
bucket_url = "abfss://raw@acmelake.dfs.core.windows.net/ingestion"
layout = "{{table_name}}/{{YYYY}}/{{MM}}/{{DD}}/{{load_id}}.{{file_id}}.{{ext}}"
retention_days = 30

[destination.filesystem.credentials]
azure_storage_account_name = "acmelake"
azure_storage_account_key = "{values['adls']}"
""", encoding="utf-8")
    return values


@pytest.fixture
def imported(tmp_path: Path) -> tuple[Any, dict[str, str]]:
    values = framework_toml(tmp_path / "secrets.toml")
    return import_workbook(write_sheet(tmp_path / "ingestion_config.xlsx"), tmp_path / "secrets.toml"), values


def source(result: Any, name: str) -> dict[str, Any]:
    return yaml.safe_load(result.files[name])


def test_the_adls_section_becomes_the_destination_every_source_uses(imported: tuple[Any, dict[str, str]]) -> None:
    result, _ = imported
    assert yaml.safe_load(result.destinations["filesystem"]) == {
        "version": 1, "type": "filesystem", "description": "Imported from secrets.toml [destination.filesystem].",
        "bucket_url": "abfss://raw@acmelake.dfs.core.windows.net/ingestion", "format": "parquet",
        "layout": "{table_name}/{YYYY}/{MM}/{DD}/{load_id}.{file_id}.{ext}",
        "credentials": {"azure_storage_account_name": "acmelake", "azure_storage_account_key":
                        "${secrets.destination.filesystem.credentials.azure_storage_account_key}"}}
    assert {source(result, n)["destination"] for n in result.files} == {"filesystem"}
    assert set(result.files) == {"postgresql", "oracle", "sqlserver", "azuresql", "coingecko"}


@pytest.mark.parametrize("shape", list(REST_SHAPES))
def test_the_rest_key_keeps_its_header_and_the_params_reach_every_endpoint(tmp_path: Path, shape: str) -> None:
    framework_toml(tmp_path / "secrets.toml", shape)
    result = import_workbook(write_sheet(tmp_path / "in.xlsx"), tmp_path / "secrets.toml")
    api = source(result, "coingecko")
    auth = api["source"]["auth"]
    assert (auth["type"], auth["name"]) == ("api_key", "x-cg-demo-api-key")
    assert auth["api_key"].startswith("${secrets.sources.coingecko.") and "location" not in auth
    assert api["source"]["rate_limit_per_second"] == 0.5  # 30/min
    markets, categories = api["tables"]
    assert markets["params"] == {"vs_currency": "usd", "per_page": 250}  # page_size beats the section's 100
    assert markets["paginator"] == {"type": "page_number"}
    assert categories == {"name": "categories", "path": "coins/categories", "mode": "full",
                          "params": {"vs_currency": "usd", "per_page": 100}, "paginator": {"type": "single_page"}}
    if shape == "a headers subsection":
        assert api["source"]["headers"] == {"Accept": "application/json"}
    assert not [p for p in result.dropped if "coingecko" in p.where]


def test_windows_authentication_and_azure_sql_encryption_survive(imported: tuple[Any, dict[str, str]]) -> None:
    result, _ = imported
    assert source(result, "sqlserver")["source"] == {
        "type": "mssql", "host": "sql01.corp.internal", "database": "crm", "driver": "ODBC Driver 17 for SQL Server",
        "trusted_connection": True}
    azure = source(result, "azuresql")["source"]
    assert (azure["host"], azure["encrypt"], azure["trust_server_certificate"]) == \
        ("acme-dw.database.windows.net", True, False)


def test_every_dropped_value_is_listed_with_its_reason(imported: tuple[Any, dict[str, str]]) -> None:
    result, _ = imported
    dropped = {p.where: p.reason for p in result.dropped}
    assert set(dropped) == {
        "secrets.toml [sources.postgresql] key sslrootcert",
        "secrets.toml [destination.filesystem] key retention_days",
        "SourceConfig!row 4 column page_size",
        "SourceConfig!row 5 column last_watermark",
    }
    assert "not a connection setting of a postgres" in dropped["secrets.toml [sources.postgresql] key sslrootcert"]
    assert "applies to api rows only" in dropped["SourceConfig!row 4 column page_size"]
    assert "a FULL load has no watermark" in dropped["SourceConfig!row 5 column last_watermark"]
    assert [p.where for p in result.skipped] == ["SourceConfig!column Q"]  # the unknown column, reported
    notes = "\n".join(result.notes)
    assert "table orders of postgresql starts from initial_value '2024-06-01'" in notes
    assert "SourceConfig!row 6: last_run_date 2030-01-02T03:04:05, last_run_status SUCCESS not imported" in notes
    assert "rate_limit '30/min' -> rate_limit_per_second 0.5" in notes
    assert "page_size 250 sent as the query parameter per_page" in notes


def test_no_secret_value_in_the_output_and_the_files_are_valid(tmp_path: Path, ingest_env: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    values = framework_toml(tmp_path / "secrets.toml")
    sheet = write_sheet(tmp_path / "ingestion_config.xlsx")
    args = ["import-excel", str(sheet), "--secrets", str(tmp_path / "secrets.toml")]
    assert main(args) == 0
    out, err = capsys.readouterr()
    dropped = [line for line in out.splitlines() if ": dropped from " in line]
    assert dropped == [
        "SourceConfig!row 5 column last_watermark: dropped from azuresql: a FULL load has no watermark; the table "
        "is loaded whole at every run",
        "secrets.toml [destination.filesystem] key retention_days: dropped from destination filesystem: not a "
        "setting of a filesystem destination (bucket_url, layout, format, credentials, or account_name / "
        "container / folder)",
        "secrets.toml [sources.postgresql] key sslrootcert: dropped from postgresql: not a connection setting of "
        "a postgres source (known: host, server, port, database, dbname, username, user, password, url, "
        "connection_string)",
        "SourceConfig!row 4 column page_size: dropped from sqlserver: '500' applies to api rows only; a mssql table "
        "has no such setting",
    ]
    assert f"--- would write {ingest_env / 'configs' / 'destinations' / 'filesystem.yaml'}" in out
    assert "dry run: 1 destination file(s), 5 source file(s), 1 row(s) skipped, 4 value(s) dropped" in err
    assert not any(v in out + err for v in values.values())
    assert main([*args, "--write", "--destination", "lake"]) == 0
    assert "1 destination file(s), 5 source file(s) written" in capsys.readouterr().err
    assert (ingest_env / "configs" / "destinations" / "lake.yaml").is_file()
    assert yaml.safe_load((ingest_env / "configs" / "sources" / "oracle.yaml").read_text())["destination"] == "lake"
    assert main(["validate"]) == 0
    written = "".join(p.read_text() for p in (ingest_env / "configs").rglob("*.yaml"))
    assert not any(v in written for v in values.values())


def test_the_flat_adls_section_and_an_unknown_destination(tmp_path: Path) -> None:
    toml = tmp_path / "secrets.toml"
    toml.write_text(f'[sources.postgresql]\nhost = "h"\ndatabase = "d"\nusername = "u"\n\n'
                    f'[destination.filesystem]\naccount_name = "acmelake"\ncontainer = "raw"\nfolder = "/dlt/"\n'
                    f'account_key = "{fake_secret("excel_flat_adls")}"\n', encoding="utf-8")
    sheet = write_sheet(tmp_path / "in.xlsx", ROWS[:1])
    result = import_workbook(sheet, toml)
    destination = yaml.safe_load(result.destinations["filesystem"])
    assert destination["bucket_url"] == "abfss://raw@acmelake.dfs.core.windows.net/dlt"
    assert destination["credentials"] == {"azure_storage_account_name": "acmelake",
                                          "azure_storage_account_key": "${secrets.destination.filesystem.account_key}"}
    assert source(result, "postgresql")["source"]["password"] == "${secrets.sources.postgresql.password}"
    assert any("has no password; it is referenced as ${secrets.sources.postgresql.password}" in n and
               "DLT_POSTGRESQL_PASSWORD" in n for n in result.notes)
    toml.write_text('[sources.postgresql]\nhost = "h"\ndatabase = "d"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="--destination nowhere: there is no destination 'nowhere'"):
        import_workbook(sheet, toml, destination="nowhere")


@pytest.mark.parametrize(("auth_type", "section", "auth"), [
    ("bearer", 'token = "{v}"', {"type": "bearer", "token": "${secrets.sources.api.token}"}),
    ("", 'token = "{v}"', {"type": "bearer", "token": "${secrets.sources.api.token}"}),
    ("basic", 'username = "svc"\npassword = "{v}"',
     {"type": "http_basic", "username": "svc", "password": "${secrets.sources.api.password}"}),
    ("query", 'api_key = "{v}"\napi_key_name = "apikey"',
     {"type": "api_key", "name": "apikey", "location": "query", "api_key": "${secrets.sources.api.api_key}"}),
    ("api_key", 'token = "{v}"\napi_key_header = "X-Api-Token"',
     {"type": "api_key", "name": "X-Api-Token", "api_key": "${secrets.sources.api.token}"}),
    ("none", 'token = "{v}"', None),
])
def test_auth_type_picks_the_style(tmp_path: Path, auth_type: str, section: str, auth: Any) -> None:
    toml = tmp_path / "secrets.toml"
    toml.write_text('[sources.api]\nbase_url = "https://api.example.com/"\n'
                    + section.format(v=fake_secret("excel_auth_type")) + "\n", encoding="utf-8")
    sheet = write_sheet(tmp_path / "in.xlsx", [row("api", "api", "items", api_endpoint="items", auth_type=auth_type)])
    result = import_workbook(sheet, toml)
    assert source(result, "api")["source"].get("auth") == auth
    if auth is None:
        assert [(p.where, p.reason) for p in result.dropped] == [
            ("secrets.toml [sources.api] key token", "auth_type none: the API is called without credentials")]


@pytest.mark.parametrize(("pagination", "size", "table"), [
    ("offset", 50, {"paginator": {"type": "offset", "limit": 50}}),
    ("cursor", 20, {"paginator": {"type": "cursor"}, "params": {"per_page": 20}}),
    ("Link", None, {"paginator": {"type": "header_link"}}),
    ("next_url", None, {"paginator": {"type": "json_link"}}),
    ("auto", None, {}),
])
def test_pagination_type_and_page_size(tmp_path: Path, pagination: str, size: int | None,
                                       table: dict[str, Any]) -> None:
    toml = tmp_path / "secrets.toml"
    toml.write_text('[sources.api]\nbase_url = "https://api.example.com/"\n', encoding="utf-8")
    sheet = write_sheet(tmp_path / "in.xlsx", [row("api", "api", "items", api_endpoint="items",
                                                   pagination_type=pagination, page_size=size)])
    [items] = source(import_workbook(sheet, toml), "api")["tables"]
    assert {k: v for k, v in items.items() if k in ("paginator", "params")} == table


def test_an_unknown_pagination_type_or_rate_skips_the_row_with_the_choices(tmp_path: Path) -> None:
    toml = tmp_path / "secrets.toml"
    toml.write_text('[sources.api]\nbase_url = "https://api.example.com/"\n', encoding="utf-8")
    sheet = write_sheet(tmp_path / "in.xlsx", [row("api", "api", "items", api_endpoint="items",
                                                   pagination_type="scroll", rate_limit="fast")])
    [problem] = [p for p in import_workbook(sheet, toml).skipped if "row 2" in p.where]
    assert "pagination_type 'scroll' is unknown; use one of offset, page" in problem.reason
    assert "rate_limit 'fast' is not a rate; write requests per second (e.g. 5), or 30/min" in problem.reason
