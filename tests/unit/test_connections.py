"""Connection URLs of every SQL source type, destination plans, and the errors a user gets when
a driver or server is missing (Oracle and SQL Server cannot run here: unit level only)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ingestion_core.common import settings
from ingestion_core.config.models.destinations import DESTINATION_ADAPTER
from ingestion_core.config.models.source_file import parse_source_file
from ingestion_core.config.secrets import store_secret
from ingestion_core.engine.destinations import build_destination
from ingestion_core.engine.destinations.duckdb import preview_plan
from ingestion_core.engine.errors import MissingDriverError
from ingestion_core.engine.sources import sql
from ingestion_core.engine.sources import test_connection as check_connection

PASSWORD = "pw-with/odd@chars:" + "x" * 8


def config(**source):
    return parse_source_file({"name": "src", "owner": "data-ops", "source": source, "tables": [{"name": "t"}]})


@pytest.fixture(autouse=True)
def secret(ingest_env: Path) -> None:
    store_secret("${secrets.src.password}", PASSWORD)


REF = "${secrets.src.password}"


@pytest.mark.parametrize(("source", "expected"), [
    ({"type": "postgres", "host": "db", "database": "sales", "username": "app", "password": REF},
     "postgresql+psycopg2://app:***@db:5432/sales?connect_timeout=15"),
    ({"type": "mysql", "host": "db", "port": 3307, "database": "crm", "username": "app", "password": REF},
     "mysql+pymysql://app:***@db:3307/crm?connect_timeout=15"),
    ({"type": "oracle", "host": "ora", "service_name": "ORCLPDB1", "username": "app", "password": REF},
     "oracle+oracledb://app:***@ora:1521?service_name=ORCLPDB1"),
    ({"type": "oracle", "host": "ora", "sid": "ORCL", "username": "app", "password": REF},
     "oracle+oracledb://app:***@ora:1521/ORCL"),
    ({"type": "mssql", "host": "sql", "database": "erp", "username": "app", "password": REF},
     "mssql+pyodbc://app:***@sql:1433/erp?Encrypt=yes&LoginTimeout=15&TrustServerCertificate=no"
     "&driver=ODBC+Driver+18+for+SQL+Server"),
    ({"type": "azure_sql", "host": "acme", "database": "dw", "authentication": "service_principal",
      "tenant_id": "t", "client_id": "c", "client_secret": REF},
     "mssql+pyodbc://c:***@acme.database.windows.net:1433/dw?Authentication=ActiveDirectoryServicePrincipal"
     "&Encrypt=yes&LoginTimeout=15&TrustServerCertificate=no&driver=ODBC+Driver+18+for+SQL+Server"),
    ({"type": "azure_sql", "host": "acme.database.windows.net", "database": "dw",
      "authentication": "managed_identity"},
     "mssql+pyodbc://acme.database.windows.net:1433/dw?Authentication=ActiveDirectoryMsi"
     "&Encrypt=yes&LoginTimeout=15&TrustServerCertificate=no&driver=ODBC+Driver+18+for+SQL+Server"),
    ({"type": "mssql", "host": "sql", "database": "erp", "trusted_connection": True,
      "driver": "ODBC Driver 17 for SQL Server"},  # Windows authentication: no login in the URL
     "mssql+pyodbc://sql:1433/erp?Encrypt=yes&LoginTimeout=15&TrustServerCertificate=no&Trusted_Connection=yes"
     "&driver=ODBC+Driver+17+for+SQL+Server"),
    ({"type": "azure_sql", "host": "acme", "database": "dw", "username": "app", "password": REF,
      "encrypt": False, "trust_server_certificate": True},
     "mssql+pyodbc://app:***@acme.database.windows.net:1433/dw?Encrypt=no&LoginTimeout=15"
     "&TrustServerCertificate=yes&driver=ODBC+Driver+18+for+SQL+Server"),
])
def test_connection_url(source: dict, expected: str) -> None:
    url = sql.connection_url(config(**source))
    assert url.render_as_string(hide_password=True) == expected
    if source.get("password") or source.get("client_secret"):
        assert url.password == PASSWORD  # resolved for the driver, never shown
    assert PASSWORD not in repr(url)


def test_the_engine_url_carries_the_session_settings_after_the_users_own() -> None:
    """The readers' session settings ride on every engine (the type-fidelity tests prove them on
    real servers); a user's own ``options`` / ``init_command`` stay, ours come last and win."""
    from ingestion_core.engine.sources.sql_session import MYSQL_INIT
    from ingestion_core.typemap.fidelity import connectorx_url

    postgres = config(type="postgres", host="db", database="sales", username="app", password=REF,
                      options={"options": "-c search_path=sales"})
    engine = sql.create_engine(postgres)
    assert engine.url.query["options"] == ("-c search_path=sales -c TimeZone=UTC -c extra_float_digits=3 "
                                           "-c IntervalStyle=iso_8601 -c DateStyle=ISO")
    query = connectorx_url(engine).split("?", 1)[1].split("&")  # spaces as %20: connectorx reads '+' as is
    assert sorted(query) == ["connect_timeout=15", "options=-c%20search_path%3Dsales%20-c%20TimeZone%3DUTC%20-c%20"
                             "extra_float_digits%3D3%20-c%20IntervalStyle%3Diso_8601%20-c%20DateStyle%3DISO"]
    mysql = sql.create_engine(config(type="mysql", host="db", database="crm", username="app", password=REF))
    assert mysql.url.query["init_command"] == MYSQL_INIT
    assert "?" not in connectorx_url(mysql)  # connectorx's MySQL reader refuses parameters it does not know
    sqlite3.connect(settings.resolve_local_path("shop.sqlite")).close()
    sqlite = sql.create_engine(config(type="sqlite", path="shop.sqlite"))
    assert dict(sqlite.url.query) == {"mode": "ro", "uri": "true"}  # read-only; no session settings


