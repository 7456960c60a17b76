"""The Excel job sheet import (``ingest import-excel``).

The workbook and the secrets file are generated here, the secret values at run time, so nothing
resembling a credential is committed.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import yaml

from ingestion_core.cli.main import main
from ingestion_core.config.excel.importer import ImportConflictError, import_workbook, suggest_name, watermark_value
from ingestion_core.config.secrets import resolve_value
from ingestion_core.config.store import ConfigStore

HEADER = [" Source_Type", "SOURCE_NAME ", "table_name", "Schema Name", "load_type", "watermark_column",
          "last_watermark", "api_endpoint", "enabled", "chunk_size", "last_run_date", "last_run_status"]
KEYS = ["source_type", "source_name", "table_name", "schema_name", "load_type", "watermark_column",
        "last_watermark", "api_endpoint", "enabled", "chunk_size", "last_run_date", "last_run_status"]
RUN_DATE = datetime(2031, 7, 9, 4, 58, 17)


def job(source_type: str, source_name: str, table_name: str | None, load_type: str | None = "FULL",
        **extra: Any) -> list[Any]:
    values = {"source_type": source_type, "source_name": source_name, "table_name": table_name,
              "load_type": load_type, "enabled": "Y", "last_run_date": RUN_DATE,
              "last_run_status": "STATUS_FROM_OLD_FRAMEWORK", **extra}
    return [values.get(key) for key in KEYS]


GOOD_ROWS = {
    2: job("postgresql", "sales_de", "orders", "INCREMENTAL", schema_name="public", watermark_column="updated_at",
           last_watermark=datetime(2024, 1, 1), chunk_size=10000),
    3: job("PostgreSQL", "sales_de", "customers", "full", schema_name="public", enabled="N"),
    4: [None] * len(KEYS),  # blank row
    5: job("oracle", "finance_fr", "GL_BALANCES", schema_name="FIN"),
    6: job("oracle", "finance_fr", "JOURNAL_LINES", "INCREMENTAL", schema_name="FIN", watermark_column="JOURNAL_ID",
           last_watermark=1500),
    7: job("mssql", "crm_uk", "accounts", schema_name="dbo", chunk_size=25000.0),
    8: job("azure_sql", "hr_nl", "employees", "INCREMENTAL", schema_name="dbo", watermark_column="modified_at",
           last_watermark="2023-12-31 23:00:00"),
    9: job("api", "weather_api", "forecasts", "INCREMENTAL", watermark_column="updated_at",
           last_watermark=datetime(2024, 3, 1, 10, 30), api_endpoint="/forecasts"),
    10: job("api", "weather_api", "stations", api_endpoint="stations?country=de", enabled=None),
    11: job("api", "shop_api", "products", api_endpoint="/v2/products"),
}
# Excel row -> fragments its reason must contain
BAD_ROWS = {
    12: (job("sybase", "legacy_x", "t1"), ["source_type 'sybase' is unknown", "postgresql, oracle"]),
    13: (job("postgresql", "sales_de", None), ["table_name is empty"]),
    14: (job("postgresql", "sales_de", "invoices", "INCREMENTAL"), ["INCREMENTAL needs a watermark_column"]),
    15: (job("postgresql", "Sales-DE 2", "t"), ["'Sales-DE 2' is not a valid name", "spaces or dashes",
                                               "'sales_de_2'", "[sources.sales_de_2]"]),
    16: (job("api", "weather_api", "alerts"), ["api_endpoint is empty"]),
    17: (job("postgresql", "no_section_src", "t"), ["connection section missing", "[sources.no_section_src]"]),
    18: (job("postgresql", "sales_de", "refunds", "DELTA"), ["load_type 'DELTA' is unknown", "FULL or INCREMENTAL"]),
    19: (job("postgresql", "sales_de", "returns", enabled="maybe"), ["enabled 'maybe' is not Y or N"]),
    20: (job("postgresql", "sales_de", "lines", chunk_size="lots"), ["chunk_size 'lots' is not a whole number"]),
    21: (job("postgresql", "sales_de", "Orders"), ["already imported from SourceConfig!row 2"]),
    22: (job("oracle", "sales_de", "x"), ["is a postgresql source (SourceConfig!row 2)", "this row says oracle"]),
    23: (job("api", "weather_api", "tokens", api_endpoint="alerts?api_key=abc"), ["credential in its query",
                                                                                 "api_key"]),
    24: (job("postgresql", "sales_de", "bad;table"), ["table_name:", "not a plain SQL identifier"]),
    25: (job("oracle", "broken_ora", "t"), ["source 'broken_ora' is not valid", "service_name or sid"]),
    26: (job("postgresql", "", "t"), ["source_name is empty"]),
}
FILES = {"sales_de", "finance_fr", "crm_uk", "hr_nl", "weather_api", "shop_api"}


def write_workbook(path: Path, rows: dict[int, list[Any]], header: list[str] = HEADER,
                   sheet: str = "SourceConfig") -> Path:
    workbook = openpyxl.Workbook()
    workbook.active.title = "ReadMe"
    workbook.active["A1"] = "Job sheet of the old framework"
    ws = workbook.create_sheet(sheet)
    ws.append(header)
    for number in range(2, max(rows, default=1) + 1):
        ws.append(rows.get(number, [None] * len(header)))
    workbook.save(path)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Where the test's inputs go (outside the project folder the config dir is in)."""
    path = tmp_path / "in"
    path.mkdir()
    return path


