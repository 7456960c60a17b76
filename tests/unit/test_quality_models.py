"""The check and reconcile settings as a market team writes them: shorthand forms, what is
refused (injection in a column name, custom_sql that writes) with the YAML path and the fix,
and load -> save -> load without loss."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ingestion_core.config.models.checks import CustomSqlCheck, NotNullCheck, ReconcileCheck, UniqueCheck
from ingestion_core.config.store import dump_yaml, parse_yaml, validate_source_data


def source(**table: Any) -> dict[str, Any]:
    return {"name": "shop", "owner": "market-de", "source": {"type": "sqlite", "path": "shop.sqlite"},
            "tables": [{"name": "orders", **table}]}


def validate(data: dict[str, Any]):
    config, issues = validate_source_data(data)
    return config, [(i.path, i.message) for i in issues]


VALID = [  # (table settings, what the first check or reconcile becomes)
    ({"checks": [{"not_null": "order_id"}]}, NotNullCheck(column="order_id")),
    ({"checks": [{"not_null": {"column": "Order ID", "severity": "warn", "scope": "table"}}]},
     NotNullCheck(column="Order ID", severity="warn", scope="table")),
    ({"checks": [{"unique": "id"}]}, UniqueCheck(columns=["id"])),
    ({"checks": [{"unique": ["id", "line no"]}]}, UniqueCheck(columns=["id", "line no"])),
    ({"checks": [{"unique": {"columns": "id", "scope": "load"}}]}, UniqueCheck(columns=["id"], scope="load")),
    ({"checks": [{"custom_sql": {"sql": "SELECT count(*) FROM {table}", "max_value": 0}}]},
     CustomSqlCheck(sql="SELECT count(*) FROM {table}", max_value=0)),
    ({"checks": [{"custom_sql": {"sql": "WITH x AS (SELECT * FROM {table}) SELECT * FROM x WHERE a < 0;"}}]},
     CustomSqlCheck(sql="WITH x AS (SELECT * FROM {table}) SELECT * FROM x WHERE a < 0;")),
    ({"reconcile": True}, ReconcileCheck()),
    ({"reconcile": {"tolerance": 10}}, ReconcileCheck(tolerance=10)),
    ({"reconcile": {"tolerance": "0.5%", "severity": "warn"}}, ReconcileCheck(tolerance="0.5%", severity="warn")),
]


@pytest.mark.parametrize(("table", "expected"), VALID)
def test_valid_forms(table: dict[str, Any], expected: Any) -> None:
    data = source(**table)
    before = copy.deepcopy(data)
    config, issues = validate(data)
    assert issues == []
    parsed = config.tables[0].reconcile if "reconcile" in table else config.tables[0].checks[0].spec
    assert parsed == expected
    assert data == before, "validation must not change the input"


INVALID = [  # (table settings, YAML path, words the message must hold)
    ({"checks": [{"not_null": 'id" OR 1=1 --'}]}, "tables[0].checks[0].not_null",
     ["is not a plain SQL identifier", "no quotes"]),
    ({"checks": [{"unique": ["id", "a; DROP TABLE orders"]}]}, "tables[0].checks[0].unique[1]",
     ["is not a plain SQL identifier"]),
    ({"checks": [{"regex": {"column": "e\"mail", "pattern": "x"}}]}, "tables[0].checks[0].regex.column",
     ["is not a plain SQL identifier"]),
    ({"checks": [{"custom_sql": {"sql": "DROP TABLE {table}"}}]}, "tables[0].checks[0].custom_sql.sql",
     ["custom_sql must be one read-only SELECT", "found DROP"]),
    ({"checks": [{"custom_sql": {"sql": "INSERT INTO {table} VALUES (1)"}}]}, "tables[0].checks[0].custom_sql.sql",
     ["found INSERT"]),
    ({"checks": [{"custom_sql": {"sql": "SELECT 1; UPDATE {table} SET a = 1"}}]},
     "tables[0].checks[0].custom_sql.sql", ["found 2 statements"]),
    ({"checks": [{"custom_sql": {"sql": "SELECT FROM WHERE"}}]}, "tables[0].checks[0].custom_sql.sql",
     ["is not a query the checks can read", "SELECT * FROM {table}"]),
    ({"checks": [{"custom_sql": {"sql": "SELECT 1", "returns": "number"}}]},
     "tables[0].checks[0].custom_sql.returns", ["neither min_value nor max_value"]),
    ({"checks": [{"custom_sql": {"sql": "SELECT 1", "returns": "failing_rows", "max_value": 1}}]},
     "tables[0].checks[0].custom_sql.returns", ["remove them or set returns: number"]),
    ({"checks": [{"custom_sql": {"sql": "SELECT 1", "scope": "load"}}]}, "tables[0].checks[0].custom_sql.scope",
     ["custom_sql takes no scope"]),
    ({"checks": [{"not_null": {"column": "a", "scope": "rows"}}]}, "tables[0].checks[0].not_null.scope",
     ["'rows' is not allowed", "table, load"]),
    ({"reconcile": False}, "tables[0].reconcile", ["remove the key"]),
    ({"reconcile": {"tolerance": -1}}, "tables[0].reconcile.tolerance", ["number of rows", "'0.5%'"]),
    ({"reconcile": {"tolerance": "half"}}, "tables[0].reconcile.tolerance", ["got half"]),
    ({"reconcile": {"scope": "load"}}, "tables[0].reconcile.scope", ["reconcile takes no scope"]),
    ({"reconcile": {"tolerence": 1}}, "tables[0].reconcile.tolerence", ["unknown key 'tolerence'", "tolerance"]),
]


@pytest.mark.parametrize(("table", "path", "words"), INVALID)
def test_invalid_forms_say_where_and_how_to_fix(table: dict[str, Any], path: str, words: list[str]) -> None:
    config, issues = validate(source(**table))
    assert config is None
    assert [p for p, _ in issues] == [path], issues
    for word in words:
        assert word in issues[0][1], issues[0][1]


def test_round_trip_keeps_the_short_forms() -> None:
    data = source(checks=[{"not_null": "id"}, {"not_null": {"column": "id", "scope": "table"}},
                          {"custom_sql": {"name": "negatives", "sql": "SELECT * FROM {table} WHERE a < 0"}}],
                  reconcile=True)
    first, _ = validate(data)
    text = dump_yaml(first)
    saved = parse_yaml(text)[0]["tables"][0]
    assert saved["reconcile"] is True
    assert saved["checks"][:2] == [{"not_null": "id"}, {"not_null": {"column": "id", "scope": "table"}}]
    second, issues = validate(parse_yaml(text)[0])
    assert issues == [] and second == first and dump_yaml(second) == text
    tolerant, _ = validate(source(reconcile={"tolerance": "1%"}))
    assert parse_yaml(dump_yaml(tolerant))[0]["tables"][0]["reconcile"] == {"tolerance": "1%"}


def test_tolerance_in_rows() -> None:
    assert ReconcileCheck(tolerance=5).allowed_difference(1000) == 5
    assert ReconcileCheck(tolerance="0.5%").allowed_difference(1000) == 5
    assert ReconcileCheck().allowed_difference(1000) == 0
