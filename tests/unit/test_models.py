"""Config models, table-driven (dlt style): valid configs load, invalid ones are rejected with the
YAML path and a message that names the field, the bad value, the valid choices and the fix.

Also: load -> save -> load is lossless, validation never mutates its input, and every
secret-bearing field (found by walking the models, so a new one is covered automatically)
refuses a literal value without ever repeating it.
"""

from __future__ import annotations

import copy
import textwrap
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from ingestion_core.config.models import DESTINATION_ADAPTER, SOURCE_FILE_MODELS, parse_source_file
from ingestion_core.config.models.checks import NotNullCheck, UniqueCheck
from ingestion_core.config.models.destinations import DESTINATION_TYPES
from ingestion_core.config.models.sources import SOURCE_MODELS
from ingestion_core.config.store import ConfigStore, dump_yaml, parse_yaml, validate_source_data
from ingestion_core.config.validation import ConfigError, ConfigIssue, is_secret_field

REPO = Path(__file__).resolve().parents[2]

DESTINATIONS = {
    "local_duckdb": DESTINATION_ADAPTER.validate_python({"type": "duckdb"}),
    "lake": DESTINATION_ADAPTER.validate_python({"type": "filesystem", "bucket_url": "file:///lake/raw"}),
    "lake_jsonl": DESTINATION_ADAPTER.validate_python(
        {"type": "filesystem", "bucket_url": "s3://lake/raw", "format": "jsonl"}),
    "lake_delta": DESTINATION_ADAPTER.validate_python(
        {"type": "filesystem", "bucket_url": "abfss://raw@acct.dfs.core.windows.net/x", "format": "delta"}),
    "databricks_prod": DESTINATION_ADAPTER.validate_python({
        "type": "databricks", "server_hostname": "adb-1.2.azuredatabricks.net",
        "http_path": "/sql/1.0/warehouses/abc", "catalog": "main",
        "access_token": "${secrets.databricks.token}"}),
}


def validate(data: Any) -> tuple[Any, list[ConfigIssue]]:
    return validate_source_data(data, DESTINATIONS)


# --- template-like valid configs, as YAML text (so YAML's own typing applies: dates...) -------

VALID_YAML = {
    "postgres_full": """
        version: 1
        name: sales_de
        owner: market-de
        description: Germany sales ERP
        source:
          type: postgres
          host: db.example.internal
          port: 5432
          database: sales
          username: ${secrets.sales_de.username}
          password: ${secrets.sales_de.password}
          options: {sslmode: require}
        destination: databricks_prod
        dataset: raw_sales_de
        defaults: {mode: append, chunk_size: 100000}
        tables:
          - name: orders
            schema: public
            mode: incremental
            cursor: updated_at
            initial_value: 2024-01-01
            filter:
              - {column: country, op: "=", value: DE}
              - {column: status, op: in, value: [open, paid]}
              - {column: deleted_at, op: is_null}
              - {column: created_at, op: ">=", value: 2023-06-30}
            include_columns: [order_id, country, status, updated_at, deleted_at, created_at]
            checks:
              - {not_null: order_id}
              - {unique: order_id}
              - {unique: [order_id, country]}
              - {row_count: {min: 1}}
              - {not_null: {column: country, severity: warn}}
          - name: customers
            mode: merge
            primary_key: [customer_id]
            exclude_columns: [password_hash]
            schema_evolution: freeze
          - name: history
            source_table: customer_history
            mode: scd2
            primary_key: customer_id
            backend: sqlalchemy
            enabled: false
        schedule: "0 6 * * *"
        retries: {attempts: 5, backoff_seconds: 10, max_backoff_seconds: 600}
        workers: {tables_in_parallel: 4, extract: 2, normalize: 2, load: 8}
    """,
    "mysql_url": """
        name: shop_fr
        owner: market-fr
        source:
          type: mysql
          url: mysql+pymysql://app:${secrets.shop_fr.password}@mysql.internal:3306/shop
        tables:
          - {name: products, mode: full}
          - {name: order_lines, mode: incremental, cursor: id, initial_value: 0}
    """,
    "mysql_whole_url_reference": """
        name: shop_it
        owner: market-it
        source: {type: mysql, url: "${env:SHOP_IT_URL}"}
        tables: [{name: products}]
    """,
    "mssql": """
        name: erp_nl
        owner: market-nl
        source:
          type: mssql
          host: sql.example.internal
          database: ERP
          username: reader
          password: ${env:ERP_NL_PASSWORD}
          encrypt: true
          trust_server_certificate: true
        tables:
          - {name: Orders, schema: dbo, mode: merge, primary_key: [OrderID, LineNo]}
          - {name: "Order Lines", schema: dbo, cursor: ModifiedAt, mode: incremental,
             initial_value: "2024-01-01T00:00:00"}
    """,
    "azure_sql_service_principal": """
        name: crm_es
        owner: market-es
        source:
          type: azure_sql
          host: crm-es
          database: crm
          authentication: service_principal
          tenant_id: 00000000-0000-0000-0000-000000000001
          client_id: 00000000-0000-0000-0000-000000000002
          client_secret: ${secrets.crm_es.client_secret}
        tables: [{name: accounts}]
    """,
    "azure_sql_managed_identity": """
        name: crm_pt
        owner: market-pt
        source: {type: azure_sql, host: crm-pt.database.windows.net, database: crm, authentication: managed_identity}
        tables: [{name: accounts}]
    """,
    "oracle_service_name": """
        name: finance
        owner: finance
        source:
          type: oracle
          host: ora.internal
          service_name: ORCLPDB1
          username: fin
          password: ${secrets.finance.password}
        tables: [{name: GL_BALANCES, schema: FIN}]
    """,
    "oracle_sid": """
        name: finance_old
        owner: finance
        source: {type: oracle, host: ora-old.internal, sid: ORCL, thick_mode: true}
        tables: [{name: GL, schema: FIN}]
    """,
    "sqlite_every_check": """
        name: demo_shop
        owner: demo
        source: {type: sqlite, path: demo/data/shop.sqlite}
        tables:
          - name: orders
            checks:
              - {row_count: {min: 1, max: 1000000}}
              - {not_null: order_id}
              - {unique: [order_id]}
              - {accepted_values: {column: status, values: [open, paid, 3, 1.5, true, 2024-02-01]}}
              - {regex: {column: email, pattern: '^[^@]+@[^@]+$', severity: warn}}
              - {range: {column: amount, min: 0, max: 1e6}}
              - {range: {column: ordered_at, min: 2020-01-01}}
              - {freshness: {column: updated_at, max_age: 24h}}
              - {custom_sql: {sql: "SELECT * FROM {table} WHERE amount < 0"}}
              - {custom_sql: {sql: "SELECT count(*) FROM {table}", returns: number, max_value: 10}}
    """,
    "rest_bearer_offset": """
        name: tickets
        owner: support
        source:
          type: rest_api
          base_url: https://api.example.com/v1/
          headers: {Accept: application/json, X-Api-Key: "${secrets.tickets.key}"}
          auth: {type: bearer, token: "${secrets.tickets.token}"}
          paginator: {type: offset, limit: 50, total_path: total}
          rate_limit_per_second: 5
        tables:
          - name: tickets
            path: tickets
            params: {status: open, api_key: "${secrets.tickets.api_key}"}
            data_selector: data.items
            mode: incremental
            cursor: updated_at
            cursor_param: updated_since
            initial_value: 2024-01-01
          - name: comments
            path: tickets/{id}/comments
            parent: tickets
            include_from_parent: [id]
            response_actions: [{status_code: 404}]
          - name: search
            path: search
            method: POST
            json: {query: "*", size: 100}
            headers: {Authorization: "Bearer ${secrets.tickets.search_token}"}
            paginator: {type: single_page}
    """,
    "rest_basic_page_number": """
        name: hr
        owner: people
        source:
          type: rest_api
          base_url: https://hr.example.com/api
          auth: {type: http_basic, username: reader, password: "${secrets.hr.password}"}
          paginator: {type: page_number, base_page: 0, page_param: p, maximum_page: 100}
        tables: [{name: employees, path: employees, mode: merge, primary_key: id}]
    """,
    "rest_api_key_cursor": """
        name: events
        owner: web
        source:
          type: rest_api
          base_url: https://events.example.com/
          auth: {type: api_key, name: X-API-Key, location: header, api_key: "${secrets.events.key}"}
          paginator: {type: cursor, cursor_path: meta.next, cursor_param: after}
        tables: [{name: events, path: events}]
    """,
    "rest_oauth2_json_link": """
        name: crm_api
        owner: sales
        source:
          type: rest_api
          base_url: https://crm.example.com/api/
          auth:
            type: oauth2_client_credentials
            access_token_url: https://login.example.com/oauth/token
            client_id: portal
            client_secret: ${secrets.crm_api.client_secret}
            scopes: [read]
            access_token_request_data: {audience: crm}
          paginator: {type: json_link, next_url_path: links.next}
        tables: [{name: contacts, path: contacts}]
    """,
    "rest_header_link": """
        name: gh
        owner: dev
        source:
          type: rest_api
          base_url: https://api.github.com/
          paginator: {type: header_link, maximum_pages: 50}
        tables: [{name: issues, path: repos/o/r/issues}]
    """,
    "filesystem_local": """
        name: drops
        owner: ops
        source: {type: filesystem, bucket_url: demo/data/files}
        tables:
          - {name: orders_csv, glob: "orders/*.csv", format: csv, csv: {delimiter: ";", header: true}}
          - {name: events, glob: "**/*.jsonl", format: jsonl, mode: append}
          - {name: prices, glob: "prices/*.parquet", format: parquet, mode: merge, primary_key: [sku]}
    """,
    "filesystem_s3": """
        name: lake_in
        owner: data-ops
        destination: lake_delta
        source:
          type: filesystem
          bucket_url: s3://bucket/in
          credentials:
            aws_access_key_id: AKIAEXAMPLE
            aws_secret_access_key: ${secrets.lake_in.aws_secret_access_key}
            region_name: eu-west-1
        tables: [{name: prices, glob: "*.parquet", format: parquet, mode: merge, primary_key: sku}]
    """,
}
for _scheme, _url in {"file": "file:///data/in", "az": "az://container/in", "abfs": "abfs://c@acct.dfs.core.windows.net/in",
                      "abfss": "abfss://c@acct.dfs.core.windows.net/in", "gs": "gs://bucket/in",
                      "gcs": "gcs://bucket/in", "absolute": "/data/in"}.items():
    VALID_YAML[f"filesystem_{_scheme}"] = f"""
        name: files_{_scheme}
        owner: ops
        source: {{type: filesystem, bucket_url: "{_url}"}}
        tables: [{{name: t, glob: "*.csv", format: csv}}]
    """
