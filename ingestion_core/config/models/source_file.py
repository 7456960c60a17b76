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
    AfterValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

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
    def _table_names_once(self) -> SourceFileBase:
        """Each table name once (checked when every table validated; each table's own needs are
        checked with the table, :func:`_table_in_file`, so a file reports them all at once)."""
        seen: set[str] = set()
        problems = []
        for index, table in enumerate(self.tables):  # type: ignore[attr-defined]
            if table.name in seen:
                problems.append(_at(index, "name", "duplicate_table",
                                    "table name '{name}' appears twice; give each table its own name",
                                    name=table.name))
            seen.add(table.name)
        raise_all(problems, type(self).__name__)
        return self

    @field_validator("after")
    @classmethod
    def _after_in_file(cls, after: list[str], info: ValidationInfo) -> list[str]:
        """Within the file: no dependency on itself, none twice (other sources: ``dependencies``)."""
        problems: list[tuple[tuple[int, ...], PydanticCustomError]] = []
        seen: set[str] = set()
        for index, name in enumerate(after):
            if name == info.data.get("name"):
                problems.append(((index,), PydanticCustomError(
                    "self_dependency", "a source cannot run after itself; remove '{name}' from after", {"name": name})))
            elif name in seen:
                problems.append(((index,), PydanticCustomError(
                    "duplicate_dependency", "'{name}' appears twice in after; keep it once", {"name": name})))
            seen.add(name)
        raise_at(problems, "after")
        return after

    @field_validator("destination")
    @classmethod
    def _destination_known(cls, destination: str, info: ValidationInfo) -> str:
        """With the destinations in the validation context, the name is one of them (what each
        table asks of it is checked with the table)."""
        known = (info.context or {}).get("destinations")
        if known is not None and destination not in known:
            raise PydanticCustomError(
                "unknown_destination",
                "destination '{name}' does not exist; choose one of {valid} or add "
                "configs/destinations/{name}.yaml",
                {"name": destination, "valid": ", ".join(sorted(known)) or "(none yet)"},
            )
        return destination


def _table_in_file(table: TableBase, info: ValidationInfo) -> TableBase:
    """A table that validated on its own, then what the file around it asks of it (its mode,
    inherited from ``defaults``; the source type; the destination): all of its problems at once.
    A table whose own fields are wrong is reported by those first: its mode may be the wrong key."""
    raise_all(table_problems(table, _FileAround.of(info)), type(table).__name__)
    return table


@dataclass(frozen=True)
class _FileAround:
    """The fields of the file a table's checks read: those that validated before ``tables``."""

    defaults: TableDefaults | None
    source_type: str | None
    destination_name: str | None
    destinations: Any  # names, or name -> destination model; None: not checked

    @classmethod
    def of(cls, info: ValidationInfo) -> _FileAround:
        data = info.data or {}
        source = data.get("source")
        return cls(data.get("defaults"), getattr(source, "type", None), data.get("destination"),
                   (info.context or {}).get("destinations"))

    def mode(self, table: TableBase) -> str | None:
        return table.mode or (self.defaults.mode if self.defaults else None)

    def mode_text(self, table: TableBase) -> str:
        return table.mode or f"{self.mode(table)} (from defaults.mode)"


def table_problems(table: TableBase, file: _FileAround) -> list[PydanticCustomError]:
    """Every problem of one table in its file: what its mode needs, its type rules, its destination."""
    return [*_mode_needs(table, file), *_type_mapping_problems(table, file), *_destination_fit(table, file)]


def _mode_needs(table: TableBase, file: _FileAround) -> list[PydanticCustomError]:
    mode = file.mode(table)
    if mode is None:  # defaults did not validate: reported there
        return []
    problems = []
    if mode == "incremental" and not table.cursor:
        problems.append(_here("cursor", "needs_cursor",
                              "table '{name}' has mode {mode} but no cursor: set cursor to a column "
                              "that grows with every change (e.g. updated_at), or choose mode append or full",
                              name=table.name, mode=file.mode_text(table)))
    if mode in ("merge", "scd2") and not table.primary_key:
        problems.append(_here("primary_key", "needs_key",
                              "table '{name}' has mode {mode} but no primary_key: set primary_key to the "
                              "column(s) identifying a row, or choose mode append or full",
                              name=table.name, mode=file.mode_text(table)))
    problem = lookback_problem(table, mode)
    if problem:
        problems.append(_here(problem[0], problem[1], problem[2], name=table.name, mode=file.mode_text(table),
                              lookback=table.lookback))
    return problems


