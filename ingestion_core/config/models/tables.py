"""What a source yields: entries of ``tables:``. Settings left out inherit ``defaults:``.

A SQL table, a file glob and a REST resource share the settings below; the fields beyond
them depend on the source type (see :mod:`ingestion_core.config.models.source_file`).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ingestion_core.config.models.base import ConfigModel, DateAsText, Duration, Identifier
from ingestion_core.config.models.checks import Check, ReconcileCheck

Mode = Literal["full", "append", "incremental", "merge", "scd2"]
MODES: tuple[str, ...] = Mode.__args__  # type: ignore[attr-defined]
SchemaEvolution = Literal["evolve", "freeze", "discard_row", "discard_value"]
Backend = Literal["auto", "connectorx", "pyarrow", "pandas", "sqlalchemy"]
InitialValue = Annotated[str | int | float, DateAsText]

MODE_HELP = (
    "full: replace the table each run; append: add every row read; incremental: add only rows "
    "whose cursor moved past the last run; merge: upsert on primary_key; scd2: keep history "
    "of changes on primary_key."
)
EVOLUTION_HELP = (
    "What happens when the source schema changes. evolve: add new columns; freeze: fail the "
    "run; discard_row: drop rows that do not fit; discard_value: drop values that do not fit."
)


COLUMN_TYPE_CHOICES = "text, or decimal(p,s) with 1 <= p <= 38 and 0 <= s <= p (e.g. decimal(38,10))"
COLUMN_TYPES_HELP = (
    "How chosen columns land, instead of the product's own decision: {column: text} lands the value as "
    "the source prints it; {column: decimal(p,s)} lands an exact decimal (a value that does not fit stops "
    "the load, naming the column). For a column the product refuses or converts, e.g. "
    "{amount: 'decimal(38,2)', period: text}. Applies to every destination and takes precedence over "
    "type_mapping."
)
TYPE_MAPPING_HELP = (
    "This table's choices for the Databricks type rules (same rules and choices as type_mapping in the "
    "Databricks destination file, e.g. {oracle_number: bigint}); rules left out keep the destination's "
    "choice. Used when the destination is Databricks; column_types wins for the columns it names."
)
COLUMN_TYPE_PATTERN = r"^\s*(text|decimal\s*\(\s*\d{1,2}\s*,\s*\d{1,2}\s*\))\s*$"


def _column_types_schema(schema: dict[str, Any]) -> None:
    """Values are column types (checked by the model: p <= 38, s <= p); keys are identifiers."""
    value = {"type": "string", "pattern": COLUMN_TYPE_PATTERN, "examples": ["text", "decimal(38,10)"]}
    schema["patternProperties"] = {key: value for key in schema.get("patternProperties", {})}
    schema["additionalProperties"] = False


def _type_mapping_schema(schema: dict[str, Any]) -> None:
    """JSON Schema of a table's type_mapping: the Databricks rules and their choices (read from the
    rules themselves when the schema is made, so the models do not import SQLAlchemy)."""
    from ingestion_core.typemap.databricks import RULES

    schema["properties"] = {rule.name: {"enum": list(rule.choices), "description": f"{rule.column} "
                                        f"({'/'.join(rule.source_types)}); default: the destination's choice"}
                            for rule in RULES}
    schema["additionalProperties"] = False


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


DEFAULT_CHUNK_SIZE = 122_880
"""Rows of a row group of a DuckDB table (DuckDB's ``ROW_GROUP_SIZE``). Each batch a SQL table is
read in becomes a row group of the Parquet loader file, and dlt loads that file into DuckDB with
``INSERT ... FROM read_parquet``, one Parquet row group per task: a row group of a whole multiple of
these rows fills whole row groups of the table and is written once; a smaller one (50,000 or
100,000 rows) is written, then merged with its neighbours and written again. 1M rows inserted in
1.36 s of CPU instead of 1.91 s, 0.74 s wall instead of 1.22 s (bench/README.md, 2026-12-07)."""


class TableDefaults(ConfigModel):
    """Settings every table of the source inherits unless it sets its own."""

    mode: Mode = Field("full", description=MODE_HELP)
    chunk_size: int = Field(
        DEFAULT_CHUNK_SIZE, ge=1, le=10_000_000,
        description="Rows read per batch. The default (122880) loads fastest into DuckDB: keep whole multiples of it.")
    backend: Backend = Field(
        "auto",
        description="How SQL tables are read. auto picks the fastest backend that keeps every "
        "column type exact and falls back when a table cannot be read with it.",
    )
    schema_evolution: SchemaEvolution = Field("evolve", description=EVOLUTION_HELP)


class TableBase(ConfigModel):
    """Fields every kind of table has."""

    name: Identifier = Field(description="Name of the table as it lands in the destination.")
    description: str = Field("", description="What this table holds, for people.")
    enabled: bool = Field(True, description="Disabled tables are kept in the file but not loaded.")
    mode: Mode | None = Field(None, description=MODE_HELP + " Default: defaults.mode.")
    cursor: Identifier | None = Field(
        None,
        description="Column (or record field) that grows with every change, e.g. updated_at; "
        "needed by mode incremental.",
    )
    initial_value: InitialValue | None = Field(
        None, description="Where the first incremental run starts, e.g. '2024-01-01'."
    )
    lookback: Duration | None = Field(
        None, description="Re-read rows up to this much older than the saved cursor, e.g. 2h, 30m or 1d, for rows "
        "that arrive late; rows read again are loaded once, by primary_key (needed). Modes incremental and merge.",
    )
    primary_key: list[Identifier] = Field(
        default_factory=list, description="Column(s) identifying a row; needed by merge, scd2 and lookback."
    )
    chunk_size: int | None = Field(
        None, ge=1, le=10_000_000, description="Rows per batch. Default: defaults.chunk_size."
    )
    schema_evolution: SchemaEvolution | None = Field(
        None, description=EVOLUTION_HELP + " Default: defaults.schema_evolution."
    )
    checks: list[Check] = Field(default_factory=list, description="Quality checks run after each load.")
    reconcile: ReconcileCheck | None = Field(
        None,
        description="Compare the rows the source holds (within the incremental window) with the rows "
        "that landed, after each load. true: no difference allowed; or {tolerance: 10} rows or "
        "{tolerance: '0.5%'}, and a severity.",
    )

    _primary_key_as_list = field_validator("primary_key", mode="before")(_as_list)


LOOKBACK_MODES = ("incremental", "merge")


def lookback_problem(table: TableBase, mode: str) -> tuple[str, str, str] | None:
    """(field, error kind, message) when ``table`` cannot have its lookback in ``mode``, else None.

    A look-back reads rows already loaded again: a merge on primary_key loads them once. On an
    incremental table the key is primary_key + cursor, so a changed row is still added as a new
    version, as without look-back."""
    if table.lookback is None:
        return None
    if mode not in LOOKBACK_MODES or not table.cursor:
        return ("lookback", "lookback_mode", "lookback re-reads rows before the saved cursor, so it needs mode "
                "incremental or merge and a cursor; table '{name}' has mode {mode}" + ("" if table.cursor else
                " and no cursor") + ": set them, or remove lookback")
    if not table.primary_key:
        return ("primary_key", "lookback_key", "table '{name}' has lookback {lookback}, which reads rows already "
                "loaded again; set primary_key to the column(s) identifying a row, so that each is loaded once, "
                "or remove lookback")
    return None


class FilterCondition(ConfigModel):
    """One condition of a row filter; conditions are ANDed. Values are bound, never pasted."""

    yaml_example: ClassVar[str | None] = "{column: country, op: '=', value: DE}"

    column: Identifier = Field(description="Column the condition tests.")
    op: Literal["=", "!=", "<", "<=", ">", ">=", "in", "not_in", "is_null", "not_null"] = Field(
        description="Comparison."
    )
    value: Annotated[str | int | float | bool | list[str | int | float] | None, DateAsText] = Field(
        None, description="Value compared with (a list for in / not_in; none for is_null / not_null)."
    )

    @model_validator(mode="after")
    def _value_fits_op(self) -> FilterCondition:
        needs_list = self.op in ("in", "not_in")
        needs_none = self.op in ("is_null", "not_null")
        if needs_none and self.value is not None:
            raise _filter_error("op {op} takes no value; remove value", self.op)
        if needs_list and not isinstance(self.value, list):
            raise _filter_error("op {op} needs a list value, e.g. value: [a, b]", self.op)
        if not needs_list and not needs_none and (self.value is None or isinstance(self.value, list)):
            raise _filter_error("op {op} needs a single value, e.g. value: 10 (use op in for a list)", self.op)
        return self


def _filter_error(message: str, op: str) -> PydanticCustomError:
    return PydanticCustomError("filter_value", message, {"op": op, "at": "value"})


class SqlTable(TableBase):
    """A table (or view) of a database source."""

    yaml_example: ClassVar[str | None] = "{name: orders, mode: full}"

    schema_: Identifier | None = Field(
        None, alias="schema", description="Database schema holding the table (e.g. public, dbo)."
    )
    source_table: Identifier | None = Field(
        None, description="Name in the source database when it differs from name."
    )
    include_columns: list[Identifier] = Field(default_factory=list, description="Load only these columns.")
    exclude_columns: list[Identifier] = Field(default_factory=list, description="Leave these columns out.")
    filter: list[FilterCondition] = Field(default_factory=list, description="Load only rows matching all conditions.")
    backend: Backend | None = Field(None, description="Reading backend. Default: defaults.backend.")
    column_types: dict[Identifier, str] = Field(
        default_factory=dict, description=COLUMN_TYPES_HELP, json_schema_extra=_column_types_schema,
    )
    type_mapping: dict[str, str] = Field(default_factory=dict, description=TYPE_MAPPING_HELP,
                                         json_schema_extra=_type_mapping_schema)

    @field_validator("column_types")
    @classmethod
    def _column_types_known(cls, value: dict[str, str]) -> dict[str, str]:
        """Each choice written the canonical way (``decimal(38,2)``); a wrong one names the column."""
        from ingestion_core.typemap.columns import parse_column_type

        checked = {}
        for column, choice in value.items():
            try:
                landed = parse_column_type(choice)
            except ValueError as exc:
                raise PydanticCustomError(
                    "column_type",
                    "column {column} has '{value}', which is not a column type{why}; write "
                    "one of: {choices}, or remove {column} from column_types",
                    {"column": column, "value": str(choice)[:80],
                     "why": f" ({str(exc).split(': ', 1)[-1]})" if "decimal needs" in str(exc) else "",
                     "choices": COLUMN_TYPE_CHOICES, "at": column},
                ) from None
            checked[column] = "text" if landed["data_type"] == "text" else \
                f"decimal({landed['precision']},{landed['scale']})"
        return checked

    @field_validator("type_mapping")
    @classmethod
    def _type_mapping_known(cls, value: dict[str, str]) -> dict[str, str]:
        from ingestion_core.typemap.databricks import RULES_BY_NAME, check_mapping

        for rule, choice in value.items():
            try:
                check_mapping({rule: choice})
            except ValueError as exc:
                at = rule if rule in RULES_BY_NAME else None
                raise PydanticCustomError(
                    "type_mapping", "{why}; fix it or remove {rule} from type_mapping",
                    {"why": str(exc), "rule": rule[:80], **({"at": at} if at else {})},
                ) from None
        return value

    @model_validator(mode="after")
    def _columns_not_both(self) -> SqlTable:
        both = set(self.include_columns) & set(self.exclude_columns)
        if both:
            raise PydanticCustomError(
                "include_exclude",
                "column(s) {cols} are in both include_columns and exclude_columns; keep each in one "
                "list only",
                {"cols": ", ".join(sorted(both)), "at": "exclude_columns"},
            )
        for column in self.column_types:
            left_out = column in self.exclude_columns or (self.include_columns and column not in self.include_columns)
            if left_out:
                where = "is in exclude_columns" if column in self.exclude_columns else "is not in include_columns"
                raise PydanticCustomError(
                    "column_type_unloaded",
                    "column_types names column {column}, which {where}, so it is not loaded; remove it from "
                    "column_types or load the column",
                    {"column": column, "where": where, "at": f"column_types.{column}"},
                )
        return self


FileFormat = Literal["csv", "jsonl", "parquet"]


class CsvOptions(ConfigModel):
    delimiter: str = Field(",", min_length=1, max_length=1, description="Field separator.")
    header: bool = Field(True, description="First line holds the column names.")
    encoding: str = Field("utf-8", description="Text encoding of the files.")


class FileTable(TableBase):
    """Files matching a glob, read into one table."""

    yaml_example: ClassVar[str | None] = "{name: orders, glob: 'orders/*.csv', format: csv}"

    glob: str = Field(min_length=1, description="Files to read, relative to bucket_url, e.g. 'orders/*.csv'.")
    format: FileFormat = Field(description="File format: csv, jsonl or parquet.")
    csv: CsvOptions | None = Field(None, description="CSV options (format csv only).")

    @model_validator(mode="after")
    def _csv_options_fit(self) -> FileTable:
        if self.csv is not None and self.format != "csv":
            raise PydanticCustomError(
                "csv_options", "csv options are set but format is {format}; remove csv or set format: csv",
                {"format": self.format},
            )
        if ".." in self.glob.replace("\\", "/").split("/"):
            raise PydanticCustomError(
                "glob_parent", "glob may not go above bucket_url ('..'); point bucket_url higher", {"at": "glob"}
            )
        if self.glob.startswith(("/", "\\", "~")) or "://" in self.glob:
            raise PydanticCustomError(
                "glob_absolute",
                "glob '{glob}' is relative to bucket_url: remove the leading part (e.g. 'orders/*.csv') and put "
                "the folder in bucket_url",
                {"glob": self.glob[:120], "at": "glob"},
            )
        return self
