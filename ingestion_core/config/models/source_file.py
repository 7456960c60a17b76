"""The source file: ``configs/sources/<name>.yaml``.

The kind of ``tables:`` entries depends on ``source.type`` (SQL tables, file globs or REST
resources), so there is one file model per source type, chosen by that field.

Example::

    >>> config = parse_source_file({
    ...     "name": "shop", "owner": "market-de",
    ...     "source": {"type": "sqlite", "path": "demo/data/shop.sqlite"},
    ...     "tables": [{"name": "orders", "mode": "merge", "primary_key": "order_id"}],
    ... })
    >>> config.settings_for(config.tables[0]).mode
    'merge'
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Collection
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import (
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ingestion_core.config.models.base import ConfigModel, Cron, Name, Team, TimeZone
from ingestion_core.config.models.destinations import mode_refusal
from ingestion_core.config.models.rest import RestResource
from ingestion_core.config.models.sources import SOURCE_MODELS, SQL_SOURCE_TYPES
from ingestion_core.config.models.tables import FileTable, SqlTable, TableBase, TableDefaults, lookback_problem

CURRENT_VERSION = 1


class Retries(ConfigModel):
    """How a failing run is retried (transient errors only: timeouts, resets, 429 / 5xx)."""

    attempts: int = Field(3, ge=1, le=10, description="Tries in all, the first one included.")
    backoff_seconds: float = Field(5.0, ge=0, le=3600, description="Wait before the second try; doubles each time.")
    max_backoff_seconds: float = Field(300.0, ge=0, le=86400, description="Longest wait between tries.")


class Workers(ConfigModel):
    """Parallelism of a run."""

    tables_in_parallel: int = Field(2, ge=1, le=32, description="Tables loaded at the same time.")
    extract: int = Field(1, ge=1, le=64, description="dlt extract workers per table.")
    normalize: int = Field(1, ge=1, le=64, description="dlt normalize workers per table.")
    load: int = Field(4, ge=1, le=64, description="dlt load workers per table.")


@dataclass(frozen=True)
class TableSettings:
    """A table's settings after inheriting ``defaults``."""

    mode: str
    chunk_size: int
    schema_evolution: str
    backend: str


