"""The SQL family (postgres, mysql / mariadb, mssql, azure_sql, oracle, sqlite) through dlt's
``sql_table``, one resource per table.

Types: before a row is read, :func:`ingestion_core.typemap.fidelity.plan_table` decides how each
column lands (exact, a documented lossless conversion done in the SELECT, or refused with the
choices); the plan's SELECT and column hints are what every backend reads and lands.

Backend: ``auto`` reads with connectorx where it keeps every column exact without help (measured
2.6x faster than pyarrow on PostgreSQL, see BASELINES.md) and with pyarrow otherwise; a table
that connectorx cannot read is read again with pyarrow (see ``runner``). ``sqlalchemy`` and
``pandas`` read through SQLAlchemy like pyarrow and hand Arrow tables to dlt: dlt's row-by-row
path writes JSON files that turn NaN and +/-Infinity into NULL and lose empty binary values.
So a table never switches between the column layouts of Arrow and the sqlalchemy backend.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ingestion_core.common import settings
from ingestion_core.config.models.source_file import SourceFileBase
from ingestion_core.config.models.tables import FilterCondition, SqlTable
from ingestion_core.config.secrets import is_reference, register_secret, resolve_value
from ingestion_core.engine.errors import HintedError, MissingDriverError
from ingestion_core.engine.sources import (
    BuildContext,
    ConnectionReport,
    lookback_lag,
    reads_incrementally,
    register_source,
)
from ingestion_core.engine.sources.sql_session import with_session_settings
from ingestion_core.typemap.adapters import table_type_mapping, type_adapter_for
from ingestion_core.typemap.fidelity import TablePlan, apply_plan_hints, loader_class, overrides_for, plan_table

LOGGER = logging.getLogger("ingestion_core.engine.sources.sql")

DRIVERS = {
    "postgres": ("postgresql+psycopg2", "psycopg2", "pip install psycopg2-binary"),
    "mysql": ("mysql+pymysql", "pymysql", "pip install pymysql"),
    "mssql": ("mssql+pyodbc", "pyodbc", "apt-get install unixodbc and Microsoft's 'ODBC Driver 18 for SQL Server'"),
    "azure_sql": ("mssql+pyodbc", "pyodbc", "apt-get install unixodbc and Microsoft's 'ODBC Driver 18 for SQL Server'"),
    "oracle": ("oracle+oracledb", "oracledb", "pip install oracledb"),
    "sqlite": ("sqlite", "sqlite3", "a Python built with sqlite3"),
}
# Sources connectorx reads for us; what it would break (BASELINES.md) is read through the type
# plan's casts, or, for decimals it rounds, makes ``auto`` pick pyarrow.
CONNECTORX_TYPES = {"postgres", "mysql"}
ARROW_LOADER = {"auto": "pyarrow", "pyarrow": "pyarrow", "sqlalchemy": "pyarrow", "pandas": "pyarrow",
                "connectorx": "connectorx"}


def reader_options(backend: str, chunk_size: int) -> dict[str, Any] | None:
    """What the dlt loader of ``backend`` is asked for (``sql_table``'s ``backend_kwargs``).

    connectorx hands dlt the whole result as one Arrow table unless asked for a stream: a 20M-row
    table then held 2.9 GB at once (bench/README.md). As a stream of ``chunk_size``-row record
    batches, each batch is cast by the type plan and written out before the next is read."""
    if backend == "connectorx":
        return {"return_type": "arrow_stream", "batch_size": chunk_size}
    return None


def require_driver(source_type: str) -> None:
    _, module, install = DRIVERS[source_type]
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise MissingDriverError(
            f"the {source_type} driver '{module}' cannot be loaded ({exc}); install it: {install}"
        ) from None


def connection_url(config: SourceFileBase) -> sa.URL:
    """The SQLAlchemy URL with secrets resolved (never log or store it)."""
    raw = config.source.model_dump(exclude_none=True)
    kind = config.source_type
    if kind == "sqlite":
        return sqlite_url(raw["path"])
    if raw.get("url"):
        return _resolved_url(raw["url"])
    return _BUILDERS.get(kind, _server_url)(config, resolve_value(raw))


def sqlite_url(path: str) -> sa.URL:
    """The SQLite file at ``path`` (relative to the project folder), opened read-only.

    The loader only reads: SQLite's URI mode ``mode=ro`` never creates or changes the file, so a
    mistyped path is not turned into an empty database that later "has no tables". A missing file
    is said at once, with the path it was looked for at.

    Example::

        sqlite_url("demo/data/shop.sqlite").database  # 'file:///<project>/demo/data/shop.sqlite'
    """
    file = settings.resolve_local_path(path)
    if not file.is_file():
        raise HintedError(f"SQLite file not found: {file}{_relative_to(path)}",
                          "check source.path: give the path of an existing SQLite file, absolute or relative "
                          f"to the project folder {settings.project_root()} (the folder above configs/)")
    return sa.URL.create("sqlite", database=file.as_uri(), query={"mode": "ro", "uri": "true"})


def _relative_to(path: str) -> str:
    if Path(path).expanduser().is_absolute():
        return ""
    return f" (source.path '{path}' is relative to the project folder {settings.project_root()})"


def _resolved_url(text: str) -> sa.URL:
    """Parse first, then resolve each part: a password with '@' or '/' must not break the URL."""
    if is_reference(text):
        url = sa.make_url(resolve_value(text))
    else:
        url = sa.make_url(text)
        url = url.set(username=resolve_value(url.username), password=resolve_value(url.password),
                      host=resolve_value(url.host), database=resolve_value(url.database),
                      query={k: resolve_value(v) for k, v in url.query.items()})
    if url.password:
        register_secret(str(url.password))
    return url


def _server_url(config: SourceFileBase, source: dict[str, Any]) -> sa.URL:
    drivername = DRIVERS[config.source_type][0]
    query = dict(source.get("options") or {})
    timeout_key = {"postgres": "connect_timeout", "mysql": "connect_timeout"}.get(config.source_type)
    if timeout_key:
        query.setdefault(timeout_key, str(source.get("connect_timeout_seconds", 15)))
    return sa.URL.create(
        drivername, username=source.get("username"), password=source.get("password"),
        host=source.get("host"), port=config.source.effective_port(),  # type: ignore[attr-defined]
        database=source.get("database"), query=query,
    )


def _mssql_url(config: SourceFileBase, source: dict[str, Any]) -> sa.URL:
    query = {
        "driver": source.get("driver", "ODBC Driver 18 for SQL Server"),
        "Encrypt": "yes" if source.get("encrypt", True) else "no",
        "TrustServerCertificate": "yes" if source.get("trust_server_certificate") else "no",
        "LoginTimeout": str(source.get("connect_timeout_seconds", 15)),
        **(source.get("options") or {}),
    }
    auth = source.get("authentication", "sql_password")
    username, password = source.get("username"), source.get("password")
    if auth == "service_principal":
        query["Authentication"] = "ActiveDirectoryServicePrincipal"
        username, password = source.get("client_id"), source.get("client_secret")
    elif auth == "managed_identity":
        query["Authentication"] = "ActiveDirectoryMsi"
    if source.get("trusted_connection"):
        query["Trusted_Connection"] = "yes"
        username = password = None
    return sa.URL.create("mssql+pyodbc", username=username, password=password, host=source.get("host"),
                         port=config.source.effective_port(), database=source.get("database"),  # type: ignore[attr-defined]
                         query=query)


def _oracle_url(config: SourceFileBase, source: dict[str, Any]) -> sa.URL:
    query = dict(source.get("options") or {})
    database = None
    if source.get("service_name"):
        query["service_name"] = source["service_name"]
    else:
        database = source.get("sid")
    return sa.URL.create("oracle+oracledb", username=source.get("username"), password=source.get("password"),
                         host=source.get("host"), port=config.source.effective_port(),  # type: ignore[attr-defined]
                         database=database, query=query)


_BUILDERS: dict[str, Callable[[SourceFileBase, dict[str, Any]], sa.URL]] = {
    "mssql": _mssql_url, "azure_sql": _mssql_url, "oracle": _oracle_url,
}


def create_engine(config: SourceFileBase) -> sa.Engine:
    """The engine every read, discovery and connection test uses: its URL carries the session
    settings the readers rely on (UTC, full float precision, ISO dates; see ``sql_session``)."""
    require_driver(config.source_type)
    url = with_session_settings(connection_url(config))
    if config.source_type == "oracle" and config.source.thick_mode:  # type: ignore[attr-defined]
        import oracledb

        oracledb.init_oracle_client()
    return sa.create_engine(url, pool_pre_ping=True)


# --- backend choice ------------------------------------------------------------------------

def reflect_table(engine: sa.Engine, table: SqlTable) -> sa.Table:
    """The table, reflected once into a MetaData that ``sql_table`` then reuses."""
    with warnings.catch_warnings():  # "Did not recognize type 'xml'": the type plan names and handles it
        warnings.filterwarnings("ignore", "Did not recognize type", sa.exc.SAWarning)
        return sa.Table(table.source_table or table.name, sa.MetaData(schema=table.schema_), autoload_with=engine)


def loaded_columns(reflected: sa.Table, table: SqlTable) -> list[str]:
    names = [c.name for c in reflected.columns]
    if table.include_columns:
        names = [n for n in names if n in table.include_columns]
    return [n for n in names if n not in table.exclude_columns]


def plan_sql_table(engine: sa.Engine, reflected: sa.Table, config: SourceFileBase, table: SqlTable,
                   destination_type: str, cursor: str | None = None) -> TablePlan:
    """How each loaded column of the table lands (see :mod:`ingestion_core.typemap.fidelity`): the
    table's ``column_types`` first, then the destination's type adapters (with the table's
    ``type_mapping`` on top), then the product's rules."""
    try:
        adapter = type_adapter_for(config.source_type, destination_type, table_type_mapping(table))
    except ValueError as exc:  # the model checks type_mapping; a rule removed since is said here
        raise ValueError(f"table {table.name}: type_mapping: {exc}") from None
    return plan_table(engine, reflected, config.source_type, columns=loaded_columns(reflected, table),
                      overrides=overrides_for(table), cursor=cursor, adapter=adapter)


def planned_columns(config: SourceFileBase, table: SqlTable, destination_type: str) -> list[tuple[str, dict[str, Any]]]:
    """(name in the source, dlt type hints it lands with) for each loaded column; ``{}`` for a
    refused one. What the run will land, e.g. for schema-change events before a load."""
    engine = create_engine(config)
    try:
        reflected = reflect_table(engine, table)
        plan = plan_sql_table(engine, reflected, config, table, destination_type)
    finally:
        engine.dispose()
    return landed_columns(plan)


def landed_columns(plan: TablePlan) -> list[tuple[str, dict[str, Any]]]:
    return [(name, dict(column.landed)) for name, column in plan.columns.items()]


def choose_backend(source_type: str, requested: str, plan: TablePlan | None) -> str:
    """The dlt loader a table is read with: ``connectorx`` or ``pyarrow``. ``auto``: connectorx
    when it reads every planned column exactly without an Arrow fix-up, else pyarrow; pyarrow also
    when connectorx cannot read a column exactly at all (a MySQL TIMESTAMP on a server whose time zone
    is not UTC: connectorx cannot set the session's)."""
    if requested not in ("auto", "connectorx"):
        return ARROW_LOADER[requested]
    blocker = plan.connectorx_blocker() if plan else None
    if requested == "connectorx":
        if blocker and source_type in CONNECTORX_TYPES:
            LOGGER.warning("%s: read with pyarrow, not connectorx: %s", plan.table, blocker)  # type: ignore[union-attr]
        return "connectorx" if source_type in CONNECTORX_TYPES and not blocker else "pyarrow"
    if source_type not in CONNECTORX_TYPES or plan is None or plan.needs_arrow_fixup() or blocker:
        return "pyarrow"
    return "connectorx"


# --- filters -------------------------------------------------------------------------------

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "=": lambda c, v: c == v, "!=": lambda c, v: c != v, "<": lambda c, v: c < v,
    "<=": lambda c, v: c <= v, ">": lambda c, v: c > v, ">=": lambda c, v: c >= v,
    "in": lambda c, v: c.in_(v), "not_in": lambda c, v: c.not_in(v),
    "is_null": lambda c, v: c.is_(None), "not_null": lambda c, v: c.is_not(None),
}


