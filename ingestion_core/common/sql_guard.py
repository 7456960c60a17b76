"""The guard in front of a custom_sql check: one read-only query on a connection that cannot
write, or a clear refusal.

First wall: the query is parsed (sqlglot, which dlt already uses) before it goes anywhere near
a connection; a statement that writes, changes settings or runs a command is refused, wherever
it hides (a ``DELETE ... RETURNING`` in a CTE, ``SELECT ... INTO``). Second wall: the query runs
on a read-only connection (:func:`read_only_executor`), chosen by destination type.

Example::

    >>> read_only_problem("SELECT * FROM {table} WHERE amount < 0") is None
    True
    >>> read_only_problem("DELETE FROM {table}")
    'custom_sql must be one read-only SELECT; found DELETE. ...'
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

TABLE_PLACEHOLDER = "{table}"
_PARSE_NAME = "__checked_table__"  # what {table} becomes while parsing
DIALECTS = ("duckdb", "databricks")  # the destinations checks run on; either may parse a query


def _forbidden() -> tuple[type, ...]:
    from sqlglot import exp

    names = ("Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "Command", "Copy", "Set",
             "Pragma", "Attach", "Detach", "Use", "Transaction", "Commit", "Rollback", "Into", "Describe",
             "Show", "Grant", "Revoke", "Analyze", "Export", "Install", "Load", "Cache", "Uncache", "Refresh",
             "TruncateTable", "LoadData", "Kill", "Declare")
    return tuple(getattr(exp, n) for n in names if isinstance(getattr(exp, n, None), type))


def read_only_problem(sql: str, dialects: Iterable[str] = DIALECTS) -> str | None:
    """Why ``sql`` is not one read-only query (a message naming what was found), or None."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    text = sql.replace(TABLE_PLACEHOLDER, _PARSE_NAME).strip().rstrip(";").strip()
    errors: list[str] = []
    logger = logging.getLogger("sqlglot")
    level = logger.level
    logger.setLevel(logging.ERROR)  # "falling back to parsing as a Command" is our business, not the log's
    try:
        for dialect in dialects:
            try:
                statements = [s for s in sqlglot.parse(text, read=dialect) if s is not None]
            except SqlglotError as exc:
                errors.append(re.sub(r"<Token [^>]*text: ([^,]*),[^>]*>", r"'\1'", str(exc).splitlines()[0]))
                continue
            return _judge(statements, exp)
    finally:
        logger.setLevel(level)
    return (f"custom_sql is not a query the checks can read ({errors[0] if errors else 'empty'}); write one "
            "SELECT, e.g. SELECT * FROM {table} WHERE amount < 0")


def _judge(statements: list, exp: Any) -> str | None:
    if len(statements) != 1:
        return (f"custom_sql must be one read-only SELECT; found {len(statements)} statements. Remove the "
                "extra statements (a ';' separates them)")
    root = statements[0]
    for node in root.walk():
        node = node[0] if isinstance(node, tuple) else node  # older sqlglot yields (node, parent, key)
        if isinstance(node, _forbidden()):
            return (f"custom_sql must be one read-only SELECT; found {_describe(node)}. Checks only read: "
                    "write a SELECT that returns the failing rows or one number")
    if not isinstance(root, exp.Query):
        return (f"custom_sql must be one read-only SELECT; found {_describe(root)}. Write a SELECT that "
                "returns the failing rows or one number")
    return None


def _describe(node: Any) -> str:
    from sqlglot import exp

    if isinstance(node, exp.Into):
        return "SELECT ... INTO (it creates a table)"
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    return node.key.upper().replace("TRUNCATETABLE", "TRUNCATE")


# --- the read-only connections ---------------------------------------------------------------

Execute = Callable[[str], tuple[list[str], list[tuple]]]


@contextlib.contextmanager
def read_only_executor(plan: Any, pipeline: Any) -> Iterator[Execute]:
    """Runs queries on a connection that cannot write, by destination type: a read-only DuckDB
    connection without file access; for Parquet / Delta files dlt's DuckDB views with file
    access narrowed to the dataset; elsewhere (Databricks) a transaction that is rolled back.
    Databricks SQL commits each statement on its own, so there :func:`read_only_problem` is
    the wall that counts."""
    opener = READ_ONLY_OPENERS.get(plan.destination.type, _rolled_back)
    with opener(plan, pipeline) as execute:
        yield execute


def _fetch(cursor: Any) -> tuple[list[str], list[tuple]]:
    return [d[0] for d in cursor.description or []], list(cursor.fetchall())


@contextlib.contextmanager
def _duckdb_read_only(plan: Any, pipeline: Any) -> Iterator[Execute]:
    import duckdb

    # lock_configuration: the query cannot turn file access back on
    config = {"enable_external_access": False, "lock_configuration": True}
    with duckdb.connect(plan.destination.location, read_only=True, config=config) as connection:
        yield lambda sql: _fetch(connection.execute(sql))


@contextlib.contextmanager
def _files_read_only(plan: Any, pipeline: Any) -> Iterator[Execute]:
    """dlt reads Parquet / Delta tables through views in an in-memory DuckDB: the views are made
    first, then file access is narrowed to the dataset's folder and locked."""
    with pipeline.sql_client() as client:
        _lock_to_dataset(client)
        yield lambda sql: _fetch(client.native_connection.execute(sql))


def _lock_to_dataset(client: Any) -> None:
    for name in client.schema.data_table_names():
        with contextlib.suppress(Exception):  # a table without files yet has no view
            client.execute_sql(f"SELECT * FROM {client.make_qualified_table_name(name)} LIMIT 0")
    connection = client.native_connection
    connection.execute("SET allowed_directories = ?", [[client.remote_client.dataset_path.rstrip("/") + "/"]])
    connection.execute("SET enable_external_access = false")
    connection.execute("SET lock_configuration = true")


class _RollBack(Exception):
    """Leaves a transaction through its error path, so that the client rolls it back."""


@contextlib.contextmanager
def _rolled_back(plan: Any, pipeline: Any) -> Iterator[Execute]:
    def execute(sql: str) -> tuple[list[str], list[tuple]]:
        with client.execute_query(sql) as cursor:
            return _fetch(cursor)

    with pipeline.sql_client() as client:
        try:
            with client.begin_transaction():
                yield execute
                raise _RollBack
        except _RollBack:
            pass


READ_ONLY_OPENERS: dict[str, Callable[[Any, Any], Any]] = {
    "duckdb": _duckdb_read_only, "filesystem": _files_read_only,
}