for _cron in ("*/15 * * * 1-5", "0 0 1 * *", "30 2 * * sun"):
    VALID_YAML[f"schedule {_cron}"] = f"""
        name: sched
        owner: ops
        schedule: "{_cron}"
        source: {{type: sqlite, path: x.sqlite}}
        tables: [{{name: t}}]
    """


def load_yaml(text: str) -> dict[str, Any]:
    data, issues = parse_yaml(textwrap.dedent(text))
    assert not issues, issues
    return data


VALID_CONFIGS: dict[str, dict[str, Any]] = {k: load_yaml(v) for k, v in VALID_YAML.items()}


@pytest.mark.parametrize("key", VALID_CONFIGS)
def test_valid_config_loads(key: str) -> None:
    config, issues = validate(VALID_CONFIGS[key])
    assert issues == []
    assert config is not None and config.source_type == VALID_CONFIGS[key]["source"]["type"]


def test_valid_configs_cover_every_source_type() -> None:
    assert {c["source"]["type"] for c in VALID_CONFIGS.values()} == set(SOURCE_MODELS)


# --- invalid configs: (config, YAML path, message fragments) -----------------------------------

def pg(**fields: Any) -> dict[str, Any]:
    return {"type": "postgres", "host": "db", "database": "sales", "username": "app",
            "password": "${secrets.sales_de.password}", **fields}


def rest(**fields: Any) -> dict[str, Any]:
    return {"type": "rest_api", "base_url": "https://api.example.com/", **fields}


def files(**fields: Any) -> dict[str, Any]:
    return {"type": "filesystem", "bucket_url": "s3://bucket/in", **fields}


def src(source: dict[str, Any] | None = None, tables: list[Any] | None = None, **top: Any) -> dict[str, Any]:
    default_table = {"rest_api": {"name": "t", "path": "t"}, "filesystem": {"name": "t", "glob": "*.csv",
                                                                            "format": "csv"}}
    source = pg() if source is None else source
    kind = str(source.get("type")) if isinstance(source, dict) else None
    tables = tables if tables is not None else [default_table.get(kind, {"name": "orders"})]
    return {"name": "sales_de", "owner": "market-de", "source": source, "tables": tables, **top}


def table(**fields: Any) -> dict[str, Any]:
    return src(tables=[{"name": "orders", **fields}])


def check(spec: Any) -> dict[str, Any]:
    return table(checks=[spec])


def without(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in keys}


MODES = "full, append, incremental, merge, scd2"
SOURCE_TYPES = "postgres, mysql, mssql, azure_sql, oracle, sqlite, rest_api, filesystem"
CHECK_KINDS = "row_count, not_null, null_rate, unique, accepted_values, regex, range, freshness, custom_sql"