@pytest.fixture
def fake() -> dict[str, str]:
    """Secret values made up at run time."""
    return {name: secrets.token_hex(12) for name in
            ("pg_password", "ora_password", "ms_password", "az_password", "api_token", "shop_key", "broken")}


@pytest.fixture
def secrets_toml(folder: Path, fake: dict[str, str]) -> Path:
    path = folder / "secrets.toml"
    path.write_text(f"""
[sources.sales_de]
host = "pg.example.internal"
port = 5432
database = "sales"
username = "ingest_ro"
password = "{fake['pg_password']}"

[sources.finance_fr]
host = "ora.example.internal"
port = 1521
service_name = "FINPDB1"
username = "fin_ro"
password = "{fake['ora_password']}"

[sources.crm_uk]
host = "mssql.example.internal"
port = 1433
database = "crm"
username = "crm_ro"
password = "{fake['ms_password']}"
driver = "ODBC Driver 17 for SQL Server"

[sources.hr_nl]
host = "hr-srv"
database = "hr"
username = "hr_ro"
password = "{fake['az_password']}"

[sources.weather_api]
base_url = "https://api.weather.example/v1/"
token = "{fake['api_token']}"

[sources.shop_api]
base_url = "https://shop.example/api"
api_key = "{fake['shop_key']}"
api_key_name = "X-API-Key"
colour = "blue"

[sources.broken_ora]
host = "ora2.example.internal"
username = "x"
password = "{fake['broken']}"
""", encoding="utf-8")
    return path


@pytest.fixture
def xlsx(folder: Path) -> Path:
    rows = {**GOOD_ROWS, **{n: row for n, (row, _) in BAD_ROWS.items()}}
    return write_workbook(folder / "ingestion_config.xlsx", rows)


@pytest.fixture
def result(xlsx: Path, secrets_toml: Path) -> Any:
    return import_workbook(xlsx, secrets_path=secrets_toml, owner="market-de")


def loaded(result: Any, name: str) -> dict[str, Any]:
    return yaml.safe_load(result.files[name])


def tables(result: Any, name: str) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in loaded(result, name)["tables"]}


# --- mapping -------------------------------------------------------------------------------

def test_rows_are_grouped_by_source_name_into_one_file_each(result: Any) -> None:
    assert set(result.files) == FILES
    assert list(tables(result, "sales_de")) == ["orders", "customers"]
    assert list(tables(result, "finance_fr")) == ["GL_BALANCES", "JOURNAL_LINES"]
    assert list(tables(result, "weather_api")) == ["forecasts", "stations"]
    data = loaded(result, "sales_de")
    assert (data["version"], data["name"], data["owner"]) == (1, "sales_de", "market-de")
    assert "ingestion_config.xlsx" in data["description"]
    assert result.files["sales_de"].startswith("# yaml-language-server: $schema=")


def test_full_and_incremental_map_to_modes_with_cursor_and_iso_initial_value(result: Any) -> None:
    sales = tables(result, "sales_de")
    assert sales["orders"] == {"name": "orders", "schema": "public", "mode": "incremental",
                                    "cursor": "updated_at", "initial_value": "2024-01-01", "chunk_size": 10000}
    assert sales["customers"]["mode"] == "full"
    assert "cursor" not in sales["customers"]
    assert tables(result, "finance_fr")["JOURNAL_LINES"]["initial_value"] == 1500
    assert tables(result, "hr_nl")["employees"]["initial_value"] == "2023-12-31 23:00:00"
    assert tables(result, "weather_api")["forecasts"]["initial_value"] == "2024-03-01T10:30:00"


