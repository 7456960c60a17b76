"""What a source holds, for the onboarding forms: schemas, tables and columns of a database
(with row estimates, declared primary keys and cursor candidates), or the files matching a glob.

Example::

    tables = discover_tables(config, schema="public")
    [t.name for t in tables], tables[0].cursor_candidates
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from ingestion_core.config.models.source_file import SourceFileBase

# cursor candidates first: columns that grow with every change
_CURSOR_TYPES = (sa.DateTime, sa.Date, sa.Integer, sa.Numeric)


@dataclass
class ColumnInfo:
    name: str
    type: str
    nullable: bool
    primary_key: bool = False


@dataclass
class TableInfo:
    schema: str | None
    name: str
    columns: list[ColumnInfo] = field(default_factory=list)
    row_estimate: int | None = None

    @property
    def primary_key(self) -> list[str]:
        return [c.name for c in self.columns if c.primary_key]

    @property
    def cursor_candidates(self) -> list[str]:
        """Timestamp columns first, then numeric ones; names like updated_at lead within each."""
        def rank(column: ColumnInfo) -> tuple[int, int]:
            kind = 0 if "TIMESTAMP" in column.type or "DATE" in column.type else 1
            named = 0 if any(w in column.name.lower() for w in ("updated", "modified", "changed")) else 1
            return kind, named
        numeric_or_time = [c for c in self.columns if _is_cursor_type(c.type)]
        return [c.name for c in sorted(numeric_or_time, key=rank)]


@dataclass
class FileInfo:
    path: str
    size: int
    modified: datetime | None


def _is_cursor_type(type_text: str) -> bool:
    text = type_text.upper()
    return any(word in text for word in ("TIMESTAMP", "DATE", "INT", "NUMERIC", "DECIMAL", "SERIAL"))


@dataclass(frozen=True)
class _Connection:
    """Enough of a source file for the connection code: the forms discover before tables exist."""

    source: Any

    @property
    def source_type(self) -> str:
        return self.source.type


def _as_config(config_or_source: Any) -> Any:
    return config_or_source if isinstance(config_or_source, SourceFileBase) else _Connection(config_or_source)


def list_schemas(config: SourceFileBase | Any) -> list[str]:
    """Schemas of a database source (a whole source file, or only its ``source:`` model)."""
    from ingestion_core.engine.sources.sql import create_engine

    engine = create_engine(_as_config(config))
    try:
        return sa.inspect(engine).get_schema_names()
    finally:
        engine.dispose()


def table_names(config: SourceFileBase | Any, schema: str | None = None) -> list[str]:
    """Names of the tables and views in one schema, without their columns (a quick check)."""
    from ingestion_core.engine.sources.sql import create_engine

    engine = create_engine(_as_config(config))
    try:
        inspector = sa.inspect(engine)
        return sorted(set(inspector.get_table_names(schema=schema) + inspector.get_view_names(schema=schema)))
    finally:
        engine.dispose()


def discover_tables(config: SourceFileBase | Any, schema: str | None = None,
                    with_estimates: bool = True) -> list[TableInfo]:
    """Tables and views of a database source, with columns, keys and row estimates."""
    from ingestion_core.engine.sources.sql import create_engine

    config = _as_config(config)
    engine = create_engine(config)
    try:
        inspector = sa.inspect(engine)
        names = inspector.get_table_names(schema=schema) + inspector.get_view_names(schema=schema)
        tables = []
        for name in sorted(set(names)):
            keys = set(inspector.get_pk_constraint(name, schema=schema).get("constrained_columns") or [])
            columns = [ColumnInfo(c["name"], str(c["type"]), bool(c.get("nullable", True)), c["name"] in keys)
                       for c in inspector.get_columns(name, schema=schema)]
            tables.append(TableInfo(schema, name, columns))
        if with_estimates:
            _add_estimates(engine, config.source_type, schema, tables)
        return tables
    finally:
        engine.dispose()


def _add_estimates(engine: sa.Engine, kind: str, schema: str | None, tables: list[TableInfo]) -> None:
    """Cheap row estimates from the catalog where the database keeps them; exact counts for SQLite."""
    with engine.connect() as connection:
        for table in tables:
            try:
                table.row_estimate = _estimate(connection, kind, schema, table.name)
            except sa.exc.SQLAlchemyError:
                connection.rollback()


def _estimate(connection: sa.Connection, kind: str, schema: str | None, name: str) -> int | None:
    if kind == "postgres":
        value = connection.execute(
            sa.text("SELECT reltuples::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relname = :name AND n.nspname = coalesce(:schema, current_schema())"),
            {"name": name, "schema": schema}).scalar()
        return None if value is None or value < 0 else int(value)
    if kind == "mysql":
        value = connection.execute(
            sa.text("SELECT table_rows FROM information_schema.tables WHERE table_name = :name "
                    "AND table_schema = coalesce(:schema, database())"), {"name": name, "schema": schema}).scalar()
        return None if value is None else int(value)
    if kind == "sqlite":
        table = sa.table(name, schema=schema)
        return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0)
    return None


def list_files(config: SourceFileBase | Any, glob: str, limit: int = 200) -> list[FileInfo]:
    """Files of a filesystem source matching a glob, newest first, with size and date."""
    from dlt.sources.filesystem import filesystem

    from ingestion_core.engine.sources.files import store_access
    from ingestion_core.storage.object_stores import bucket_url

    source: Any = _as_config(config).source
    credentials = store_access(source.bucket_url, source.credentials)  # off: the machine's own, as the run
    files = filesystem(bucket_url=bucket_url(source.bucket_url), file_glob=glob,
                       **({"credentials": credentials} if credentials is not None else {}))
    found: list[FileInfo] = []
    for page in files:
        for item in page if isinstance(page, list) else [page]:
            modified = item.get("modification_date")
            found.append(FileInfo(item["relative_path"], int(item.get("size_in_bytes") or 0),
                                  modified.astimezone(UTC) if modified else None))
            if len(found) >= limit:
                break
        if len(found) >= limit:
            break
    return sorted(found, key=lambda f: f.modified or datetime.min.replace(tzinfo=UTC), reverse=True)