def test_url_with_inline_reference_and_sqlite_relative_path(ingest_env: Path) -> None:
    url = sql.connection_url(config(type="postgres", url="postgresql+psycopg2://app:" + REF + "@db/sales"))
    assert url.password == PASSWORD and url.host == "db"
    (ingest_env / "data").mkdir()
    sqlite3.connect(ingest_env / "data" / "shop.sqlite").close()
    sqlite = sql.connection_url(config(type="sqlite", path="data/shop.sqlite"))
    assert sqlite.database == (ingest_env / "data" / "shop.sqlite").as_uri()


@pytest.mark.parametrize("path", ["data/nope.sqlite", "{project}/nope.sqlite"])
def test_a_missing_sqlite_file_is_not_found_and_never_created(ingest_env: Path, path: str) -> None:
    """A mistyped path used to 'connect' (SQLite creates the file) and fail later with 'no such table'."""
    path = path.format(project=ingest_env)
    report = check_connection(config(type="sqlite", path=path))
    missing = settings.resolve_local_path(path)
    assert not report.ok
    assert report.reason.startswith(f"SQLite file not found: {missing}")
    assert ("relative to the project folder" in report.reason) == (not path.startswith("/"))
    assert "check source.path" in report.mitigation and str(ingest_env) in report.mitigation
    assert not missing.exists()


def test_a_sqlite_source_is_opened_read_only(ingest_env: Path) -> None:
    """Readers, discovery and the connection test never write to the user's SQLite file."""
    import sqlalchemy as sa

    file = ingest_env / "odd name #1%.sqlite"  # characters a file: URI must escape
    with sqlite3.connect(file) as connection:
        connection.execute("CREATE TABLE t (id INTEGER)")
    source = config(type="sqlite", path=file.name)
    assert check_connection(source).ok
    engine = sql.create_engine(source)
    try:
        with engine.connect() as connection, pytest.raises(sa.exc.OperationalError, match="readonly"):
            connection.execute(sa.text("INSERT INTO t VALUES (1)"))
    finally:
        engine.dispose()


def test_missing_driver_names_what_to_install(monkeypatch) -> None:
    import importlib

    real_import = importlib.import_module

    def no_pyodbc(name, *args, **kwargs):
        if name == "pyodbc":
            raise ImportError("libodbc.so.2: cannot open shared object file")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", no_pyodbc)
    with pytest.raises(MissingDriverError, match="unixodbc"):
        sql.require_driver("mssql")
    report = check_connection(config(type="mssql", host="sql", database="erp", username="a", password=REF))
    assert not report.ok and "unixodbc" in report.reason


def test_sql_server_without_microsofts_driver_is_a_clear_report() -> None:
    report = check_connection(config(type="mssql", host="127.0.0.1", port=1, database="erp", username="a",
                                    password=REF))
    assert not report.ok
    assert "ODBC Driver 18" in report.reason or "driver" in report.mitigation
    assert PASSWORD not in str(report.as_dict())


def test_oracle_server_unreachable_is_a_clear_report() -> None:
    report = check_connection(config(type="oracle", host="127.0.0.1", port=1, service_name="X", username="a",
                                    password=REF, connect_timeout_seconds=2))
    assert not report.ok and report.mitigation
    assert PASSWORD not in str(report.as_dict())


def test_destination_plans(ingest_env: Path) -> None:
    duck = build_destination("local_duckdb", DESTINATION_ADAPTER.validate_python({"type": "duckdb"}))
    assert duck.location == str(ingest_env / ".ingest" / "local_duckdb.duckdb") and duck.serial_load
    files = build_destination("lake", DESTINATION_ADAPTER.validate_python(
        {"type": "filesystem", "bucket_url": "lake", "format": "delta"}))
    assert (files.table_format, files.merge_strategy, files.location) == ("delta", "upsert", str(ingest_env / "lake"))
    store_secret("${secrets.dbx.token}", "dapi-" + "y" * 20)
    dbx = build_destination("dbx", DESTINATION_ADAPTER.validate_python({
        "type": "databricks", "server_hostname": "adb-1.azuredatabricks.net", "http_path": "/sql/1.0/warehouses/x",
        "catalog": "main", "access_token": "${secrets.dbx.token}",
        "staging": {"bucket_url": "s3://stage/in", "credentials": {"aws_access_key_id": "AKIA",
                                                                 "aws_secret_access_key": "${secrets.dbx.token}"}}}))
    assert dbx.type == "databricks" and dbx.staging is not None
    assert dbx.destination.config_params["credentials"]["access_token"] == "dapi-" + "y" * 20
    assert preview_plan("shop").location.endswith("preview/preview_shop.duckdb")


def test_windows_authentication_refuses_a_sql_login_beside_it() -> None:
    from ingestion_core.config.store import validate_source_data

    data = {"name": "src", "owner": "data-ops", "tables": [{"name": "t"}], "source": {
        "type": "mssql", "host": "sql", "database": "erp", "trusted_connection": True, "username": "app",
        "password": REF}}
    config_, issues = validate_source_data(data)
    assert config_ is None
    [issue] = issues
    assert issue.path == "source.trusted_connection"
    assert "remove username and password" in issue.message