def test_enabled_n_disables_the_table_and_chunk_size_is_kept(result: Any) -> None:
    sales = tables(result, "sales_de")
    assert sales["customers"]["enabled"] is False
    assert "enabled" not in sales["orders"]
    assert "enabled" not in tables(result, "weather_api")["stations"]  # empty = Y
    assert tables(result, "crm_uk")["accounts"]["chunk_size"] == 25000
    assert loaded(result, "sales_de").get("enabled", True) is True


def test_a_source_whose_rows_are_all_disabled_is_disabled(tmp_path: Path, secrets_toml: Path) -> None:
    xlsx = write_workbook(tmp_path / "off.xlsx", {2: job("postgresql", "sales_de", "orders", enabled="n")})
    data = yaml.safe_load(import_workbook(xlsx, secrets_toml).files["sales_de"])
    assert data["enabled"] is False
    assert data["tables"][0]["enabled"] is False


def test_connections_copy_values_and_reference_secrets(result: Any) -> None:
    assert loaded(result, "sales_de")["source"] == {
        "type": "postgres", "host": "pg.example.internal", "port": 5432, "database": "sales",
        "username": "ingest_ro", "password": "${secrets.sources.sales_de.password}"}
    crm = loaded(result, "crm_uk")["source"]
    assert (crm["type"], crm["driver"]) == ("mssql", "ODBC Driver 17 for SQL Server")
    hr = loaded(result, "hr_nl")["source"]
    assert (hr["type"], hr["host"]) == ("azure_sql", "hr-srv.database.windows.net")
    assert tables(result, "crm_uk")["accounts"]["schema"] == "dbo"


def test_oracle_takes_service_name_or_sid(result: Any, tmp_path: Path) -> None:
    source = loaded(result, "finance_fr")["source"]
    assert source == {"type": "oracle", "host": "ora.example.internal", "port": 1521, "service_name": "FINPDB1",
                      "username": "fin_ro", "password": "${secrets.sources.finance_fr.password}"}
    assert tables(result, "finance_fr")["GL_BALANCES"]["schema"] == "FIN"

    toml = tmp_path / "sid.toml"
    toml.write_text(f'[sources.old_ora]\nhost = "o"\nsid = "ORCL"\npassword = "{secrets.token_hex(8)}"\n')
    xlsx = write_workbook(tmp_path / "sid.xlsx", {2: job("oracle", "old_ora", "t")})
    source = yaml.safe_load(import_workbook(xlsx, toml).files["old_ora"])["source"]
    assert source["sid"] == "ORCL"
    assert "service_name" not in source


def test_api_rows_become_rest_api_resources(result: Any) -> None:
    weather = loaded(result, "weather_api")
    assert weather["source"] == {"type": "rest_api", "base_url": "https://api.weather.example/v1/",
                                 "auth": {"type": "bearer", "token": "${secrets.sources.weather_api.token}"}}
    assert tables(result, "weather_api") == {
        "forecasts": {"name": "forecasts", "path": "/forecasts", "mode": "incremental", "cursor": "updated_at",
                      "initial_value": "2024-03-01T10:30:00"},
        "stations": {"name": "stations", "path": "stations?country=de", "mode": "full"},
    }
    shop = loaded(result, "shop_api")["source"]
    assert shop["auth"] == {"type": "api_key", "api_key": "${secrets.sources.shop_api.api_key}", "name": "X-API-Key"}
    [colour] = [p for p in result.dropped if "colour" in p.where]
    assert colour.where == "secrets.toml [sources.shop_api] key colour"
    assert "not a setting of an api source" in colour.reason


def test_output_only_columns_are_not_imported_but_reported(result: Any) -> None:
    everything = "".join(result.files.values()) + repr(result.skipped)
    assert "STATUS_FROM_OLD_FRAMEWORK" not in everything
    assert "2031" not in everything
    assert not any("last_run" in p.reason or "column" in p.where for p in result.skipped)
    [row2] = [n for n in result.notes if n.startswith("SourceConfig!row 2: last_run")]
    assert "last_run_date 2031-07-09T04:58:17, last_run_status STATUS_FROM_OLD_FRAMEWORK not imported" in row2
    [watermark] = [n for n in result.notes if n.startswith("SourceConfig!row 2: table orders")]
    assert "starts from initial_value '2024-01-01' (the sheet's last_watermark)" in watermark