class SourceFileBase(ConfigModel):
    """Fields every source file has, whatever the source type."""

    version: Literal[1] = Field(CURRENT_VERSION, description="Format version of this file.")
    name: Name = Field(description="Source name: the file name, the dlt pipeline name and the default dataset.")
    owner: Team = Field(
        description="Team that owns the source; only it (and admins) may change or run it."
    )
    description: str = Field("", description="What the source is, for people.")
    enabled: bool = Field(True, description="Disabled sources are kept but not run by schedules.")
    destination: Name = Field(
        "local_duckdb", description="Name of a file in configs/destinations/ (previews always use DuckDB)."
    )
    dataset: Name | None = Field(None, description="Dataset (schema) the tables land in. Default: the source name.")
    defaults: TableDefaults = Field(default_factory=TableDefaults, description="Settings every table inherits.")
    schedule: Cron | None = Field(None, description="When to run, as cron (minute hour day-of-month month "
                                  "day-of-week) in the time zone of `timezone`, e.g. '0 6 * * *'.")
    timezone: TimeZone = Field("UTC", description="IANA time zone the schedule is read in, e.g. 'Europe/Berlin'.")
    retries: Retries = Field(default_factory=Retries, description="Retry policy of a run.")
    workers: Workers = Field(default_factory=Workers, description="Parallelism of a run.")
    tags: list[Name] = Field(default_factory=list, description="Labels to select sources by, e.g. "
                             "`ingest run --all --tag daily`.")
    after: list[Name] = Field(default_factory=list, description="Sources that must load successfully before "
                              "this one: run-all, the local scheduler and Databricks jobs run them first and skip "
                              "this source when one of them fails.")

    @property
    def source_type(self) -> str:
        return self.source.type  # type: ignore[attr-defined]

    @property
    def dataset_name(self) -> str:
        return self.dataset or self.name

    def settings_for(self, table: TableBase) -> TableSettings:
        return TableSettings(
            mode=table.mode or self.defaults.mode,
            chunk_size=table.chunk_size or self.defaults.chunk_size,
            schema_evolution=table.schema_evolution or self.defaults.schema_evolution,
            backend=getattr(table, "backend", None) or self.defaults.backend,
        )

    def enabled_tables(self, names: list[str] | None = None) -> list[TableBase]:
        tables = [t for t in self.tables if t.enabled]  # type: ignore[attr-defined]
        if names:
            unknown = sorted(set(names) - {t.name for t in tables})
            if unknown:
                raise KeyError(
                    f"{self.name} has no enabled table named {', '.join(unknown)}; "
                    f"its tables are {', '.join(t.name for t in tables)}"
                )
            tables = [t for t in tables if t.name in names]
        return tables

    @model_validator(mode="after")
    def _tables_consistent(self, info: ValidationInfo) -> SourceFileBase:
        seen: set[str] = set()
        for index, table in enumerate(self.tables):  # type: ignore[attr-defined]
            if table.name in seen:
                raise _at(index, "name", "duplicate_table",
                          "table name '{name}' appears twice; give each table its own name",
                          name=table.name)
            seen.add(table.name)
            self._check_mode_needs(index, table)
            self._check_type_mapping(index, table)
        self._check_destination((info.context or {}).get("destinations"))
        self._check_after()
        return self

    def _check_after(self) -> None:
        """Within the file: no dependency on itself, none twice (other sources: ``dependencies``)."""
        seen: set[str] = set()
        for index, name in enumerate(self.after):
            if name == self.name:
                raise PydanticCustomError("self_dependency", "a source cannot run after itself; remove '{name}' "
                                          "from after", {"name": name, "at": f"after[{index}]"})
            if name in seen:
                raise PydanticCustomError("duplicate_dependency", "'{name}' appears twice in after; keep it once",
                                          {"name": name, "at": f"after[{index}]"})
            seen.add(name)

    def _mode_text(self, table: TableBase) -> str:
        mode = self.settings_for(table).mode
        return mode if table.mode else f"{mode} (from defaults.mode)"

    def _check_mode_needs(self, index: int, table: TableBase) -> None:
        mode = self.settings_for(table).mode
        if mode == "incremental" and not table.cursor:
            raise _at(index, "cursor", "needs_cursor",
                      "table '{name}' has mode {mode} but no cursor: set cursor to a column "
                      "that grows with every change (e.g. updated_at), or choose mode append or full",
                      name=table.name, mode=self._mode_text(table))
        if mode in ("merge", "scd2") and not table.primary_key:
            raise _at(index, "primary_key", "needs_key",
                      "table '{name}' has mode {mode} but no primary_key: set primary_key to the "
                      "column(s) identifying a row, or choose mode append or full",
                      name=table.name, mode=self._mode_text(table))
        problem = lookback_problem(table, mode)
        if problem:
            raise _at(index, problem[0], problem[1], problem[2], name=table.name, mode=self._mode_text(table),
                      lookback=table.lookback)

    def _check_type_mapping(self, index: int, table: TableBase) -> None:
        """A table's type_mapping rule must apply to this source type (else it would do nothing)."""
        mapping = getattr(table, "type_mapping", None)
        if not mapping:
            return
        from ingestion_core.typemap.databricks import RULES, RULES_BY_NAME

        for rule in mapping:
            if rule in RULES_BY_NAME and self.source_type not in RULES_BY_NAME[rule].source_types:
                valid = [r.name for r in RULES if self.source_type in r.source_types]
                raise _at(index, f"type_mapping.{rule}", "type_mapping_source",
                          "type rule {rule} is for {types} sources, not {source}, so it would change "
                          "nothing; remove it (rules for {source}: {valid})",
                          rule=rule, types=" / ".join(RULES_BY_NAME[rule].source_types),
                          source=self.source_type, valid=", ".join(valid) or "none")

    def _check_destination(self, known: Any) -> None:
        """With the destinations in the validation context: the name exists, and merge / scd2
        tables go to a destination that can merge."""
        if known is None:
            return
        if self.destination not in known:
            raise PydanticCustomError(
                "unknown_destination",
                "destination '{name}' does not exist; choose one of {valid} or add "
                "configs/destinations/{name}.yaml",
                {"name": self.destination, "valid": ", ".join(sorted(known)) or "(none yet)",
                 "at": "destination"},
            )
        destination = known.get(self.destination) if isinstance(known, dict) else None
        for index, table in enumerate(self.tables):  # type: ignore[attr-defined]
            if table.lookback and mode_refusal(destination, self.destination, "merge"):
                raise _at(index, "lookback", "lookback_merge",
                          "table '{name}' has lookback, which loads the rows it reads again once by merging on "
                          "primary_key, but destination '{dest}' {why}; or remove lookback",
                          name=table.name, dest=self.destination,
                          why=mode_refusal(destination, self.destination, "merge")[0])  # type: ignore[index]
            refusal = mode_refusal(destination, self.destination, self.settings_for(table).mode)
            if refusal:
                raise _at(index, "mode", "mode_unsupported",
                          "table '{name}' has mode {mode}, but destination '{dest}' {why}; or choose mode {modes}",
                          name=table.name, mode=self._mode_text(table), dest=self.destination,
                          why=refusal[0], modes=", ".join(refusal[1]))


