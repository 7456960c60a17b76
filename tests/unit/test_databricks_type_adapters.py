"""The Databricks type adapters on SQLAlchemy's own Oracle and SQL Server dialect types: the dlt
column each rule and choice gives, the Arrow value a driver's value becomes, overrides, and that
they apply only when the destination is Databricks."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import dlt
import pytest
import sqlalchemy as sa
from dlt.common.libs.pyarrow import row_tuples_to_arrow
from dlt.sources.sql_database.schema_types import sqla_col_to_column_schema
from sqlalchemy.dialects import mssql, oracle

from ingestion_core.config.models.destinations import DESTINATION_ADAPTER, DatabricksTypeMapping
from ingestion_core.engine.destinations import build_destination
from ingestion_core.typemap import adapters as type_adapters
from ingestion_core.typemap import databricks as dbx_types

PLUS2 = dt.timezone(dt.timedelta(hours=2))
UTC = dt.UTC

# (source type, dialect type, choice or None for the default, value a driver returns,
#  expected dlt column (without name / nullable), expected Arrow type, expected value read back)
CASES = [
    ("oracle", oracle.NUMBER(), None, Decimal("2.5"), {"data_type": "double"}, "double", 2.5),
    ("oracle", oracle.NUMBER(), "bigint", 42, {"data_type": "bigint"}, "int64", 42),
    ("oracle", oracle.NUMBER(), "decimal", Decimal("2.5"), {"data_type": "decimal", "precision": 38, "scale": 10},
     "decimal128(38, 10)", Decimal("2.5000000000")),
    ("oracle", oracle.NUMBER(), "string", Decimal("2.5"), {"data_type": "text"}, "string", "2.5"),
    ("oracle", oracle.NUMBER(12, 2), None, Decimal("1.25"), {"data_type": "decimal", "precision": 12, "scale": 2},
     "decimal128(12, 2)", Decimal("1.25")),
    ("oracle", oracle.NUMBER(10, 0), None, 12345, {"data_type": "decimal", "precision": 10, "scale": 0},
     "decimal128(10, 0)", Decimal("12345")),
    ("oracle", oracle.NUMBER(5, -2), None, 12300, {"data_type": "decimal", "precision": 7, "scale": 0},
     "decimal128(7, 0)", Decimal("12300")),
    ("oracle", oracle.NUMBER(12, 2), "double", Decimal("1.25"), {"data_type": "double"}, "double", 1.25),
    ("oracle", oracle.DATE(), None, dt.datetime(2024, 1, 2, 3, 4, 5), {"data_type": "timestamp", "timezone": True},
     "timestamp[us, tz=UTC]", dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ("oracle", oracle.DATE(), "timestamp_ntz", dt.datetime(2024, 1, 2, 3, 4, 5),
     {"data_type": "timestamp", "timezone": False}, "timestamp[us]", dt.datetime(2024, 1, 2, 3, 4, 5)),
    ("oracle", oracle.DATE(), "date", dt.datetime(2024, 1, 2, 3, 4, 5), {"data_type": "date"}, "date32[day]",
     dt.date(2024, 1, 2)),
    ("mssql", mssql.TIME(), None, dt.time(1, 2, 3, 400), {"data_type": "text"}, "string", "01:02:03.000400"),
    ("mssql", mssql.TIME(), "time", dt.time(1, 2, 3), {"data_type": "time"}, "time64[us]", dt.time(1, 2, 3)),
    ("azure_sql", mssql.DATETIMEOFFSET(), None, dt.datetime(2024, 1, 1, 12, tzinfo=PLUS2),
     {"data_type": "timestamp", "timezone": True}, "timestamp[us, tz=UTC]", dt.datetime(2024, 1, 1, 10, tzinfo=UTC)),
    ("mssql", mssql.DATETIMEOFFSET(), "string", dt.datetime(2024, 1, 1, 12, tzinfo=PLUS2), {"data_type": "text"},
     "string", "2024-01-01 12:00:00.000000+0200"),
    ("mssql", mssql.MONEY(), None, Decimal("12.3456"), {"data_type": "decimal", "precision": 19, "scale": 4},
     "decimal128(19, 4)", Decimal("12.3456")),
    ("mssql", mssql.SMALLMONEY(), None, Decimal("12.3456"), {"data_type": "decimal", "precision": 10, "scale": 4},
     "decimal128(10, 4)", Decimal("12.3456")),
    ("mssql", mssql.MONEY(), "double", Decimal("12.5"), {"data_type": "double"}, "double", 12.5),
    ("mssql", mssql.UNIQUEIDENTIFIER(), None, "6F9619FF-8B86-D011-B42D-00C04FC964FF",
     {"data_type": "text", "precision": 36}, "string", "6F9619FF-8B86-D011-B42D-00C04FC964FF"),
]


def rule_of(source_type: str, sql_type: sa.types.TypeEngine) -> str:
    return next(r.name for r in dbx_types.RULES if source_type in r.source_types and r.matches(sql_type))


@pytest.fixture(scope="module")
def caps():
    credentials = {"server_hostname": "h", "http_path": "/p", "catalog": "c", "access_token": "x" * 8}
    return dlt.destinations.databricks(credentials=credentials).capabilities()


@pytest.mark.parametrize(("source_type", "sql_type", "choice", "value", "column", "arrow_type", "landed"), CASES,
                         ids=lambda v: repr(v) if isinstance(v, sa.types.TypeEngine) else None)
def test_each_rule_and_choice_on_the_dialect_type(caps, source_type, sql_type, choice, value, column, arrow_type,
                                                  landed) -> None:
    mapping = {rule_of(source_type, sql_type): choice} if choice else {}
    adapted = dbx_types.databricks_type_adapter(source_type, mapping)(sql_type)
    schema = sqla_col_to_column_schema(sa.Column("c", adapted), "full_with_precision")
    assert {k: v for k, v in schema.items() if k not in ("name", "nullable")} == column
    table = row_tuples_to_arrow([(value,), (None,)], caps, {"c": schema}, "UTC")
    assert str(table.schema.field("c").type) == arrow_type
    assert table.column("c").to_pylist() == [landed, None]


def test_every_rule_is_a_field_of_the_destination_model_with_the_same_choices() -> None:
    fields = DatabricksTypeMapping.model_fields
    assert set(fields) == set(dbx_types.RULES_BY_NAME)
    for rule in dbx_types.RULES:
        assert fields[rule.name].default == rule.default
        assert set(fields[rule.name].annotation.__args__) == set(rule.choices)


@pytest.mark.parametrize("sql_type", [sa.Integer(), sa.String(30), oracle.VARCHAR2(10), oracle.FLOAT(),
                                      mssql.DATETIME2(), mssql.NVARCHAR(20), sa.Numeric(10, 2)])
def test_other_types_are_left_to_dlt(sql_type) -> None:
    assert dbx_types.adapt_type("oracle", sql_type) is None
    assert dbx_types.adapt_type("mssql", sql_type) is None


def test_rules_apply_to_their_own_source_type_only() -> None:
    assert dbx_types.adapt_type("mssql", oracle.NUMBER()) is None
    assert dbx_types.adapt_type("postgres", mssql.MONEY()) is None
    assert dbx_types.adapt_type("oracle", mssql.TIME()) is None


def test_registered_for_databricks_only() -> None:
    assert type_adapters.type_adapter_for("oracle", "duckdb") is None
    for source_type, sql_type in (("oracle", oracle.DATE()), ("mssql", mssql.MONEY()), ("azure_sql", mssql.TIME())):
        adapt = type_adapters.type_adapter_for(source_type, "databricks")
        assert adapt is not None and adapt(sql_type) is not None


def test_the_destination_file_sets_the_mapping_in_force(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBX_TOKEN", "dapi-" + "t" * 20)
    destination = DESTINATION_ADAPTER.validate_python({
        "type": "databricks", "server_hostname": "adb-1.azuredatabricks.net", "http_path": "/sql/1.0/warehouses/x",
        "catalog": "main", "access_token": "${env:DBX_TOKEN}", "type_mapping": {"oracle_number": "bigint"}})
    try:
        build_destination("dbx", destination)
        adapt = type_adapters.type_adapter_for("oracle", "databricks")
        assert isinstance(adapt(oracle.NUMBER()), sa.BigInteger)
        assert dbx_types.current_type_mapping()["oracle_date"] == "timestamp"
    finally:
        dbx_types.use_type_mapping(None)
    assert dbx_types.current_type_mapping() == dbx_types.DEFAULT_MAPPING


def test_per_table_overrides_go_on_top_of_the_mapping_in_force() -> None:
    dbx_types.use_type_mapping({"oracle_number": "decimal"})
    try:
        table_adapter = dbx_types.databricks_type_adapter("oracle", {"oracle_date": "date"})
        assert isinstance(table_adapter(oracle.DATE()), sa.Date)
        assert table_adapter(oracle.NUMBER()).precision == 38  # the destination's choice still holds
    finally:
        dbx_types.use_type_mapping(None)


@pytest.mark.parametrize(("mapping", "message"), [
    ({"oracle_numbr": "double"}, "no type rule 'oracle_numbr'; the rules are oracle_number, "),
    ({"oracle_number": "float"}, "type rule oracle_number has no choice 'float'; choose one of double, bigint, "
                                 "decimal, string"),
])
def test_unknown_rules_and_choices_name_the_valid_ones(mapping, message) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        dbx_types.databricks_type_adapter("oracle", mapping)


def test_the_destination_model_refuses_a_choice_a_rule_does_not_have() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="oracle_number"):
        DatabricksTypeMapping.model_validate({"oracle_number": "float"})


# --- a table's own type_mapping (YAML), through the type plan the run uses --------------------

def table_plan(source_type: str, destination_type: str, columns: list[tuple[str, sa.types.TypeEngine]],
               **table: object):
    from types import SimpleNamespace

    from ingestion_core.config.store import validate_source_data
    from ingestion_core.engine.sources.sql import plan_sql_table

    connection = {"oracle": {"type": "oracle", "host": "ora", "service_name": "ORCL"},
                  "mssql": {"type": "mssql", "host": "sql", "database": "erp"}}[source_type]
    config, issues = validate_source_data({"name": "erp", "owner": "finance", "source": connection,
                                           "tables": [{"name": "t", **table}]})
    assert config is not None, issues
    dialect = {"oracle": oracle.dialect(), "mssql": mssql.dialect()}[source_type]
    reflected = sa.Table("t", sa.MetaData(), *(sa.Column(name, kind) for name, kind in columns))
    plan = plan_sql_table(SimpleNamespace(dialect=dialect), reflected, config,
                          config.tables[0], destination_type)
    return {d["column"]: (d["decision"], d["landed_type"]) for d in plan.records()}


def oracle_columns() -> list[tuple[str, sa.types.TypeEngine]]:
    return [("n", oracle.NUMBER()), ("amount", oracle.NUMBER(12, 2)), ("d", oracle.DATE())]


def test_oracle_number_without_precision_is_double_on_databricks_unless_the_table_chooses() -> None:
    assert table_plan("oracle", "databricks", oracle_columns()) == {
        "n": ("converted", "double"), "amount": ("converted", "decimal(12,2)"),
        "d": ("converted", "timestamp with time zone")}
    chosen = table_plan("oracle", "databricks", oracle_columns(), type_mapping={"oracle_number": "bigint",
                                                                               "oracle_date": "date"})
    assert chosen == {"n": ("converted", "bigint"), "amount": ("converted", "decimal(12,2)"),
                      "d": ("converted", "date")}


def test_the_table_mapping_goes_on_top_of_the_destination_file_and_column_types_beats_both() -> None:
    dbx_types.use_type_mapping({"oracle_number": "string", "oracle_date": "timestamp_ntz"})
    try:
        plan = table_plan("oracle", "databricks", oracle_columns(), type_mapping={"oracle_number": "decimal"},
                          column_types={"amount": "text"})
    finally:
        dbx_types.use_type_mapping(None)
    assert plan == {"n": ("converted", "decimal(38,10)"), "amount": ("converted", "text"),
                    "d": ("converted", "timestamp")}


def test_the_table_mapping_applies_to_databricks_only() -> None:
    """Previews and other destinations keep the product's own exact rules (NUMBER -> text)."""
    plan = table_plan("oracle", "duckdb", oracle_columns(), type_mapping={"oracle_number": "bigint"})
    assert plan["n"] == ("converted", "text") and plan["amount"] == ("exact", "decimal(12,2)")


def test_sql_server_rules_are_tuned_per_table_too() -> None:
    columns = [("m", mssql.MONEY()), ("at", mssql.DATETIMEOFFSET()), ("t", mssql.TIME())]
    assert table_plan("mssql", "databricks", columns) == {
        "m": ("converted", "decimal(19,4)"), "at": ("converted", "timestamp with time zone"),
        "t": ("converted", "text")}
    chosen = table_plan("mssql", "databricks", columns, type_mapping={"mssql_money": "double",
                                                                     "mssql_datetimeoffset": "string"})
    assert chosen == {"m": ("converted", "double"), "at": ("converted", "text"), "t": ("converted", "text")}


def test_type_adapter_for_takes_a_table_mapping_and_checks_it() -> None:
    assert isinstance(type_adapters.type_adapter_for("oracle", "databricks", {"oracle_number": "bigint"})(
        oracle.NUMBER()), sa.BigInteger)
    assert type_adapters.type_adapter_for("oracle", "duckdb", {"oracle_number": "bigint"}) is None
    with pytest.raises(ValueError, match="no type rule 'oracle_numbr'"):
        type_adapters.type_adapter_for("oracle", "databricks", {"oracle_numbr": "bigint"})