def filter_adapter(conditions: list[FilterCondition]) -> Callable[..., Any] | None:
    """A ``query_adapter_callback`` adding the row filter; values are bound parameters."""
    if not conditions:
        return None

    def adapt(query: Any, table: sa.Table, *_: Any) -> Any:
        clauses = []
        for condition in conditions:
            if condition.column not in table.c:
                raise KeyError(
                    f"filter column '{condition.column}' is not a column of {table.name}; "
                    f"its columns are {', '.join(table.c.keys())}"
                )
            clauses.append(_OPS[condition.op](table.c[condition.column], condition.value))
        return query.where(sa.and_(*clauses))

    return adapt


# --- incremental ---------------------------------------------------------------------------

def coerce_initial_value(value: Any, column: sa.Column | None) -> Any:
    """'2024-01-01' from YAML becomes a date / timestamp when the cursor column is one."""
    if value is None or column is None or not isinstance(value, str):
        return value
    import pendulum

    try:
        if isinstance(column.type, sa.DateTime):
            parsed = pendulum.parse(value)
            return parsed if column.type.timezone else parsed.naive()
        if isinstance(column.type, sa.Date):
            return pendulum.parse(value).date()
        if isinstance(column.type, sa.Integer):
            return int(value)
    except (ValueError, TypeError, pendulum.parsing.exceptions.ParserError):
        raise ValueError(
            f"initial_value '{value}' does not fit the cursor column {column.name} "
            f"({column.type}); write a value of that type"
        ) from None
    return value