def _at(index: int, field: str, kind: str, message: str, **context: Any) -> PydanticCustomError:
    """An error that the formatter reports at ``tables[index].field``."""
    return PydanticCustomError(kind, message, {**context, "at": f"tables[{index}].{field}"})


def _file_model(source_type: str, table_model: type[TableBase]) -> type[SourceFileBase]:
    source_model = SOURCE_MODELS[source_type]
    return create_model(
        f"{source_model.__name__}File",
        __base__=SourceFileBase,
        __doc__=f"A source file whose source.type is {source_type}.",
        source=(source_model, Field(description="How to connect to the source.")),
        tables=(list[table_model], Field(min_length=1, description=TABLES_HELP[table_model])),
    )


TABLES_HELP = {
    SqlTable: "Tables to load, each with its own settings.",
    FileTable: "File sets to load: each a glob and a format, read into one table.",
    RestResource: "Endpoints to load: each resource becomes one table.",
}
TABLE_MODELS = {**{t: SqlTable for t in SQL_SOURCE_TYPES}, "rest_api": RestResource, "filesystem": FileTable}
SOURCE_FILE_MODELS: dict[str, type[SourceFileBase]] = {
    t: _file_model(t, TABLE_MODELS[t]) for t in SOURCE_MODELS
}


def _source_type(data: Any) -> str | None:
    if isinstance(data, SourceFileBase):
        return data.source_type
    if isinstance(data, dict) and isinstance(data.get("source"), dict):
        value = data["source"].get("type")
        return value if isinstance(value, str) else None
    return None


SourceFile = Annotated[
    Union[tuple(Annotated[model, Tag(kind)] for kind, model in SOURCE_FILE_MODELS.items())],  # noqa: UP007
    Discriminator(
        _source_type,
        custom_error_type="unknown_source_type",
        custom_error_message="source.type is missing or unknown",
    ),
]


@functools.cache
def source_file_adapter() -> TypeAdapter[Any]:
    """The union of every file model, built on first use (a rejected file, the JSON Schema): a
    valid file is validated by its own model alone (:func:`parse_source_file`). The file models
    are completed first, so the union's JSON Schema is the same as when all were built at import."""
    for model in SOURCE_FILE_MODELS.values():
        model.model_rebuild()
    # hide_input_in_errors: a rejected file may hold a literal secret; str(error) must not show it.
    return TypeAdapter(SourceFile, config=ConfigDict(hide_input_in_errors=True))


def __getattr__(name: str) -> Any:
    if name == "SOURCE_FILE_ADAPTER":  # built lazily, see source_file_adapter
        return source_file_adapter()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def parse_source_file(data: Any, destinations: Collection[str] | None = None) -> SourceFileBase:
    """Validate a source file's data.

    ``destinations``: the known destination names, or a mapping name -> destination model (None
    for an invalid file); with it the destination must exist and be able to merge when a table
    merges.
    """
    context = {"destinations": destinations} if destinations is not None else None
    model = SOURCE_FILE_MODELS.get(_source_type(data) or "") if isinstance(data, dict) else None
    if model is not None:
        with contextlib.suppress(ValidationError):  # the union reports the errors, located as always
            return model.model_validate(data, context=context)
    return source_file_adapter().validate_python(data, context=context)
