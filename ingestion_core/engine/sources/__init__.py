"""Source kinds, registered by ``source.type``: each builds dlt resources for the tables of a
config and answers test-connection and discovery.

Adding a source kind = one module here that calls :func:`register_source`, its model in
``models/sources.py``, a template and tests.
"""

from __future__ import annotations

import datetime
import importlib
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from ingestion_core.config.models.source_file import SourceFileBase, TableSettings
from ingestion_core.config.models.tables import TableBase
from ingestion_core.config.secrets import mask


@dataclass
class ConnectionReport:
    """What ``test_connection`` found: ok, or the reason and what to do about it."""

    ok: bool
    reason: str = ""
    mitigation: str = ""
    duration_s: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "reason": mask(self.reason), "mitigation": self.mitigation,
                "duration_s": round(self.duration_s, 3), "details": self.details}


@dataclass(frozen=True)
class BuildContext:
    """What a source kind needs to build a table's resource."""

    config: SourceFileBase
    table: TableBase
    settings: TableSettings
    destination_type: str
    limit: int | None = None  # preview: read at most this many rows
    backend_override: str | None = None  # the runner's fallback after a backend failed
    pipeline: str = ""  # the dlt pipeline the table is loaded by
    cancel: Any = None  # the run's cancel event (threading.Event), for readers that batch pages
    file_format: str | None = None  # the destination's loader file format (parquet, jsonl ...)


def reads_incrementally(ctx: BuildContext) -> bool:
    """incremental mode, or merge with a cursor: only rows past the last cursor value are read."""
    return ctx.settings.mode in ("incremental", "merge") and bool(ctx.table.cursor)


def lookback_lag(table: TableBase, cursor_kind: Any = None) -> float | None:
    """The table's ``lookback`` as dlt's incremental ``lag``, in the unit dlt reads it in: days
    (whole, rounded up) when the cursor holds dates, seconds otherwise (timestamps, and numbers
    such as epoch seconds). ``cursor_kind``: the cursor column's Python type, or a value of it
    (e.g. initial_value) when the type is not known before reading. None without lookback."""
    if not table.lookback:
        return None
    from ingestion_core.config.models.base import parse_duration

    seconds = parse_duration(table.lookback).total_seconds()
    return float(math.ceil(seconds / 86400)) if _holds_dates(cursor_kind) else seconds


def _holds_dates(kind: Any) -> bool:
    if isinstance(kind, type):
        return issubclass(kind, datetime.date) and not issubclass(kind, datetime.datetime)
    if isinstance(kind, str):
        return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}|\d{8}", kind.strip()))
    return isinstance(kind, datetime.date) and not isinstance(kind, datetime.datetime)


class SourceKind(Protocol):
    def resource(self, ctx: BuildContext) -> Any:
        """A dlt resource yielding the table's rows (hints applied by the runner)."""

    def test_connection(self, config: SourceFileBase) -> ConnectionReport: ...


SOURCES: dict[str, SourceKind] = {}


def register_source(*types: str):
    def register(cls: type) -> type:
        for kind in types:
            SOURCES[kind] = cls()
        return cls
    return register


class UnsupportedSourceError(LookupError):
    pass


class ReadAgainError(Exception):
    """A backend cannot land these rows exactly: the runner reads the table again with its
    fallback backend (``pipeline.runner.FALLBACKS``)."""


BUILTIN_MODULES = {"filesystem": "files", "rest_api": "rest"}
"""Source type -> module of this package that registers it (every other type: ``sql``). Only the
module a run needs is imported: a SQL preview does not pay for the REST and file readers."""


def reader_module(source_type: str) -> str:
    """The module of this package that reads ``source_type`` (sql, rest, files): also the key of
    the dlt modules its runs import (``ingestion_core.common.preload.SOURCE_MODULES``)."""
    return BUILTIN_MODULES.get(source_type, "sql")


def get_source_kind(source_type: str) -> SourceKind:
    if source_type not in SOURCES:
        importlib.import_module(f"ingestion_core.engine.sources.{reader_module(source_type)}")
    try:
        return SOURCES[source_type]
    except KeyError:
        _load_builtin()
        raise UnsupportedSourceError(
            f"no runner for source type '{source_type}'; runnable types: {', '.join(sorted(SOURCES))}"
        ) from None


def _load_builtin() -> None:
    for module in {*BUILTIN_MODULES.values(), "sql"}:
        importlib.import_module(f"ingestion_core.engine.sources.{module}")  # modules register themselves


def test_connection(config: SourceFileBase) -> ConnectionReport:
    """One cheap round trip to the source; never raises for an unreachable source."""
    started = time.monotonic()
    try:
        report = get_source_kind(config.source_type).test_connection(config)
    except Exception as exc:  # report, never crash the caller
        from ingestion_core.engine.errors import explain

        reason, hint = explain(exc)
        report = ConnectionReport(False, reason, hint)
    report.duration_s = time.monotonic() - started
    return report
