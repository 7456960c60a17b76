"""Pydantic v2 config models: sources, tables, destinations, checks, run settings."""

from ingestion_core.models.destinations import DESTINATION_ADAPTER, DestinationConfig
from ingestion_core.models.source_file import (
    SOURCE_FILE_ADAPTER,
    SOURCE_FILE_MODELS,
    SourceFileBase,
    parse_source_file,
)

__all__ = [
    "DESTINATION_ADAPTER",
    "SOURCE_FILE_ADAPTER",
    "SOURCE_FILE_MODELS",
    "DestinationConfig",
    "SourceFileBase",
    "parse_source_file",
]