# --- problems ------------------------------------------------------------------------------

def test_exactly_the_bad_rows_are_skipped(result: Any) -> None:
    rows = [int(p.where.rsplit(" ", 1)[1]) for p in result.skipped]
    assert rows == sorted(BAD_ROWS)  # one problem per bad row, in sheet order; blank row 4 is not one


@pytest.mark.parametrize("row", sorted(BAD_ROWS))
def test_each_bad_row_is_reported_with_its_reason(result: Any, row: int) -> None:
    [problem] = [p for p in result.skipped if p.where == f"SourceConfig!row {row}"]
    for fragment in BAD_ROWS[row][1]:
        assert fragment in problem.reason


def test_unknown_columns_are_reported_and_ignored(tmp_path: Path, secrets_toml: Path) -> None:
    xlsx = write_workbook(tmp_path / "extra.xlsx", {2: [*job("postgresql", "sales_de", "orders"), "id"]},
                          header=[*HEADER, "Primary Key"])
    result = import_workbook(xlsx, secrets_toml)
    assert [p.where for p in result.skipped] == ["SourceConfig!column M"]
    assert "'primary_key' is not a column of the job sheet" in result.skipped[0].reason
    assert set(result.files) == {"sales_de"}


def test_top_level_section_gets_a_hint(tmp_path: Path) -> None:
    toml = tmp_path / "flat.toml"
    toml.write_text('[sales_de]\nhost = "h"\ndatabase = "d"\n')
    xlsx = write_workbook(tmp_path / "flat.xlsx", {2: job("postgresql", "sales_de", "orders")})
    [problem] = import_workbook(xlsx, toml).skipped
    assert "rename the section to [sources.sales_de]" in problem.reason


def test_name_suggestions() -> None:
    assert suggest_name("Sales-DE 2") == "sales_de_2"
    assert suggest_name("  Ventes Île-de-France ") == "ventes_ile_de_france"
    assert suggest_name("2024 extract") == "s_2024_extract"
    assert suggest_name("---") == "source"


def test_watermark_values() -> None:
    assert watermark_value(datetime(2024, 5, 1)) == "2024-05-01"
    assert watermark_value(datetime(2024, 5, 1, 8, 15, 0, 250)) == "2024-05-01T08:15:00.000250"
    assert watermark_value(42.0) == 42
    assert watermark_value("  ") is None
    assert watermark_value(None) is None


@pytest.mark.parametrize(("sheet", "header", "message"), [
    ("Jobs", HEADER, "has no sheet 'SourceConfig' (its sheets: ReadMe, Jobs)"),
    ("SourceConfig", HEADER[:3], "lacks the column(s) load_type"),
    ("SourceConfig", [*HEADER, "table_name"], "has the column(s) table_name twice"),
])
def test_a_workbook_of_the_wrong_shape_is_a_clear_error(tmp_path: Path, sheet: str, header: list[str],
                                                        message: str) -> None:
    xlsx = write_workbook(tmp_path / "wrong.xlsx", {}, header=header, sheet=sheet)
    with pytest.raises(ValueError) as caught:
        import_workbook(xlsx)
    assert message in str(caught.value)