def python_type(column: sa.Column) -> type | None:
    """The Python type of a column's values, None when SQLAlchemy does not say."""
    try:
        return column.type.python_type
    except NotImplementedError:
        return None


def cursor_path(column: str) -> str:
    """The column as dlt's incremental ``cursor_path`` (a JSON path): a plain name as is (the
    state key of existing pipelines), any other name quoted (``"order date"``, ``"2nd$"``), which
    dlt reads as that one column."""
    from dlt.common.jsonpath import extract_simple_field_name

    try:
        if extract_simple_field_name(column) == column:
            return column
    except Exception:  # jsonpath-ng's parser and lexer errors: not a bare name
        pass
    return f'"{column}"'


# --- the source kind -----------------------------------------------------------------------

@register_source("postgres", "mysql", "mssql", "azure_sql", "oracle", "sqlite")
class SqlSource:
    def resource(self, ctx: BuildContext) -> Any:
        import dlt
        from dlt.sources.sql_database import sql_table

        table: SqlTable = ctx.table  # type: ignore[assignment]
        engine = create_engine(ctx.config)
        reflected = reflect_table(engine, table)
        plan = plan_sql_table(engine, reflected, ctx.config, table, ctx.destination_type,
                              cursor=table.cursor if reads_incrementally(ctx) else None)
        plan.raise_if_refused()
        backend = ctx.backend_override or choose_backend(ctx.config.source_type, ctx.settings.backend, plan)
        if ctx.settings.backend in ("sqlalchemy", "pandas") and not ctx.backend_override:
            LOGGER.info("%s: backend %s reads through SQLAlchemy into Arrow (as pyarrow), which keeps NaN, "
                        "+/-Infinity and empty binary values", table.name, ctx.settings.backend)
        incremental = None
        if reads_incrementally(ctx):
            if table.cursor not in reflected.c:
                raise KeyError(
                    f"cursor column '{table.cursor}' is not a column of {reflected.name}; "
                    f"its columns are {', '.join(reflected.c.keys())}"
                )
            column = reflected.c[table.cursor]
            incremental = dlt.sources.incremental(
                cursor_path(table.cursor), initial_value=coerce_initial_value(table.initial_value, column),
                lag=lookback_lag(table, python_type(column)),
            )
        chunk_size = ctx.limit or ctx.settings.chunk_size
        resource = sql_table(
            credentials=engine, metadata=reflected.metadata, table=reflected.name,
            chunk_size=chunk_size, backend=backend, backend_kwargs=reader_options(backend, chunk_size),
            reflection_level="full_with_precision", incremental=incremental,
            included_columns=table.include_columns or None, excluded_columns=table.exclude_columns or None,
            query_adapter_callback=filter_adapter(table.filter), table_loader_class=loader_class(plan, backend),
            type_adapter_callback=lambda _: None,  # column types come from the plan (apply_plan_hints)
        )
        apply_plan_hints(resource, plan)
        resource.backend = backend  # type: ignore[attr-defined]  (read back into the run record)
        resource.type_decisions = plan.records()  # type: ignore[attr-defined]
        # what the load reads, for the after-load hooks (schema changes): no second reflection
        resource.planned_columns = landed_columns(plan)  # type: ignore[attr-defined]
        return resource

    def test_connection(self, config: SourceFileBase) -> ConnectionReport:
        engine = create_engine(config)
        try:
            with engine.connect() as connection:
                version = connection.execute(sa.text(_VERSION_SQL.get(config.source_type, "SELECT 1"))).scalar()
        finally:
            engine.dispose()
        return ConnectionReport(True, "connected", details={"server_version": str(version)[:200]})


_VERSION_SQL = {
    "postgres": "SELECT version()", "mysql": "SELECT version()", "sqlite": "SELECT sqlite_version()",
    "mssql": "SELECT @@VERSION", "azure_sql": "SELECT @@VERSION", "oracle": "SELECT banner FROM v$version",
}