INVALID: list[tuple[str, dict[str, Any], str, list[str]]] = [
    # the source and its type
    ("source missing", without(src(), "source"), "source", ["'source' is required", SOURCE_TYPES]),
    ("source not a mapping", src(source="postgres"), "source", ["must be a mapping", "'postgres'", SOURCE_TYPES]),
    ("source type missing", src(source=without(pg(), "type")), "source.type", ["type is missing", SOURCE_TYPES]),
    ("source type unknown", src(source=pg(type="postgre")), "source.type",
     ["'postgre' is not a known type", "did you mean 'postgres'", SOURCE_TYPES]),
    ("source type a list", src(source=pg(type=["postgres"])), "source.type", ["['postgres']", SOURCE_TYPES]),
    # postgres / mysql / mssql / azure_sql
    ("postgres host missing", src(source=without(pg(), "host")), "source.host", ["host", "url"]),
    ("postgres url and host", src(source=pg(url="postgresql://app:${secrets.a.password}@db/sales")), "source.url",
     ["either url or host", "remove"]),
    ("postgres port too big", src(source=pg(port=70000)), "source.port", ["between 1 and 65535", "70000"]),
    ("postgres port text", src(source=pg(port="fivefour")), "source.port", ["whole number", "'fivefour'"]),
    ("postgres unknown key", src(source=pg(hostname="db")), "source.hostname",
     ["unknown key 'hostname'", "did you mean 'host'", "url, host, port"]),
    ("postgres options not text", src(source=pg(options={"sslmode": ["a"]})), "source.options.sslmode",
     ["must be text", "['a']"]),
    ("mysql database missing", src(source=without(pg(type="mysql"), "database")), "source.database",
     ["database missing", "url"]),
    ("mssql encrypt not bool", src(source=pg(type="mssql", encrypt="maybe")), "source.encrypt",
     ["true or false", "'maybe'"]),
    ("mssql unknown key", src(source=pg(type="mssql", encrypted=True)), "source.encrypted",
     ["unknown key 'encrypted'", "did you mean 'encrypt'"]),
    ("azure_sql authentication unknown", src(source=pg(type="azure_sql", authentication="aad")),
     "source.authentication", ["'aad' is not allowed", "sql_password, service_principal, managed_identity"]),
    ("azure_sql service principal incomplete",
     src(source=pg(type="azure_sql", authentication="service_principal", tenant_id="t", client_id="c")),
     "source.client_secret", ["service_principal needs client_secret", "or choose another authentication"]),
    ("azure_sql sql_password without password",
     src(source=without(pg(type="azure_sql"), "password")), "source.password", ["sql_password needs password"]),
    # oracle
    ("oracle service_name and sid", src(source={"type": "oracle", "host": "h", "service_name": "A", "sid": "B"}),
     "source.sid", ["exactly one of service_name or sid", "found both", "remove one"]),
    ("oracle neither", src(source={"type": "oracle", "host": "h"}), "source.service_name",
     ["exactly one of service_name or sid", "found neither", "set service_name"]),
    ("oracle host missing", src(source={"type": "oracle", "service_name": "A"}), "source.host", ["host missing"]),
    # sqlite
    ("sqlite path missing", src(source={"type": "sqlite"}), "source.path", ["'path' is required", "sqlite file"]),
    ("sqlite path empty", src(source={"type": "sqlite", "path": ""}), "source.path", ["must not be empty"]),
    ("sqlite host", src(source={"type": "sqlite", "path": "x", "host": "h"}), "source.host",
     ["unknown key 'host'", "type, path"]),
    # rest_api: connection, every auth and paginator type
    ("rest base_url not http", src(source=rest(base_url="ftp://api")), "source.base_url",
     ["must start with http:// or https://", "'ftp://api'"]),
    ("rest timeout zero", src(source=rest(timeout_seconds=0)), "source.timeout_seconds",
     ["more than 0", "got 0"]),
    ("rest auth type unknown", src(source=rest(auth={"type": "oauth"})), "source.auth.type",
     ["'oauth' is not a known type", "bearer, http_basic, api_key, oauth2_client_credentials"]),
    ("rest auth type missing", src(source=rest(auth={"token": "${secrets.a.b}"})), "source.auth.type",
     ["type is missing", "bearer, http_basic, api_key, oauth2_client_credentials"]),
    ("rest auth not a mapping", src(source=rest(auth="bearer")), "source.auth", ["must be a mapping"]),
    ("bearer token missing", src(source=rest(auth={"type": "bearer"})), "source.auth.token",
     ["'token' is required", "reference"]),
    ("http_basic password missing", src(source=rest(auth={"type": "http_basic", "username": "u"})),
     "source.auth.password", ["'password' is required"]),
    ("api_key location unknown",
     src(source=rest(auth={"type": "api_key", "api_key": "${secrets.a.k}", "location": "body"})),
     "source.auth.location", ["'body' is not allowed", "header, query, cookie"]),
    ("oauth2 token url missing",
     src(source=rest(auth={"type": "oauth2_client_credentials", "client_id": "c", "client_secret": "${env:S}"})),
     "source.auth.access_token_url", ["'access_token_url' is required", "token endpoint"]),
    ("oauth2 unknown key",
     src(source=rest(auth={"type": "oauth2_client_credentials", "access_token_url": "https://t", "client_id": "c",
                           "client_secret": "${env:S}", "scope": ["a"]})),
     "source.auth.scope", ["unknown key 'scope'", "did you mean 'scopes'"]),
    ("paginator type unknown", src(source=rest(paginator={"type": "offst"})), "source.paginator.type",
     ["'offst' is not a known type", "did you mean 'offset'",
      "single_page, offset, page_number, cursor, json_link, header_link"]),
    ("single_page unknown key", src(source=rest(paginator={"type": "single_page", "limit": 5})),
     "source.paginator.limit", ["unknown key 'limit'", "maximum_pages"]),
    ("offset limit zero", src(source=rest(paginator={"type": "offset", "limit": 0})), "source.paginator.limit",
     ["at least 1", "got 0"]),
    ("page_number base_page negative", src(source=rest(paginator={"type": "page_number", "base_page": -1})),
     "source.paginator.base_page", ["at least 0", "-1"]),
    ("cursor location unknown", src(source=rest(paginator={"type": "cursor", "cursor_location": "query"})),
     "source.paginator.cursor_location", ["'query' is not allowed", "body, header"]),
    ("json_link unknown key", src(source=rest(paginator={"type": "json_link", "next_url": "next"})),
     "source.paginator.next_url", ["unknown key 'next_url'", "did you mean 'next_url_path'"]),
    ("header_link maximum_pages zero", src(source=rest(paginator={"type": "header_link", "maximum_pages": 0})),
     "source.paginator.maximum_pages", ["at least 1"]),
    ("resource path missing", src(source=rest(), tables=[{"name": "t"}]), "tables[0].path",
     ["'path' is required", "base_url"]),
    ("resource method", src(source=rest(), tables=[{"name": "t", "path": "t", "method": "PUT"}]),
     "tables[0].method", ["'PUT' is not allowed", "GET, POST"]),
    ("resource response action empty", src(source=rest(), tables=[{"name": "t", "path": "t",
                                                                    "response_actions": [{"action": "ignore"}]}]),
     "tables[0].response_actions[0]", ["needs status_code, content or both"]),
    ("resource sql key", src(source=rest(), tables=[{"name": "t", "path": "t", "schema": "public"}]),
     "tables[0].schema", ["unknown key 'schema'", "path"]),
    # filesystem
    ("filesystem scheme", src(source=files(bucket_url="ftp://host/in")), "source.bucket_url",
     ["scheme 'ftp' is not supported", "s3://", "abfss://", "gs://", "local path"]),
    ("filesystem format", src(source=files(), tables=[{"name": "t", "glob": "*.xls", "format": "xls"}]),
     "tables[0].format", ["'xls' is not allowed", "csv, jsonl, parquet"]),
    ("filesystem glob missing", src(source=files(), tables=[{"name": "t", "format": "csv"}]), "tables[0].glob",
     ["'glob' is required"]),
    ("filesystem glob above bucket", src(source=files(), tables=[{"name": "t", "glob": "../x/*.csv",
                                                                   "format": "csv"}]),
     "tables[0].glob", ["may not go above bucket_url"]),
    ("filesystem glob above bucket, backslashes", src(source=files(), tables=[
        {"name": "t", "glob": "..\\secret\\*.csv", "format": "csv"}]), "tables[0].glob", ["may not go above"]),
    ("filesystem glob absolute", src(source=files(), tables=[{"name": "t", "glob": "/etc/*.csv", "format": "csv"}]),
     "tables[0].glob", ["'/etc/*.csv' is relative to bucket_url", "put the folder in bucket_url"]),
    ("filesystem glob url", src(source=files(), tables=[{"name": "t", "glob": "s3://other/*.csv", "format": "csv"}]),
     "tables[0].glob", ["relative to bucket_url"]),
    ("filesystem csv options on parquet",
     src(source=files(), tables=[{"name": "t", "glob": "*.parquet", "format": "parquet", "csv": {"header": False}}]),
     "tables[0]", ["format is parquet", "remove csv or set format: csv"]),
    ("filesystem credentials unknown key", src(source=files(credentials={"aws_key": "x"})),
     "source.credentials.aws_key", ["unknown key 'aws_key'", "aws_access_key_id"]),
    # tables: modes and what they need
    ("mode unknown", table(mode="upsert"), "tables[0].mode", ["'upsert' is not allowed", MODES]),
    ("incremental without cursor", table(mode="incremental"), "tables[0].cursor",
     ["'orders' has mode incremental but no cursor", "set cursor", "or choose mode"]),
    ("incremental from defaults", src(defaults={"mode": "incremental"}), "tables[0].cursor",
     ["mode incremental (from defaults.mode) but no cursor", "set cursor"]),
    ("merge without primary key", table(mode="merge"), "tables[0].primary_key",
     ["mode merge but no primary_key", "set primary_key"]),
    ("scd2 without primary key", table(mode="scd2"), "tables[0].primary_key", ["mode scd2 but no primary_key"]),
    ("merge from defaults", src(defaults={"mode": "merge"}), "tables[0].primary_key",
     ["mode merge (from defaults.mode) but no primary_key"]),
    ("scd2 from defaults, second table", src(defaults={"mode": "scd2"}, tables=[
        {"name": "a", "primary_key": "id"}, {"name": "b"}]), "tables[1].primary_key",
     ["'b' has mode scd2 (from defaults.mode)"]),
    ("defaults mode unknown", src(defaults={"mode": "replace"}), "defaults.mode", ["'replace' is not allowed", MODES]),
    ("duplicate table names", src(tables=[{"name": "orders"}, {"name": "orders"}]), "tables[1].name",
     ["'orders' appears twice", "its own name"]),
    ("include and exclude overlap", table(include_columns=["a", "b"], exclude_columns=["b", "c"]),
     "tables[0].exclude_columns", ["b are in both include_columns and exclude_columns", "one list only"]),
    ("tables empty", src(tables=[]), "tables", ["needs at least 1 entry"]),
    ("tables missing", without(src(), "tables"), "tables", ["'tables' is required", "add it"]),
    ("tables not a list", src(tables={"name": "orders"}), "tables", ["must be a list"]),
    ("table not a mapping", src(tables=["orders"]), "tables[0]",
     ["must be a mapping", "e.g. {name: orders", "'orders'"]),
    ("table unknown key", table(cursr="updated_at"), "tables[0].cursr",
     ["unknown key 'cursr'", "did you mean 'cursor'"]),
    ("chunk_size zero", table(chunk_size=0), "tables[0].chunk_size", ["between 1 and 10000000", "got 0"]),
    ("schema_evolution unknown", table(schema_evolution="strict"), "tables[0].schema_evolution",
     ["'strict' is not allowed", "evolve, freeze, discard_row, discard_value"]),
    ("backend unknown", table(backend="odbc"), "tables[0].backend",
     ["'odbc' is not allowed", "auto, connectorx, pyarrow, pandas, sqlalchemy"]),
    ("initial_value a list", table(mode="incremental", cursor="id", initial_value=[1]), "tables[0].initial_value",
     ["expected text or a whole number or a number", "[1]"]),
    ("initial_value nan", table(mode="incremental", cursor="id", initial_value=float("nan")),
     "tables[0].initial_value", ["nan"]),
    # identifiers: never pasted into SQL
    ("sql injection in name", table(name="orders; drop table x"), "tables[0].name",
     ["'orders; drop table x' is not a plain SQL identifier", "no quotes, dots, semicolons"]),
    ("quote in name", table(name='a"b'), "tables[0].name", ["'a\"b' is not a plain SQL identifier"]),
    ("comment in cursor", table(mode="incremental", cursor="updated_at--x"), "tables[0].cursor",
     ["'updated_at--x' is not a plain SQL identifier"]),
    ("dotted schema", table(schema="sales.public"), "tables[0].schema",
     ["'sales.public' is not a plain SQL identifier", "separate fields"]),
    ("bad primary key column", table(mode="merge", primary_key=["id", "x;y"]), "tables[0].primary_key[1]",
     ["'x;y' is not a plain SQL identifier"]),
    ("bad include column", table(include_columns=["a'b"]), "tables[0].include_columns[0]", ["'a'b'"]),
    # filters
    ("filter in with one value", table(filter=[{"column": "c", "op": "in", "value": "DE"}]),
     "tables[0].filter[0].value", ["op in needs a list value", "[a, b]"]),
    ("filter is_null with value", table(filter=[{"column": "c", "op": "is_null", "value": 1}]),
     "tables[0].filter[0].value", ["op is_null takes no value", "remove value"]),
    ("filter = without value", table(filter=[{"column": "c", "op": "="}]), "tables[0].filter[0].value",
     ["op = needs a single value"]),
    ("filter op unknown", table(filter=[{"column": "c", "op": "like", "value": "a%"}]), "tables[0].filter[0].op",
     ["'like' is not allowed", "=, !=, <, <=, >, >=, in, not_in, is_null, not_null"]),
    ("filter column injection", table(filter=[{"column": "c = 1 or 1", "op": "=", "value": 1}]),
     "tables[0].filter[0].column", ["not a plain SQL identifier"]),
    ("filter not a list", table(filter={"column": "c", "op": "=", "value": 1}), "tables[0].filter",
     ["must be a list"]),
    # checks: each kind, shorthand, shape
    ("check two keys", check({"not_null": "id", "unique": "id"}), "tables[0].checks[0]",
     ["exactly one key", "found not_null, unique", "one check per list entry", CHECK_KINDS]),
    ("check no key", check({}), "tables[0].checks[0]", ["exactly one key", "found none"]),
    ("check kind unknown", check({"not_nul": "id"}), "tables[0].checks[0].not_nul",
     ["unknown check kind 'not_nul'", "did you mean 'not_null'", CHECK_KINDS]),
    ("check kind far off", check({"freshnes_of_rows": {"column": "a"}}), "tables[0].checks[0].freshnes_of_rows",
     ["unknown check kind", CHECK_KINDS]),
    ("check a bare word", check("not_null"), "tables[0].checks[0]",
     ["must be a mapping", "{not_null: order_id}", "'not_null'"]),
    ("not_null without column", check({"not_null": None}), "tables[0].checks[0].not_null",
     ["check not_null has no settings", "{not_null: order_id}"]),
    ("not_null bad column", check({"not_null": "a;b"}), "tables[0].checks[0].not_null",
     ["'a;b' is not a plain SQL identifier"]),
    ("not_null severity", check({"not_null": {"column": "a", "severity": "fatal"}}),
     "tables[0].checks[0].not_null.severity", ["'fatal' is not allowed", "warn, error"]),
    ("not_null unknown key", check({"not_null": {"columns": "a"}}), "tables[0].checks[0].not_null.columns",
     ["unknown key 'columns'", "did you mean 'column'"]),
    ("unique empty", check({"unique": []}), "tables[0].checks[0].unique", ["needs at least 1 entry"]),
    ("unique bad column in list", check({"unique": ["a", "b;c"]}), "tables[0].checks[0].unique[1]",
     ["'b;c' is not a plain SQL identifier"]),
    ("row_count without bounds", check({"row_count": {}}), "tables[0].checks[0].row_count",
     ["row_count needs min, max or both", "{row_count: {min: 1}}"]),
    ("row_count min above max", check({"row_count": {"min": 5, "max": 1}}), "tables[0].checks[0].row_count",
     ["min (5) is above max (1)", "swap"]),
    ("row_count negative", check({"row_count": {"min": -1}}), "tables[0].checks[0].row_count.min",
     ["at least 0", "-1"]),
    ("accepted_values missing values", check({"accepted_values": {"column": "s"}}),
     "tables[0].checks[0].accepted_values.values", ["'values' is required"]),
    ("regex invalid", check({"regex": {"column": "e", "pattern": "(a"}}), "tables[0].checks[0].regex",
     ["not a valid regular expression"]),
    ("range without bounds", check({"range": {"column": "p"}}), "tables[0].checks[0].range",
     ["range needs min, max or both"]),
    ("freshness bad duration", check({"freshness": {"column": "u", "max_age": "1 day"}}),
     "tables[0].checks[0].freshness.max_age", ["'1 day' is not a duration", "s, m, h, d or w", "'24h'"]),
    ("custom_sql returns", check({"custom_sql": {"sql": "select 1", "returns": "rows"}}),
     "tables[0].checks[0].custom_sql.returns", ["'rows' is not allowed", "failing_rows, number"]),
    ("custom_sql empty", check({"custom_sql": {"sql": ""}}), "tables[0].checks[0].custom_sql.sql",
     ["must not be empty"]),
    # destinations
    ("destination unknown", src(destination="snowflake_prod"), "destination",
     ["destination 'snowflake_prod' does not exist", "databricks_prod, lake, lake_delta, lake_jsonl, local_duckdb",
      "configs/destinations/snowflake_prod.yaml"]),
    ("merge into plain parquet", src(destination="lake", tables=[{"name": "o", "mode": "merge", "primary_key": "id"}]),
     "tables[0].mode", ["destination 'lake' writes plain parquet files", "set format: delta",
                        "configs/destinations/lake.yaml", "or choose mode full, append, incremental"]),
    ("scd2 into jsonl from defaults", src(destination="lake_jsonl", defaults={"mode": "scd2"},
                                          tables=[{"name": "o", "primary_key": "id"}]),
     "tables[0].mode", ["mode scd2 (from defaults.mode)", "plain jsonl files", "format: delta"]),
    ("lookback on a full table", table(mode="full", cursor="u", primary_key="id", lookback="2h"), "tables[0].lookback",
     ["lookback re-reads rows before the saved cursor", "needs mode incremental or merge", "has mode full",
      "remove lookback"]),
    ("lookback without a cursor", table(mode="merge", primary_key="id", lookback="2h"), "tables[0].lookback",
     ["has mode merge and no cursor"]),
    ("lookback without a primary key", table(mode="incremental", cursor="u", lookback="2h"),
     "tables[0].primary_key", ["has lookback 2h", "set primary_key", "loaded once", "or remove lookback"]),
    ("lookback not a duration", table(mode="incremental", cursor="u", primary_key="id", lookback="2 hours"),
     "tables[0].lookback", ["'2 hours' is not a duration"]),
    ("lookback into plain parquet", src(destination="lake", tables=[
        {"name": "o", "mode": "incremental", "cursor": "u", "primary_key": "id", "lookback": "30m"}]),
     "tables[0].lookback", ["'o' has lookback", "merging on primary_key", "writes plain parquet files",
                            "set format: delta", "or remove lookback"]),
    ("scd2 into delta", src(destination="lake_delta", tables=[{"name": "o", "mode": "scd2", "primary_key": "id"}]),
     "tables[0].mode", ["'o' has mode scd2", "destination 'lake_delta' writes Delta tables", "no scd2 history",
                        "duckdb or databricks destination", "or choose mode full, append, incremental, merge"]),
    ("null_rate max a percent", check({"null_rate": {"column": "email", "max": 5}}),
     "tables[0].checks[0].null_rate.max",
     ["null_rate max for column email is 5", "from 0 to 1", "max: 0.05"]),
    ("null_rate max negative", check({"null_rate": {"column": "email", "max": -0.1}}),
     "tables[0].checks[0].null_rate.max", ["is -0.1", "from 0 to 1"]),
    ("null_rate max text", check({"null_rate": {"column": "email", "max": "5%"}}),
     "tables[0].checks[0].null_rate.max", ["is 5%", "max: 0.05"]),
    ("null_rate without max", check({"null_rate": {"column": "email"}}), "tables[0].checks[0].null_rate.max",
     ["'max' is required"]),
    ("destination bad name", src(destination="Lake"), "destination", ["'Lake' is not a valid name"]),
    # schedule, retries, workers
    ("cron four fields", src(schedule="0 6 * *"), "schedule",
     ["'0 6 * *' is not a 5-field cron expression", "'0 6 * * *'"]),
    ("cron out of range", src(schedule="61 25 * * *"), "schedule",
     ["'61 25 * * *': minute 61 is out of range 0-59; hour 25 is out of range 0-23"]),
    ("cron weekday out of range", src(schedule="0 6 * * 9"), "schedule", ["day-of-week 9 is out of range 0-7"]),
    ("cron month in a range", src(schedule="0 6 1 1-13 *"), "schedule", ["month 13 is out of range 1-12"]),
    ("timezone unknown", src(timezone="Europe/Bonn"), "timezone", ["'Europe/Bonn' is not a time zone",
                                                                    "'Europe/Berlin'"]),
    ("cron six fields", src(schedule="0 0 6 * * *"), "schedule", ["not a 5-field cron"]),
    ("cron words", src(schedule="every day"), "schedule", ["'every day'"]),
    ("cron a number", src(schedule=6), "schedule", ["must be text", "got 6", "quotes"]),
    ("retries attempts zero", src(retries={"attempts": 0}), "retries.attempts", ["between 1 and 10", "got 0"]),
    ("retries attempts eleven", src(retries={"attempts": 11}), "retries.attempts", ["between 1 and 10", "got 11"]),
    ("retries backoff negative", src(retries={"backoff_seconds": -1}), "retries.backoff_seconds",
     ["between 0 and 3600"]),
    ("retries unknown key", src(retries={"attempt": 3}), "retries.attempt",
     ["unknown key 'attempt'", "did you mean 'attempts'"]),
    ("workers zero", src(workers={"tables_in_parallel": 0}), "workers.tables_in_parallel", ["between 1 and 32"]),
    ("workers too many", src(workers={"load": 65}), "workers.load", ["between 1 and 64", "got 65"]),
    ("workers text", src(workers={"extract": "many"}), "workers.extract", ["whole number", "'many'"]),
    # top level
    ("top unknown key", src(ownr="x"), "ownr", ["unknown key 'ownr'", "did you mean 'owner'"]),
    ("top typo of tables", {**without(src(), "tables"), "tabels": [{"name": "o"}]}, "tabels",
     ["did you mean 'tables'"]),
    ("top unknown key, no suggestion", src(zzz=1), "zzz", ["unknown key 'zzz'", "remove it", "name, owner"]),
    ("name not a name", src(name="Sales DE"), "name", ["'Sales DE' is not a valid name", "e.g. 'sales_de'"]),
    ("name missing", without(src(), "name"), "name", ["'name' is required", "add it"]),
    ("owner bad", src(owner="Market DE"), "owner", ["'Market DE' is not a valid team name", "'market-de'"]),
    ("owner missing", without(src(), "owner"), "owner", ["'owner' is required"]),
    ("dataset bad", src(dataset="raw-sales"), "dataset", ["'raw-sales' is not a valid name"]),
    ("enabled not bool", src(enabled="sometimes"), "enabled", ["true or false", "'sometimes'"]),
    ("description a date", src(description=__import__("datetime").date(2024, 1, 1)), "description",
     ["must be text", "2024-01-01", "quotes"]),
    ("version newer", src(version=2), "version", ["version 2", "newer release", "upgrade the portal"]),
    ("version zero", src(version=0), "version", ["0 is not allowed", "choose one of 1"]),
    ("key not text", {**src(), 5: "x"}, "", ["key 5 is not text", "quotes"]),
]


