"""Pydantic v2 config models: sources, tables, destinations, checks, run settings."""

from typing import Any

from ingestion_core.config.models.destinations import DESTINATION_ADAPTER, DestinationConfig
from ingestion_core.config.models.source_file import (
    SOURCE_FILE_MODELS,
    SourceFileBase,
    parse_source_file,
    source_file_adapter,
)

__all__ = [
    "DESTINATION_ADAPTER",
    "SOURCE_FILE_ADAPTER",
    "SOURCE_FILE_MODELS",
    "DestinationConfig",
    "SourceFileBase",
    "parse_source_file",
    "source_file_adapter",
]


def __getattr__(name: str) -> Any:
    if name == "SOURCE_FILE_ADAPTER":  # built on first use (see source_file.source_file_adapter)
        return source_file_adapter()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
