"""What a source yields: entries of ``tables:``. Settings left out inherit ``defaults:``.

A SQL table, a file glob and a REST resource share the settings below; the fields beyond
them depend on the source type (see :mod:`ingestion_core.models.source_file`).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ingestion_core.models.base import ConfigModel, DateAsText, Identifier
from ingestion_core.models.checks import Check, ReconcileCheck

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


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class TableDefaults(ConfigModel):
    """Settings every table of the source inherits unless it sets its own."""

    mode: Mode = Field("full", description=MODE_HELP)
    chunk_size: int = Field(50_000, ge=1, le=10_000_000, description="Rows read per batch.")
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
    primary_key: list[Identifier] = Field(
        default_factory=list, description="Column(s) identifying a row; needed by merge and scd2."
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
