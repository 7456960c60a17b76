"""Destination kinds, registered by ``type``: each turns a destination config into what a dlt
pipeline needs (the destination, staging, file format, table format, merge strategy).

Previews always land in a local DuckDB file: :func:`ingestion_core.engine.destinations.duckdb.preview_plan`.
"""

from __future__ import annotations

import importlib
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class DestinationPlan:
    name: str
    type: str
    destination: Any
    staging: Any = None
    loader_file_format: str | None = "parquet"
    table_format: str | None = None
    merge_strategy: str = "delete-insert"
    serial_load: bool = False  # one load at a time (DuckDB: concurrent DDL conflicts)
    location: str = ""  # where the data lands, for people (no secrets)
    merge_destination: Any = None  # what merge and scd2 tables load through, when not ``destination``

    def destination_for(self, mode: str) -> Any:
        """The dlt destination a table of ``mode`` (full, append, incremental, merge, scd2) loads into."""
        if mode in MERGING_MODES and self.merge_destination is not None:
            return self.merge_destination
        return self.destination


MERGING_MODES = ("merge", "scd2")


DESTINATIONS: dict[str, Callable[[str, Any], DestinationPlan]] = {}
BUILTIN_MODULES = ("databricks", "duckdb", "filesystem")
"""Modules of this package that register destination kinds, loaded by name on first use (as the
source kinds are): the package never imports its kinds, the kinds import the package."""


def register_destination(kind: str):
    def register(func: Callable[[str, Any], DestinationPlan]) -> Callable[[str, Any], DestinationPlan]:
        DESTINATIONS[kind] = func
        return func
    return register


def build_destination(name: str, config: Any) -> DestinationPlan:
    if config.type not in DESTINATIONS:
        for module in BUILTIN_MODULES:
            importlib.import_module(f"ingestion_core.engine.destinations.{module}")  # modules register themselves
    try:
        builder = DESTINATIONS[config.type]
    except KeyError:
        raise LookupError(f"no destination kind '{config.type}'; known: {', '.join(sorted(DESTINATIONS))}") from None
    return builder(name, config)


def resolve_config_once(destination: Any) -> Any:
    """Make ``destination.capabilities()`` resolve its configuration once, not on every call.

    Without a config, dlt's ``capabilities()`` resolves a partial configuration from every
    provider (environment, toml files) each time it is asked: 36 times in a 4-table preview,
    a fifth of its CPU (measured: bench/bench_preview.py). The providers do not change during
    one run and a destination object lives for one run (each run builds its own plan), so the
    first resolved configuration is kept and a copy of it (dlt's ``BaseConfiguration.copy``) passed
    on every later call: dlt then derives the capabilities from it exactly as before
    (``adjust_capabilities``). When the resolution fails, dlt's own fallback runs as before and
    nothing is kept."""
    original = destination.capabilities
    original_configuration = destination.configuration
    kept: list[Any] = []
    capturing = threading.local()  # the table threads share the destination object

    def configuration(self: Any, initial_config: Any, accept_partial: bool = False) -> Any:
        result = original_configuration(initial_config, accept_partial=accept_partial)
        resolved = getattr(capturing, "resolved", None)
        if resolved is not None:
            resolved.append(result.copy())
        return result

    def capabilities(self: Any, config: Any = None, naming: Any = None) -> Any:
        if config is not None:
            return original(config, naming)
        if kept:
            return original(kept[0].copy(), naming)
        capturing.resolved = resolved = []
        try:
            caps = original(None, naming)
        finally:
            capturing.resolved = None
        if len(resolved) == 1:
            kept[:] = resolved
        return caps

    destination.configuration = types.MethodType(configuration, destination)
    destination.capabilities = types.MethodType(capabilities, destination)
    return destination