def _type_mapping_problems(table: TableBase, file: _FileAround) -> list[PydanticCustomError]:
    """A table's type_mapping rule must apply to this source type (else it would do nothing)."""
    mapping = getattr(table, "type_mapping", None)
    if not mapping or file.source_type is None:
        return []
    from ingestion_core.typemap.databricks import RULES, RULES_BY_NAME

    valid = ", ".join(r.name for r in RULES if file.source_type in r.source_types) or "none"
    return [_here(f"type_mapping.{rule}", "type_mapping_source",
                  "type rule {rule} is for {types} sources, not {source}, so it would change "
                  "nothing; remove it (rules for {source}: {valid})",
                  rule=rule, types=" / ".join(RULES_BY_NAME[rule].source_types), source=file.source_type, valid=valid)
            for rule in mapping
            if rule in RULES_BY_NAME and file.source_type not in RULES_BY_NAME[rule].source_types]


def _destination_fit(table: TableBase, file: _FileAround) -> list[PydanticCustomError]:
    """With the destinations in the validation context: a merge / scd2 table, or one with lookback,
    goes to a destination that can merge (an unknown destination is the file's problem)."""
    known, name = file.destinations, file.destination_name
    mode = file.mode(table)
    if known is None or name is None or name not in known or mode is None:
        return []
    destination = known.get(name) if isinstance(known, dict) else None
    problems = []
    merge_refusal = mode_refusal(destination, name, "merge")
    if table.lookback and merge_refusal:
        problems.append(_here("lookback", "lookback_merge",
                              "table '{name}' has lookback, which loads the rows it reads again once by merging on "
                              "primary_key, but destination '{dest}' {why}; or remove lookback",
                              name=table.name, dest=name, why=merge_refusal[0]))
    refusal = mode_refusal(destination, name, mode)
    if refusal:
        problems.append(_here("mode", "mode_unsupported",
                              "table '{name}' has mode {mode}, but destination '{dest}' {why}; or choose mode {modes}",
                              name=table.name, mode=file.mode_text(table), dest=name, why=refusal[0],
                              modes=", ".join(refusal[1])))
    return problems


def raise_all(problems: list[PydanticCustomError], title: str) -> None:
    """Raises every problem at once, each where the validator runs (see :func:`raise_at`)."""
    raise_at([((), problem) for problem in problems], title)


def raise_at(problems: list[tuple[tuple[int | str, ...], PydanticCustomError]], title: str) -> None:
    """Raises every (location below the validator's, problem) at once: a validator may raise one
    error, or a ValidationError holding several, which Pydantic reports beside the other errors."""
    if problems:
        raise ValidationError.from_exception_data(title, [InitErrorDetails(type=problem, loc=loc, input=None)
                                                          for loc, problem in problems])


def _at(index: int, field: str, kind: str, message: str, **context: Any) -> PydanticCustomError:
    """An error that the formatter reports at ``tables[index].field``."""
    return _here(f"tables[{index}].{field}", kind, message, **context)


def _here(field: str, kind: str, message: str, **context: Any) -> PydanticCustomError:
    """An error that the formatter reports at ``field`` below where it was raised."""
    return PydanticCustomError(kind, message, {**context, "at": field})


def _file_model(source_type: str, table_model: type[TableBase]) -> type[SourceFileBase]:
    source_model = SOURCE_MODELS[source_type]
    return create_model(
        f"{source_model.__name__}File",
        __base__=SourceFileBase,
        __doc__=f"A source file whose source.type is {source_type}.",
        source=(source_model, Field(description="How to connect to the source.")),
        tables=(list[Annotated[table_model, AfterValidator(_table_in_file)]],
                Field(min_length=1, description=TABLES_HELP[table_model])),
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
