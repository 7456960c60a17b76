"""Data-quality checks configured per table, and the per-table reconciliation setting.

In YAML each check is a one-key mapping, the key naming the kind. Column checks have a
shorthand: ``{not_null: order_id}`` means ``{not_null: {column: order_id, severity: error}}``;
``{unique: [a, b]}`` means the pair is unique. Saved files keep the shorthand where it fits.
The checks run on the destination after each load (see :mod:`ingestion_core.quality.checks`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator, model_serializer, model_validator
from pydantic_core import PydanticCustomError

from ingestion_core.config.models.base import ConfigModel, DateAsText, Duration, Identifier

Severity = Literal["warn", "error"]
Scope = Literal["table", "load"]
SCOPE_HELP = (
    "Which rows are checked. table: the whole table (scd2: its current rows); load: only the rows "
    "this run loaded. Default: load for not_null, accepted_values, regex and range on append and "
    "incremental tables, table otherwise."
)


class CheckSpec(ConfigModel):
    """Fields every check has."""

    kind: ClassVar[str]
    shorthand: ClassVar[str | None] = None  # the field a bare value fills

    severity: Severity = Field(
        "error",
        description="error: the run ends as quality_failed (exit 2, data kept); warn: recorded only.",
    )
    scope: Scope | None = Field(None, description=SCOPE_HELP)

    @model_validator(mode="before")
    @classmethod
    def _expand_shorthand(cls, data: Any) -> Any:
        if cls.shorthand and not isinstance(data, dict):
            return {cls.shorthand: data}
        return data

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> Any:
        schema = handler(core_schema)
        if not cls.shorthand:
            return schema
        column = {"type": "string", "description": f"Shorthand for {{{cls.shorthand}: ...}}."}
        short = column if cls.shorthand == "column" else {
            "anyOf": [column, {"type": "array", "items": {"type": "string"}, "minItems": 1}]}
        return {"anyOf": [schema, short]}

    @model_serializer(mode="wrap")
    def _compact(self, handler: Any) -> Any:
        full = handler(self)
        if self.shorthand and set(self.model_fields_set) <= {self.shorthand}:
            return full[self.shorthand]
        return {k: v for k, v in full.items() if k in self.model_fields_set}


class RowCountCheck(CheckSpec):
    kind = "row_count"
    min: int | None = Field(None, ge=0, description="Fewest rows the table may hold.")
    max: int | None = Field(None, ge=0, description="Most rows the table may hold.")

    @model_validator(mode="after")
    def _bounds(self) -> RowCountCheck:
        if self.min is None and self.max is None:
            raise PydanticCustomError(
                "missing_bound", "row_count needs min, max or both, e.g. {row_count: {min: 1}}"
            )
        if self.min is not None and self.max is not None and self.min > self.max:
            raise PydanticCustomError(
                "bad_bounds", "row_count min ({min}) is above max ({max}); swap them",
                {"min": self.min, "max": self.max},
            )
        return self


class NotNullCheck(CheckSpec):
    kind = "not_null"
    shorthand = "column"
    column: Identifier = Field(description="Column that must never be NULL.")


class NullRateCheck(CheckSpec):
    kind = "null_rate"
    column: Identifier = Field(description="Column whose share of NULL values is checked.")
    max: float = Field(
        description="Largest share of rows that may be NULL in column, from 0 to 1: 0.05 allows 5 %.",
        json_schema_extra={"minimum": 0, "maximum": 1},
    )

    @field_validator("max", mode="before")
    @classmethod
    def _share(cls, value: Any, info: ValidationInfo) -> Any:
        share = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        if share is None or not 0 <= share <= 1:
            raise PydanticCustomError(
                "null_rate_max", "null_rate max for column {column} is {value}, but it is the largest share of NULL "
                "rows, a number from 0 to 1; write e.g. max: 0.05 for at most 5 %",
                {"value": str(value)[:40], "column": info.data.get("column", "?")},
            )
        return value


class UniqueCheck(CheckSpec):
    kind = "unique"
    shorthand = "columns"
    columns: list[Identifier] = Field(
        min_length=1, description="Column, or columns taken together, whose values must be unique."
    )

    @model_validator(mode="before")
    @classmethod
    def _one_column(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"columns": [data]}
        if isinstance(data, dict) and isinstance(data.get("columns"), str):
            return {**data, "columns": [data["columns"]]}
        return data


class AcceptedValuesCheck(CheckSpec):
    kind = "accepted_values"
    column: Identifier = Field(description="Column whose values are checked.")
    values: Annotated[list[str | int | float | bool], DateAsText] = Field(
        min_length=1, description="The only values allowed (NULL is allowed; add not_null too)."
    )


class RegexCheck(CheckSpec):
    kind = "regex"
    column: Identifier = Field(description="Text column whose non-NULL values must match.")
    pattern: str = Field(min_length=1, description="Regular expression each value must match.")

    @model_validator(mode="after")
    def _compiles(self) -> RegexCheck:
        import re

        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise PydanticCustomError(
                "bad_regex", "pattern is not a valid regular expression: {reason}",
                {"reason": str(exc)},
            ) from None
        return self


class RangeCheck(CheckSpec):
    kind = "range"
    column: Identifier = Field(description="Numeric or date column whose values are checked.")
    min: Annotated[float | str | None, DateAsText] = Field(None, description="Smallest allowed value (inclusive).")
    max: Annotated[float | str | None, DateAsText] = Field(None, description="Largest allowed value (inclusive).")

    @model_validator(mode="after")
    def _bounds(self) -> RangeCheck:
        if self.min is None and self.max is None:
            raise PydanticCustomError(
                "missing_bound", "range needs min, max or both, e.g. {range: {column: price, min: 0}}"
            )
        return self


class FreshnessCheck(CheckSpec):
    kind = "freshness"
    column: Identifier = Field(description="Timestamp column; its newest value is checked.")
    max_age: Duration = Field(description="How old the newest value may be, e.g. '24h' or '2d'.")


class CustomSqlCheck(CheckSpec):
    kind = "custom_sql"
    name: str | None = Field(
        None, max_length=80, description="A short name for the check, shown in results and history."
    )
    sql: str = Field(
        min_length=1,
        description="One read-only SELECT over the loaded table ({table} is replaced by its quoted "
        "name) returning the failing rows, or one number to compare with min_value / max_value.",
    )
    returns: Literal["failing_rows", "number"] | None = Field(
        None,
        description="What the query returns: failing rows (pass when none) or one number. Default: "
        "number when min_value or max_value is set, else failing_rows.",
    )
    min_value: float | None = Field(
        None, description="When the query returns one number: the smallest value that passes."
    )
    max_value: float | None = Field(
        None, description="When the query returns one number: the largest value that passes."
    )

    @property
    def result_kind(self) -> str:
        if self.returns:
            return self.returns
        return "number" if self.min_value is not None or self.max_value is not None else "failing_rows"

    @model_validator(mode="after")
    def _read_only_query(self) -> CustomSqlCheck:
        from ingestion_core.common.sql_guard import read_only_problem

        problem = read_only_problem(self.sql)
        if problem:
            raise PydanticCustomError("custom_sql_not_select", "{problem}", {"problem": problem, "at": "sql"})
        if self.scope is not None:
            raise PydanticCustomError(
                "custom_sql_scope", "custom_sql takes no scope: it checks what its query selects; filter "
                "the rows in the query instead", {"at": "scope"},
            )
        if self.returns == "number" and self.min_value is None and self.max_value is None:
            raise PydanticCustomError(
                "custom_sql_bounds", "custom_sql returns a number but has neither min_value nor max_value; "
                "set one, e.g. max_value: 0", {"at": "returns"},
            )
        if self.returns == "failing_rows" and (self.min_value is not None or self.max_value is not None):
            raise PydanticCustomError(
                "custom_sql_bounds", "min_value / max_value compare a number, but returns is failing_rows; "
                "remove them or set returns: number", {"at": "returns"},
            )
        return self


CHECK_EXAMPLES = {
    "row_count": "{row_count: {min: 1}}",
    "not_null": "{not_null: order_id}",
    "null_rate": "{null_rate: {column: email, max: 0.05}}",
    "unique": "{unique: order_id} or {unique: [order_id, line_no]}",
    "accepted_values": "{accepted_values: {column: status, values: [open, closed]}}",
    "regex": "{regex: {column: email, pattern: '^[^@]+@[^@]+$'}}",
    "range": "{range: {column: price, min: 0}}",
    "freshness": "{freshness: {column: updated_at, max_age: 24h}}",
    "custom_sql": "{custom_sql: {sql: 'SELECT * FROM {table} WHERE amount < 0'}}",
}
RECONCILE_EXAMPLE = "reconcile: true, or reconcile: {tolerance: '0.5%', severity: warn}"
CHECKS: dict[str, type[CheckSpec]] = {
    c.kind: c
    for c in (RowCountCheck, NotNullCheck, NullRateCheck, UniqueCheck, AcceptedValuesCheck, RegexCheck,
              RangeCheck, FreshnessCheck, CustomSqlCheck)
}


class Check(ConfigModel):
    """One quality check: a mapping with exactly one key, the kind of check."""

    row_count: RowCountCheck | None = Field(None, description="Bounds on the number of rows.")
    not_null: NotNullCheck | None = Field(None, description="A column that must not be NULL.")
    null_rate: NullRateCheck | None = Field(None, description="The largest share of NULL values in a column.")
    unique: UniqueCheck | None = Field(None, description="Columns whose values must be unique.")
    accepted_values: AcceptedValuesCheck | None = Field(None, description="Allowed values of a column.")
    regex: RegexCheck | None = Field(None, description="A pattern every value must match.")
    range: RangeCheck | None = Field(None, description="Bounds on the values of a column.")
    freshness: FreshnessCheck | None = Field(None, description="Maximum age of the newest row.")
    custom_sql: CustomSqlCheck | None = Field(None, description="A SQL query of your own.")

    model_config = {**ConfigModel.model_config, "json_schema_extra": {"minProperties": 1, "maxProperties": 1}}

    unknown_key_label: ClassVar[str] = "check kind"
    yaml_example: ClassVar[str | None] = "{not_null: order_id}"

    @model_validator(mode="before")
    @classmethod
    def _exactly_one(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if len(data) != 1:
            raise PydanticCustomError(
                "one_check",
                "each check is a mapping with exactly one key, the kind of check (found {found}); "
                "write one check per list entry. Valid kinds: {valid}. Example: {example}",
                {"found": ", ".join(map(str, data)) or "none", "valid": ", ".join(CHECKS),
                 "example": "[{not_null: order_id}, {unique: order_id}]"},
            )
        kind, settings = next(iter(data.items()))
        if settings is None and kind in CHECKS:
            raise PydanticCustomError(
                "empty_check", "check {kind} has no settings; e.g. {example}",
                {"kind": kind, "example": CHECK_EXAMPLES[kind], "at": kind},
            )
        return data

    @property
    def spec(self) -> CheckSpec:
        return next(getattr(self, k) for k in CHECKS if getattr(self, k) is not None)

    @model_serializer(mode="wrap")
    def _only_set(self, handler: Any) -> Any:
        spec = self.spec
        return {spec.kind: spec.model_dump(mode="json")}


_TOLERANCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
TOLERANCE_PATTERN = r"^\s*\d+(\.\d+)?\s*%\s*$"


class ReconcileCheck(CheckSpec):
    """Compares the rows the source holds (within the incremental window) with the rows that
    landed. ``reconcile: true`` means ``{tolerance: 0, severity: error}``."""

    kind = "reconcile"
    yaml_example: ClassVar[str | None] = RECONCILE_EXAMPLE

    tolerance: int | str = Field(
        0,
        description="How far the landed count may differ from the source count: a number of rows "
        "(e.g. 10) or a share of the source count (e.g. '0.5%').",
        json_schema_extra={"anyOf": [{"type": "integer", "minimum": 0},
                                     {"type": "string", "pattern": TOLERANCE_PATTERN}]},
    )

    @field_validator("tolerance")
    @classmethod
    def _tolerance_form(cls, value: int | str) -> int | str:
        if (isinstance(value, int) and value >= 0) or (isinstance(value, str) and _TOLERANCE.match(value)):
            return value.strip() if isinstance(value, str) else value
        raise PydanticCustomError(
            "bad_tolerance", "tolerance is a number of rows (e.g. 10) or a percentage in quotes (e.g. '0.5%'); "
            "got {value}", {"value": str(value)[:40]},
        )

    @model_validator(mode="before")
    @classmethod
    def _true_is_defaults(cls, data: Any) -> Any:
        if data is True:
            return {}
        if isinstance(data, bool):
            raise PydanticCustomError(
                "reconcile_false", "reconcile: false is the default; remove the key to turn reconciliation off"
            )
        return data

    @model_validator(mode="after")
    def _no_scope(self) -> ReconcileCheck:
        if self.scope is not None:
            raise PydanticCustomError(
                "reconcile_scope", "reconcile takes no scope: it compares this run's rows by mode "
                "(see docs/quality.md)", {"at": "scope"},
            )
        return self

    def allowed_difference(self, source_rows: int) -> float:
        """The largest difference that passes, in rows."""
        if isinstance(self.tolerance, str):
            return source_rows * float(_TOLERANCE.match(self.tolerance)[1]) / 100  # type: ignore[index]
        return float(self.tolerance)

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> Any:
        schema = handler(core_schema)
        return {"anyOf": [schema, {"const": True, "description": "Reconcile with the defaults (tolerance 0)."}]}

    @model_serializer(mode="wrap")
    def _compact(self, handler: Any) -> Any:
        full = handler(self)
        set_fields = {k: v for k, v in full.items() if k in self.model_fields_set}
        return set_fields or True
