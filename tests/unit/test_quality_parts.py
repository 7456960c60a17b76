"""The pure parts of the checks: the custom_sql guard, schema-change comparison, how configured
values bind to landed column types and how values enter the run record."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from ingestion_core.common.sql_guard import read_only_problem
from ingestion_core.quality.checks import CheckError, as_utc, bind_value, check_label, json_value
from ingestion_core.quality.schema_changes import compare

READ_ONLY = [
    "SELECT * FROM {table} WHERE amount < 0",
    "select count(*) from {table};",
    "WITH late AS (SELECT * FROM {table} WHERE shipped_at > due_at) SELECT * FROM late",
    "SELECT a FROM {table} UNION ALL SELECT b FROM {table}",
    "SELECT 'a;b; DROP TABLE x' AS text_with_semicolons FROM {table}",
    "(SELECT 1)",
]
WRITES = [
    ("DROP TABLE {table}", "found DROP"),
    ("delete from {table} where 1=1", "found DELETE"),
    ("UPDATE {table} SET a = 1", "found UPDATE"),
    ("INSERT INTO {table} SELECT * FROM {table}", "found INSERT"),
    ("MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE", "found MERGE"),
    ("CREATE TABLE x AS SELECT * FROM {table}", "found CREATE"),
    ("ALTER TABLE {table} ADD COLUMN x INT", "found ALTER"),
    ("TRUNCATE {table}", "found TRUNCATE"),
    ("SELECT * INTO kept FROM {table}", "found SELECT ... INTO"),
    ("WITH d AS (DELETE FROM {table} RETURNING *) SELECT * FROM d", "found DELETE"),
    ("SELECT 1; DROP TABLE {table}", "found 2 statements"),
    ("COPY {table} TO '/tmp/x.csv'", "found COPY"),
    ("ATTACH 'other.duckdb' AS other", "found ATTACH"),
    ("SET enable_external_access = true", "found SET"),
    ("PRAGMA enable_profiling", "found PRAGMA"),
    ("INSTALL httpfs", "found INSTALL"),
    ("CALL dbgen(sf = 1)", "found CALL"),
    ("VACUUM", "found VACUUM"),
    ("GRANT SELECT ON t TO someone", "found GRANT"),
]


@pytest.mark.parametrize("sql", READ_ONLY)
def test_read_only_queries_pass(sql: str) -> None:
    assert read_only_problem(sql) is None


@pytest.mark.parametrize(("sql", "found"), WRITES)
def test_anything_else_is_refused_with_what_was_found(sql: str, found: str) -> None:
    problem = read_only_problem(sql)
    assert problem and found in problem


def previous(columns: dict[str, str], source_columns: list[str] | None = None) -> dict:
    return {"columns": [{"name": n, "type": t} for n, t in columns.items()], "source_columns": source_columns}


def events(before: dict, now: dict[str, str], declared: list[str] | None, variants: set[str] = frozenset()) -> list:
    return [(e["change"], e["column"], e["type"], e["previous_type"])
            for e in compare(before, [{"name": n, "type": t} for n, t in now.items()], declared, set(variants), "r1")]


def test_compare_added_removed_retyped() -> None:
    before = previous({"id": "bigint", "name": "text", "age": "bigint"}, ["id", "name", "age"])
    now = {"id": "bigint", "name": "text", "age": "bigint", "email": "text", "score": "double"}
    assert events(before, now, ["id", "name", "email", "score"]) == [
        ("added", "email", "text", None), ("added", "score", "double", None), ("removed", "age", None, "bigint")]
    assert events(before, {"id": "bigint", "name": "text(20)", "age": "bigint"}, None) == [
        ("retyped", "name", "text(20)", "text")]


def test_compare_variant_is_a_retype_and_removed_is_said_once() -> None:
    before = previous({"id": "bigint", "score": "bigint"})
    assert events(before, {"id": "bigint", "score": "bigint", "score__v_text": "text"}, None, {"score__v_text"}) == [
        ("retyped", "score", "text", "bigint")]
    gone = previous({"id": "bigint", "age": "bigint"}, ["id"])  # the previous run already said age was removed
    assert events(gone, {"id": "bigint", "age": "bigint"}, ["id"]) == []
    assert events(gone, {"id": "bigint", "age": "bigint"}, ["id", "age"]) == [("added", "age", "bigint", None)]
    old_record = previous({"id": "bigint", "age": "bigint"})  # no source_columns: the landed ones stand in
    assert events(old_record, {"id": "bigint", "age": "bigint"}, ["id"]) == [("removed", "age", None, "bigint")]


BINDINGS = [  # (value, landed column, bound value)
    ("10", {"data_type": "bigint"}, 10),
    (1.5, {"data_type": "bigint"}, Decimal("1.5")),
    (3, {"data_type": "double"}, 3.0),
    ("1.10", {"data_type": "decimal"}, Decimal("1.10")),
    (True, {"data_type": "text"}, "true"),
    (7, {"data_type": "text"}, "7"),
    ("false", {"data_type": "bool"}, False),
    ("2024-01-31", {"data_type": "date"}, dt.date(2024, 1, 31)),
    ("2024-01-31", {"data_type": "timestamp"}, dt.datetime(2024, 1, 31, tzinfo=dt.UTC)),
    ("2024-01-31T10:00:00+02:00", {"data_type": "timestamp", "timezone": False}, dt.datetime(2024, 1, 31, 8)),
]


@pytest.mark.parametrize(("value", "column", "bound"), BINDINGS)
def test_values_bind_as_the_landed_type(value, column, bound) -> None:
    assert bind_value(value, column, "c") == bound


@pytest.mark.parametrize(("value", "column"), [("open", {"data_type": "bigint"}), ("x", {"data_type": "date"}),
                                               ("maybe", {"data_type": "bool"}), (1, {"data_type": "json"})])
def test_values_that_do_not_fit_name_the_column(value, column) -> None:
    with pytest.raises(CheckError, match=r"column c|cannot be compared"):
        bind_value(value, column, "c")


def test_times_and_record_values() -> None:
    assert as_utc("2024-01-01T00:00:00", "c") == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert as_utc(dt.date(2024, 1, 1), "c") == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    with pytest.raises(CheckError, match="not a date or timestamp"):
        as_utc("soon", "c")
    assert json_value(Decimal("1.10")) == "1.10"
    assert json_value(b"\x00\x01") == "<2 bytes: 0001>"
    assert json_value("x" * 500) == "x" * 200
    assert json_value({"at": dt.date(2024, 1, 1)}) == {"at": "2024-01-01"}


def test_check_labels() -> None:
    from ingestion_core.config.models.checks import Check

    labels = [check_label(Check.model_validate(c).spec) for c in (
        {"not_null": "id"}, {"unique": ["a", "b"]}, {"row_count": {"min": 1}},
        {"custom_sql": {"sql": "SELECT 1"}}, {"custom_sql": {"name": "late", "sql": "SELECT 1"}})]
    assert labels == ["not_null(id)", "unique(a, b)", "row_count", "custom_sql", "late"]