def test_not_a_workbook_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bogus = tmp_path / "ingestion_config.xlsx"
    bogus.write_text("source_type,source_name\n")
    assert main(["import-excel", str(bogus)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "cannot be read as an Excel workbook" in err and "SourceConfig" in err
    with pytest.raises(ValueError, match="no such file"):
        import_workbook(tmp_path / "missing.xlsx")
    sheetless = tmp_path / "empty.xlsx"
    openpyxl.Workbook().save(sheetless)
    with pytest.raises(ValueError, match="no sheet 'SourceConfig'"):
        import_workbook(sheetless)


def test_bad_secrets_file_or_owner_is_a_clear_error(xlsx: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"secrets file .* not found"):
        import_workbook(xlsx, tmp_path / "nope.toml")
    value = secrets.token_hex(8)
    broken = tmp_path / "broken.toml"
    broken.write_text(f'[sources.sales_de]\npassword = "{value}" oops\n')
    with pytest.raises(ValueError, match="not valid TOML") as caught:
        import_workbook(xlsx, broken)
    assert value not in str(caught.value)
    with pytest.raises(ValueError, match="not a valid team name"):
        import_workbook(xlsx, owner="Market DE")


# --- secrets -------------------------------------------------------------------------------

def test_no_secret_value_appears_in_the_output(result: Any, fake: dict[str, str]) -> None:
    output = "\n".join([*result.files.values(), *map(repr, result.skipped), *result.notes])
    for value in fake.values():
        assert value not in output
    for source, key in [("sales_de", "password"), ("finance_fr", "password"), ("crm_uk", "password"),
                        ("hr_nl", "password"), ("weather_api", "token"), ("shop_api", "api_key")]:
        assert f"${{secrets.sources.{source}.{key}}}" in result.files[source]


def test_dry_run_writes_nothing(xlsx: Path, secrets_toml: Path, ingest_env: Path, fake: dict[str, str],
                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import-excel", str(xlsx), "--secrets", str(secrets_toml)]) == 0
    out, err = capsys.readouterr()
    assert f"--- would write {ingest_env / 'configs' / 'sources' / 'sales_de.yaml'}" in out
    assert "SourceConfig!row 14: skipped: load_type INCREMENTAL needs a watermark_column" in out
    assert "dry run: 6 source file(s), 15 row(s) skipped" in err
    assert not any(value in out + err for value in fake.values())
    assert list((ingest_env / "configs" / "sources").iterdir()) == []
    assert not (ingest_env / ".ingest" / "audit").exists()


def test_write_saves_valid_files_and_a_second_write_reports_conflicts(
        xlsx: Path, secrets_toml: Path, ingest_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sources = ingest_env / "configs" / "sources"
    args = ["--actor", "ana", "import-excel", str(xlsx), "--secrets", str(secrets_toml), "--write"]
    assert main(args) == 0
    assert {p.stem for p in sources.glob("*.yaml")} == FILES
    assert "6 source file(s) written, 15 row(s) skipped" in capsys.readouterr().err
    assert main(["validate"]) == 0  # the whole config dir, destinations included
    assert main(["validate", str(sources)]) == 0
    assert "6 of 6 files valid" in capsys.readouterr().err

    before = {p.name: p.read_bytes() for p in sources.glob("*.yaml")}
    (sources / "crm_uk.yaml").write_text(before["crm_uk.yaml"].decode() + "schedule: 0 6 * * *\n")
    (sources / "hr_nl.yaml").unlink()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "error: 5 source file(s) exist already and were not overwritten" in err
    assert "'sales_de' already exists" in err
    assert "1 other source file(s) written" in err and "hr_nl.yaml" in err
    assert (sources / "crm_uk.yaml").read_text().endswith("schedule: 0 6 * * *\n")
    assert {p.name: p.read_bytes() for p in sources.glob("*.yaml") if p.name != "crm_uk.yaml"} == {
        name: data for name, data in before.items() if name != "crm_uk.yaml"}


def test_write_without_raising_lists_the_conflicts(result: Any) -> None:
    store = ConfigStore()
    assert len(result.write(store, actor="ana")) == len(FILES)
    assert result.write(store, actor="ana", raise_on_conflict=False) == []
    assert sorted(Path(c.where).stem for c in result.conflicts) == sorted(FILES)
    with pytest.raises(ImportConflictError) as caught:
        result.write(store, actor="ana")
    assert caught.value.written == [] and len(caught.value.conflicts) == len(FILES)


def test_written_configs_resolve_their_references(xlsx: Path, secrets_toml: Path, fake: dict[str, str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_SECRETS_FILE", str(secrets_toml))
    result = import_workbook(xlsx, secrets_toml)
    assert not any("INGEST_SECRETS_FILE" in note for note in result.notes)
    result.write(ConfigStore(), actor="ana")
    resolved = {name: resolve_value(ConfigStore().load_source(name).config.source.model_dump(mode="json"))
                for name in FILES}
    assert resolved["sales_de"]["password"] == fake["pg_password"]
    assert resolved["finance_fr"]["password"] == fake["ora_password"]
    assert resolved["crm_uk"]["password"] == fake["ms_password"]
    assert resolved["hr_nl"]["password"] == fake["az_password"]
    assert resolved["weather_api"]["auth"]["token"] == fake["api_token"]
    assert resolved["shop_api"]["auth"]["api_key"] == fake["shop_key"]


def test_a_secrets_file_other_than_the_runtime_one_is_noted(result: Any) -> None:
    [note] = [n for n in result.notes if "INGEST_SECRETS_FILE" in n]
    assert "secrets.toml" in note and "SECRETS__SOURCES__" in note
