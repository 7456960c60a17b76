"""A table's column_types (how chosen columns land) and type_mapping (its Databricks type rules) in
YAML: bad values are refused at their YAML path with the column, the value, the valid choices and
the fix; good ones are written the canonical way and survive load -> save -> load."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ingestion_core.config.schema import source_file_schema
from ingestion_core.config.store import dump_yaml, parse_yaml, validate_source_data

CHOICES = "text, or decimal(p,s) with 1 <= p <= 38 and 0 <= s <= p"


def source(**table: Any) -> dict[str, Any]:
    return {"name": "sales_de", "owner": "market-de",
            "source": {"type": "oracle", "host": "ora", "service_name": "ORCL", "username": "fin",
                       "password": "${secrets.fin.password}"},
            "tables": [{"name": "orders", **table}]}


INVALID = [
    ("not a type", source(column_types={"amount": "double"}), "tables[0].column_types.amount",
     ["column amount has 'double', which is not a column type", CHOICES, "remove amount from column_types"]),
    ("decimal too wide", source(column_types={"amount": "decimal(39,2)"}), "tables[0].column_types.amount",
     ["'decimal(39,2)'", "decimal needs 1 <= p <= 38 and s <= p", CHOICES]),
    ("scale above precision", source(column_types={"amount": "decimal(10,11)"}), "tables[0].column_types.amount",
     ["'decimal(10,11)'", CHOICES]),
    ("decimal without scale", source(column_types={"amount": "decimal(10)"}), "tables[0].column_types.amount",
     ["'decimal(10)'", CHOICES]),
    ("empty", source(column_types={"amount": ""}), "tables[0].column_types.amount", ["''", CHOICES]),
    ("not text", source(column_types={"amount": 38}), "tables[0].column_types.amount", ["must be text", "38"]),
    ("a list", source(column_types=["amount"]), "tables[0].column_types", ["must be a mapping"]),
    ("bad column name", source(column_types={"a;b": "text"}), "tables[0].column_types.a;b",
     ["'a;b' is not a plain SQL identifier"]),
    ("excluded column", source(exclude_columns=["amount"], column_types={"amount": "text"}),
     "tables[0].column_types.amount", ["column_types names column amount, which is in exclude_columns",
                                       "remove it from column_types or load the column"]),
    ("column not included", source(include_columns=["id"], column_types={"amount": "text"}),
     "tables[0].column_types.amount", ["which is not in include_columns"]),
    ("unknown rule", source(type_mapping={"oracle_numbr": "bigint"}), "tables[0].type_mapping",
     ["no type rule 'oracle_numbr'", "the rules are oracle_number, oracle_number_with_precision",
      "remove oracle_numbr from type_mapping"]),
    ("unknown choice", source(type_mapping={"oracle_number": "float"}), "tables[0].type_mapping.oracle_number",
     ["type rule oracle_number has no choice 'float'", "choose one of double, bigint, decimal, string"]),
]


@pytest.mark.parametrize(("config", "path", "fragments"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_bad_choices_name_the_path_the_value_the_choices_and_the_fix(config: dict[str, Any], path: str,
                                                                     fragments: list[str]) -> None:
    before = copy.deepcopy(config)
    model, issues = validate_source_data(config)
    assert model is None and config == before
    message = " | ".join(i.message for i in issues if i.path == path)
    assert message, [i.line("f.yaml") for i in issues]
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_choices_are_written_the_canonical_way_and_round_trip() -> None:
    text = dump_yaml(validate_source_data(source(column_types={"Net Amount": " Decimal(38, 2) ", "period": "TEXT"},
                                                 type_mapping={"oracle_number": "bigint"}))[0])
    saved = parse_yaml(text)[0]["tables"][0]
    assert saved == {"name": "orders", "column_types": {"Net Amount": "decimal(38,2)", "period": "text"},
                     "type_mapping": {"oracle_number": "bigint"}}
    again = validate_source_data(parse_yaml(text)[0])[0]
    assert dump_yaml(again) == text and again.tables[0].type_mapping == {"oracle_number": "bigint"}
    plain = parse_yaml(dump_yaml(validate_source_data(source())[0]))[0]["tables"][0]
    assert plain == {"name": "orders"}  # nothing written when not chosen


def test_the_json_schema_lists_the_choices_for_editors() -> None:
    table = source_file_schema()["$defs"]["SqlTable"]["properties"]
    values = next(iter(table["column_types"]["patternProperties"].values()))
    assert values["examples"] == ["text", "decimal(38,10)"] and table["column_types"]["additionalProperties"] is False
    mapping = table["type_mapping"]
    assert mapping["properties"]["oracle_number"]["enum"] == ["double", "bigint", "decimal", "string"]
    assert mapping["additionalProperties"] is False and "column_types" in mapping["description"]


def test_a_type_rule_of_another_source_type_is_refused_at_its_path() -> None:
    from ingestion_core.config.store import validate_source_data

    data = {"name": "crm", "owner": "market-de",
            "source": {"type": "postgres", "host": "db", "database": "crm", "username": "u",
                       "password": "${secrets.crm.password}"},
            "tables": [{"name": "t", "type_mapping": {"oracle_number": "bigint"}}]}
    model, issues = validate_source_data(data)
    assert model is None
    assert [(i.path, i.message) for i in issues if i.severity == "error"] == [(
        "tables[0].type_mapping.oracle_number",
        "type rule oracle_number is for oracle sources, not postgres, so it would change nothing; "
        "remove it (rules for postgres: none)")]
    data["source"] = {"type": "oracle", "host": "db", "service_name": "crm", "username": "u",
                      "password": "${secrets.crm.password}"}
    model, issues = validate_source_data(data)
    assert model is not None, issues