@pytest.mark.parametrize(("config", "path", "fragments"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_config_names_path_and_fix(config: dict[str, Any], path: str, fragments: list[str]) -> None:
    model, issues = validate(config)
    assert model is None
    at_path = [i for i in issues if i.path == path and i.severity == "error"]
    assert at_path, f"no error at {path!r}; got {[i.line('f.yaml') for i in issues]}"
    message = " | ".join(i.message for i in at_path)
    for fragment in fragments:
        assert fragment.lower() in message.lower(), f"{fragment!r} not in {message!r}"


def test_invalid_cases_cover_every_source_type() -> None:
    covered = {str(c[1]["source"].get("type")) for c in INVALID if isinstance(c[1].get("source"), dict)}
    assert set(SOURCE_MODELS) <= covered


def test_merge_into_delta_files_is_accepted() -> None:
    merging = [{"name": "o", "mode": "merge", "primary_key": "id"}]
    config, issues = validate(src(destination="lake_delta", tables=merging))
    assert issues == [] and config is not None


def test_destination_is_not_checked_without_the_list_of_destinations() -> None:
    config, issues = validate_source_data(src(destination="anything"))
    assert issues == [] and config is not None


def test_missing_connection_fields_are_all_named() -> None:
    _, issues = validate(src(source={"type": "postgres"}))
    assert [i.path for i in issues] == ["source.host"]
    assert "host and database missing" in issues[0].message


def test_errors_in_several_places_are_all_reported() -> None:
    config = src(ownr="x", schedule="bad", tables=[{"name": "orders", "mode": "upsert", "cursr": "x"}])
    _, issues = validate(config)
    assert {"ownr", "schedule", "tables[0].mode", "tables[0].cursr"} <= {i.path for i in issues}


# QA: a file with three faults needed three fix-and-rerun rounds (the file's rules ran only once
# every field was right, and stopped at the first table). (name, file, every path reported at once)
EVERY_PROBLEM_AT_ONCE: list[tuple[str, dict[str, Any], set[str]]] = [
    ("three tables, three faults", src(tables=[
        {"name": "orders", "mode": "incremental"}, {"name": "customers", "mode": "merge"},
        {"name": "items", "mdoe": "full"}]),
     {"tables[0].cursor", "tables[1].primary_key", "tables[2].mdoe"}),
    ("mode needs beside a wrong top-level field", src(ownr="x", defaults={"mode": "incremental"},
                                                      tables=[{"name": "a"}, {"name": "b", "mode": "scd2"}]),
     {"ownr", "tables[0].cursor", "tables[1].primary_key"}),
    ("one table, several problems", src(destination="lake", source={"type": "mysql", "host": "h", "database": "d"},
                                        tables=[{"name": "o", "mode": "merge", "lookback": "2h",
                                                 "type_mapping": {"oracle_number": "bigint"}}]),
     {"tables[0].primary_key", "tables[0].lookback", "tables[0].mode", "tables[0].type_mapping.oracle_number"}),
    ("every problem of after", src(after=["sales_de", "x", "x"]), {"after[0]", "after[2]"}),
    ("every table name given twice", src(tables=[{"name": "o"}, {"name": "o"}, {"name": "p"}, {"name": "p"}]),
     {"tables[1].name", "tables[3].name"}),
    ("after beside a table's need", src(after=["sales_de"], tables=[{"name": "p", "mode": "merge"}]),
     {"after[0]", "tables[0].primary_key"}),
    ("unknown destination beside a table's need", src(destination="nowhere", tables=[{"name": "o", "mode": "merge"}]),
     {"destination", "tables[0].primary_key"}),
]


@pytest.mark.parametrize(("config", "paths"), [c[1:] for c in EVERY_PROBLEM_AT_ONCE],
                         ids=[c[0] for c in EVERY_PROBLEM_AT_ONCE])
def test_one_validation_reports_every_independent_problem(config: dict[str, Any], paths: set[str]) -> None:
    model, issues = validate(config)
    assert model is None
    assert {i.path for i in issues} == paths, [i.line("f.yaml") for i in issues]


# --- destination files ---------------------------------------------------------------------

VALID_DESTINATIONS = {
    "duckdb": {"type": "duckdb"},
    "duckdb_path": {"version": 1, "type": "duckdb", "path": "/data/warehouse.duckdb", "description": "x"},
    "filesystem_delta": {"type": "filesystem", "bucket_url": "abfss://raw@acct.dfs.core.windows.net/lake",
                         "format": "delta",
                         "credentials": {"azure_storage_account_name": "acct",
                                         "azure_storage_account_key": "${secrets.lake.key}"}},
    "filesystem_parquet_layout": {"type": "filesystem", "bucket_url": "file:///lake",
                                  "layout": "{table_name}/{load_id}.{ext}"},
    "filesystem_keep_history": {"type": "filesystem", "bucket_url": "az://lake/raw", "keep_history": True,
                                "layout": "{schema_name}/{table_name}/{curr_date}/{HH}{mm}/{load_id}.{file_id}.{ext}"},
    "databricks_token": DESTINATIONS["databricks_prod"].model_dump(exclude_unset=True),
    "databricks_oauth_volume": {"type": "databricks", "server_hostname": "adb-1.azuredatabricks.net",
                                "http_path": "/sql/1.0/warehouses/x", "catalog": "main", "client_id": "sp",
                                "client_secret": "${env:DATABRICKS_CLIENT_SECRET}",
                                "staging": {"volume": "/Volumes/main/raw/staging"}},
}

INVALID_DESTINATIONS: list[tuple[str, dict[str, Any], str, list[str]]] = [
    ("type unknown", {"type": "snowflake"}, "type",
     ["'snowflake' is not a known type", "duckdb, filesystem, databricks"]),
    ("type missing", {"path": "x"}, "type", ["type is missing", "duckdb, filesystem, databricks"]),
    ("duckdb unknown key", {"type": "duckdb", "file": "x.duckdb"}, "file", ["unknown key 'file'", "path"]),
    ("filesystem format", {"type": "filesystem", "bucket_url": "s3://b", "format": "csv"}, "format",
     ["'csv' is not allowed", "parquet, jsonl, delta"]),
    ("filesystem scheme", {"type": "filesystem", "bucket_url": "hdfs://x"}, "bucket_url", ["'hdfs'", "s3://"]),
    ("filesystem bucket missing", {"type": "filesystem"}, "bucket_url", ["'bucket_url' is required"]),
    ("keep_history on delta", {"type": "filesystem", "bucket_url": "s3://b", "format": "delta", "keep_history": True},
     "keep_history", ["Delta tables keep their earlier versions", "set format: parquet"]),
    ("keep_history without a dated folder",
     {"type": "filesystem", "bucket_url": "s3://b", "keep_history": True, "layout": "{table_name}/{load_id}.{ext}"},
     "layout", ["'{table_name}/{load_id}.{ext}' has no date in its folders", "{YYYY}/{MM}/{DD}",
                "use the default {table_name}/{YYYY}/{MM}/{DD}/"]),
    ("keep_history with the load id in a folder",
     {"type": "filesystem", "bucket_url": "s3://b", "keep_history": True,
      "layout": "{table_name}/{YYYY}/{load_id}/{file_id}.{ext}"}, "layout", ["has load_id in its folders"]),
    ("keep_history without a table folder",
     {"type": "filesystem", "bucket_url": "s3://b", "keep_history": True, "layout": "{YYYY}-{table_name}.{ext}"},
     "layout", ["has no {table_name} folder"]),
    ("databricks no credentials", {"type": "databricks", "server_hostname": "h", "http_path": "/p", "catalog": "c"},
     "", ["needs access_token", "client_id and client_secret"]),
    ("databricks staging both",
     {**VALID_DESTINATIONS["databricks_token"], "staging": {"bucket_url": "s3://b", "volume": "/Volumes/a/b/c"}},
     "staging", ["exactly one of bucket_url", "or volume", "found both"]),
    ("databricks catalog missing", without(VALID_DESTINATIONS["databricks_token"], "catalog"), "catalog",
     ["'catalog' is required"]),
]


@pytest.mark.parametrize("key", VALID_DESTINATIONS)
def test_valid_destination_loads(key: str) -> None:
    from ingestion_core.config.store import validate_destination_data

    config, issues = validate_destination_data(VALID_DESTINATIONS[key])
    assert issues == [] and config is not None


@pytest.mark.parametrize(("config", "path", "fragments"), [c[1:] for c in INVALID_DESTINATIONS],
                         ids=[c[0] for c in INVALID_DESTINATIONS])
def test_invalid_destination_names_path_and_fix(config: dict[str, Any], path: str, fragments: list[str]) -> None:
    from ingestion_core.config.store import validate_destination_data

    model, issues = validate_destination_data(config)
    assert model is None
    message = " | ".join(i.message for i in issues if i.path == path)
    assert message, f"no error at {path!r}; got {[i.line('f.yaml') for i in issues]}"
    for fragment in fragments:
        assert fragment.lower() in message.lower(), f"{fragment!r} not in {message!r}"


def test_destination_cases_cover_every_destination_type() -> None:
    assert {d["type"] for d in VALID_DESTINATIONS.values()} == set(DESTINATION_TYPES)


# --- round trip and no mutation --------------------------------------------------------------

def _template_files() -> list[Path]:
    folder = REPO / "configs" / "templates"
    return sorted(folder.glob("*.yaml")) if folder.is_dir() else []


ROUND_TRIP = {**{k: textwrap.dedent(v) for k, v in VALID_YAML.items()},
              **{f"template {p.name}": p.read_text("utf-8") for p in _template_files()}}


@pytest.mark.parametrize("key", ROUND_TRIP)
def test_load_save_load_is_lossless(key: str) -> None:
    data, issues = parse_yaml(ROUND_TRIP[key])
    assert not issues
    if "source" not in data:  # a destination template
        first = DESTINATION_ADAPTER.validate_python(data)
        second = DESTINATION_ADAPTER.validate_python(parse_yaml(dump_yaml(first))[0])
        assert second == first
        return
    first, issues = validate(data)
    assert first is not None, issues
    saved = dump_yaml(first)
    second, issues = validate(parse_yaml(saved)[0])
    assert issues == [] and second == first
    assert dump_yaml(second) == saved, "saving twice must give the same text"


def test_round_trip_keeps_aliases_dates_and_shorthand() -> None:
    config, _ = validate(VALID_CONFIGS["postgres_full"])
    text = dump_yaml(config)
    orders = parse_yaml(text)[0]["tables"][0]
    assert orders["schema"] == "public" and "schema_" not in orders
    assert orders["initial_value"] == "2024-01-01"  # text now, quoted in the file
    assert "initial_value: '2024-01-01'" in text
    assert orders["filter"][3]["value"] == "2023-06-30"
    assert orders["checks"][:3] == [{"not_null": "order_id"}, {"unique": ["order_id"]},
                                    {"unique": ["order_id", "country"]}]
    assert orders["checks"][4] == {"not_null": {"column": "country", "severity": "warn"}}
    search = parse_yaml(dump_yaml(validate(VALID_CONFIGS["rest_bearer_offset"])[0]))[0]["tables"][2]
    assert search["json"] == {"query": "*", "size": 100} and "json_body" not in search


def test_saved_file_leaves_out_defaults_the_user_did_not_set() -> None:
    config, _ = validate(VALID_CONFIGS["mysql_url"])
    saved = parse_yaml(dump_yaml(config))[0]
    assert set(saved) == {"version", "name", "owner", "source", "tables"}
    assert saved["tables"][0] == {"name": "products", "mode": "full"}


def test_round_trip_through_the_store(ingest_env: Path) -> None:
    store = ConfigStore()
    for key in ("postgres_full", "rest_bearer_offset", "filesystem_s3"):
        data = copy.deepcopy(VALID_CONFIGS[key])
        data["destination"] = "local_duckdb"
        if key == "filesystem_s3":
            data["tables"][0]["mode"] = "append"
        config, issues = validate_source_data(data)
        assert config is not None, issues
        store.save_source(config, actor="test", expected_revision=None)
        assert store.load_source(config.name).config == config


@pytest.mark.parametrize("case", INVALID[:40] + INVALID[-40:], ids=lambda c: c[0])
def test_validation_does_not_mutate_invalid_input(case: tuple[str, dict[str, Any], str, list[str]]) -> None:
    config = case[1]
    before = copy.deepcopy(config)
    validate(config)
    assert config == before


@pytest.mark.parametrize("key", VALID_CONFIGS)
def test_validation_does_not_mutate_valid_input(key: str) -> None:
    config = copy.deepcopy(VALID_CONFIGS[key])
    validate(config)
    assert config == VALID_CONFIGS[key]


def test_migration_does_not_mutate_input() -> None:
    config = table(watermark_column="updated_at", write_disposition="replace")
    before = copy.deepcopy(config)
    model, issues = validate(config)
    assert model is not None and config == before
    assert {i.severity for i in issues} == {"warning"}


def test_check_shorthand_expands() -> None:
    config, _ = validate(table(checks=[{"not_null": "id"}, {"unique": ["a", "b"]}, {"unique": "c"}]))
    specs = [c.spec for c in config.tables[0].checks]
    assert specs[0] == NotNullCheck(column="id", severity="error")
    assert isinstance(specs[1], UniqueCheck) and specs[1].columns == ["a", "b"]
    assert specs[2].columns == ["c"]


def test_settings_inherit_defaults() -> None:
    config, _ = validate(src(defaults={"mode": "append", "chunk_size": 10}, tables=[
        {"name": "a"}, {"name": "b", "mode": "full", "chunk_size": 5}]))
    a, b = (config.settings_for(t) for t in config.tables)
    assert (a.mode, a.chunk_size, b.mode, b.chunk_size) == ("append", 10, "full", 5)


def test_azure_host_short_name_is_completed() -> None:
    config, _ = validate(VALID_CONFIGS["azure_sql_service_principal"])
    assert config.source.host == "crm-es.database.windows.net"


# --- secrets: every secret-bearing field, found by walking the models ------------------------

Step = tuple[str | int, type[BaseModel] | None]  # a key (or list index) and the model found there


def _models_in(annotation: Any) -> list[tuple[bool, type[BaseModel]]]:
    """(inside a list?, model) for every model an annotation can hold."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, __import__("types").UnionType):
        return [m for a in typing.get_args(annotation) for m in _models_in(a)]
    if origin is list:
        return [(True, m) for _, m in _models_in(typing.get_args(annotation)[0])]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(False, annotation)]
    return []


def secret_fields(model: type[BaseModel], steps: tuple[Step, ...] = ()) -> list[tuple[Step, ...]]:
    """Every path from ``model`` to a field marked x-secret, through nested models and lists."""
    found = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        if is_secret_field(info):
            found.append((*steps, (key, None)))
        for in_list, member in _models_in(info.annotation):
            inner = ((key, None), (0, member)) if in_list else ((key, member),)
            found.extend(secret_fields(member, (*steps, *inner)))
    return found


BASE_SOURCE = {
    "postgres": pg(), "mysql": pg(type="mysql"), "mssql": pg(type="mssql"), "azure_sql": pg(type="azure_sql"),
    "oracle": {"type": "oracle", "host": "h", "service_name": "S"}, "sqlite": {"type": "sqlite", "path": "x"},
    "rest_api": rest(), "filesystem": files(),
}
BASE_DESTINATION = {"duckdb": {"type": "duckdb"}, "filesystem": VALID_DESTINATIONS["filesystem_delta"],
                    "databricks": VALID_DESTINATIONS["databricks_token"]}


def _place(data: dict[str, Any], steps: tuple[Step, ...], value: str) -> str:
    """Puts ``value`` at the path in a copy-safe way; returns the YAML path."""
    node: Any = data
    path = ""
    for index, (key, model) in enumerate(steps):
        path += f"[{key}]" if isinstance(key, int) else (f".{key}" if path else key)
        if index == len(steps) - 1:
            node[key] = value
            break
        tag = model.model_fields["type"].annotation.__args__[0] if model and "type" in model.model_fields else None
        current = node[key] if (isinstance(node, dict) and key in node) or (
            isinstance(node, list) and isinstance(key, int) and key < len(node)) else None
        if not isinstance(current, (dict, list)) or (tag and isinstance(current, dict) and current.get("type") != tag):
            current = {"type": tag} if tag else ([] if isinstance(steps[index + 1][0], int) else {})
            if isinstance(node, list):
                node.append(current)
            else:
                node[key] = current
        node = current
    return path


def _secret_cases() -> list[tuple[str, str, tuple[Step, ...]]]:
    cases = []
    for kind, model in SOURCE_FILE_MODELS.items():
        cases += [("source", kind, steps) for steps in secret_fields(model)]
    for member in typing.get_args(typing.get_args(DESTINATION_ADAPTER._type)[0]):
        kind = member.model_fields["type"].annotation.__args__[0]
        cases += [("destination", kind, steps) for steps in secret_fields(member)]
    return cases


SECRET_CASES = _secret_cases()
LITERAL = "Sup3r-Secret-Value!"


def _document(root: str, kind: str, steps: tuple[Step, ...], value: str) -> tuple[dict[str, Any], str]:
    data = src(source=copy.deepcopy(BASE_SOURCE[kind])) if root == "source" else copy.deepcopy(BASE_DESTINATION[kind])
    if steps[-1][0] == "url" and root == "source":
        data["source"] = {k: v for k, v in data["source"].items() if k not in ("host", "database", "service_name")}
    return data, _place(data, steps, value)


def _check(root: str, data: dict[str, Any]) -> list[ConfigIssue]:
    from ingestion_core.config.store import validate_destination_data

    return (validate(data) if root == "source" else validate_destination_data(data))[1]


def test_the_walk_finds_the_known_secret_fields() -> None:
    paths = {(root, kind, ".".join(str(k) for k, _ in steps)) for root, kind, steps in SECRET_CASES}
    for expected in [("source", "postgres", "source.password"), ("source", "postgres", "source.url"),
                     ("source", "azure_sql", "source.client_secret"), ("source", "rest_api", "source.auth.token"),
                     ("source", "rest_api", "source.auth.api_key"), ("source", "rest_api", "source.auth.password"),
                     ("source", "rest_api", "source.auth.client_secret"),
                     ("source", "filesystem", "source.credentials.aws_secret_access_key"),
                     ("destination", "databricks", "access_token"),
                     ("destination", "databricks", "staging.credentials.azure_storage_account_key"),
                     ("destination", "filesystem", "credentials.gcp_private_key")]:
        assert expected in paths
    assert len(SECRET_CASES) >= 30


@pytest.mark.parametrize(("root", "kind", "steps"), SECRET_CASES,
                         ids=[f"{r}:{k}:{'.'.join(str(s[0]) for s in st)}" for r, k, st in SECRET_CASES])
def test_secret_field_refuses_a_literal_and_never_repeats_it(root: str, kind: str, steps: tuple[Step, ...]) -> None:
    literal = f"postgresql://app:{LITERAL}@db/sales" if steps[-1][0] == "url" else LITERAL
    data, path = _document(root, kind, steps, literal)
    issues = _check(root, data)
    at_path = [i for i in issues if i.path == path]
    assert at_path and "literal" in at_path[0].message, [i.line("f") for i in issues]
    assert "reference" in at_path[0].message or "${secrets" in at_path[0].message
    assert LITERAL not in str(ConfigError(issues, "f.yaml"))
    with pytest.raises(ValidationError) as raised:
        (parse_source_file if root == "source" else DESTINATION_ADAPTER.validate_python)(data)
    assert LITERAL not in str(raised.value)


@pytest.mark.parametrize(("root", "kind", "steps"), SECRET_CASES,
                         ids=[f"{r}:{k}:{'.'.join(str(s[0]) for s in st)}" for r, k, st in SECRET_CASES])
@pytest.mark.parametrize("reference", ["${secrets.sales_de.value}", "${env:SALES_DE_VALUE}"])
def test_secret_field_accepts_references(root: str, kind: str, steps: tuple[Step, ...], reference: str) -> None:
    data, path = _document(root, kind, steps, reference)
    issues = _check(root, data)
    assert not [i for i in issues if i.path == path or i.path.startswith(path + ".")], [i.line("f") for i in issues]


@pytest.mark.parametrize("value", [LITERAL, 12345678, ["x", LITERAL], {"k": LITERAL}])
def test_wrongly_typed_secret_is_not_shown(value: Any) -> None:
    _, issues = validate(src(source=pg(password=value)))
    text = str(ConfigError(issues))
    assert "source.password" in text and LITERAL not in text and "12345678" not in text


LITERAL_CREDENTIALS = [
    ("url password with slash", src(source={"type": "postgres", "url": f"postgresql://u:pa/{LITERAL}@db/s"}),
     "source.url"),
    ("url password in query", src(source={"type": "postgres", "url": f"postgresql://u@db/s?password={LITERAL}"}),
     "source.url"),
    ("driver option password", src(source=pg(options={"sslpassword": LITERAL})), "source.options.sslpassword"),
    ("connection header", src(source=rest(headers={"Authorization": f"Bearer {LITERAL}"})),
     "source.headers.Authorization"),
    ("api key header", src(source=rest(headers={"X-API-Key": LITERAL})), "source.headers.X-API-Key"),
    ("resource header", src(source=rest(), tables=[{"name": "t", "path": "t", "headers": {"x-auth-token": LITERAL}}]),
     "tables[0].headers.x-auth-token"),
    ("query parameter", src(source=rest(), tables=[{"name": "t", "path": "t", "params": {"api_key": LITERAL}}]),
     "tables[0].params.api_key"),
    ("json body", src(source=rest(), tables=[{"name": "t", "path": "t", "method": "POST",
                                              "json": {"auth": {"password": LITERAL}}}]),
     "tables[0].json.auth.password"),
    ("base_url credentials", src(source=rest(base_url=f"https://u:{LITERAL}@api.example.com/")), "source.base_url"),
    ("base_url api key", src(source=rest(base_url=f"https://api.example.com/?apikey={LITERAL}")), "source.base_url"),
    ("token request data", src(source=rest(auth={"type": "oauth2_client_credentials", "access_token_url": "https://t",
                                                 "client_id": "c", "client_secret": "${env:S}",
                                                 "access_token_request_data": {"client_assertion_secret": LITERAL}})),
     "source.auth.access_token_request_data.client_assertion_secret"),
    ("bucket_url credentials", src(source=files(bucket_url=f"s3://key:{LITERAL}@bucket/in")), "source.bucket_url"),
]


@pytest.mark.parametrize(("config", "path"), [c[1:] for c in LITERAL_CREDENTIALS],
                         ids=[c[0] for c in LITERAL_CREDENTIALS])
def test_literal_credentials_outside_secret_fields_are_refused(config: dict[str, Any], path: str) -> None:
    model, issues = validate(config)
    assert model is None
    assert any(i.path == path and "literal" in i.message for i in issues), [i.line("f") for i in issues]
    assert LITERAL not in str(ConfigError(issues))
    with pytest.raises(ValidationError) as raised:
        parse_source_file(config)
    assert LITERAL not in str(raised.value)


def test_references_in_headers_params_and_urls_are_accepted() -> None:
    config = src(source=rest(headers={"Authorization": "Bearer ${secrets.a.token}"}), tables=[
        {"name": "t", "path": "t", "params": {"api_key": "${env:API_KEY}", "page_token": "x", "status": "open"},
         "headers": {"X-API-Key": "${secrets.a.key}"}}])
    assert validate(config) == (validate(config)[0], [])
    assert validate(src(source=pg(options={"sslkey": "/etc/ssl/key.pem", "sslmode": "require"})))[1] == []


def test_dates_in_rest_params_and_body_are_iso_text_and_read_the_same_twice() -> None:
    """YAML reads an unquoted 2024-01-01 as a date: in a query parameter or a JSON body it is kept
    as the text it is sent as, so the saved file reads back as the same config (found by the fuzz
    test: the date was saved quoted and came back a string)."""
    import datetime

    doc = copy.deepcopy(VALID_CONFIGS["rest_bearer_offset"])
    doc["tables"][0]["params"]["since"] = datetime.date(2000, 1, 1)
    doc["tables"][2]["json"]["after"] = [datetime.datetime(2024, 5, 1, 12, 30)]
    config, issues = validate_source_data(doc, DESTINATIONS)
    assert issues == [] and config.tables[0].params["since"] == "2000-01-01"
    assert config.tables[2].json_body["after"] == ["2024-05-01T12:30:00"]
    again, issues = validate_source_data(parse_yaml(dump_yaml(config))[0], DESTINATIONS)
    assert issues == [] and again == config
