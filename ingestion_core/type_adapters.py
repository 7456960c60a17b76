"""Type adapters keyed by (source type, destination type), applied at reflection time through
dlt's ``type_adapter_callback``: they change the SQLAlchemy type a column is read as, before
any row is read (e.g. Oracle NUMBER without precision -> double on Databricks).

``"*"`` as the destination matches every destination. Adapters run in registration order; the
first one that returns a type wins.

The type plan (:mod:`ingestion_core.type_fidelity`) consults them before its own rules: a column
an adapter takes lands as the adapter's type, shown as ``converted`` in the run record's
``type_decisions``; a table's ``column_types`` choice takes precedence over both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TypeAdapter = Callable[[Any], Any]
TYPE_ADAPTERS: dict[tuple[str, str], list[TypeAdapter]] = {}


def register_type_adapter(source_type: str, destination_type: str = "*"):
    def register(func: TypeAdapter) -> TypeAdapter:
        TYPE_ADAPTERS.setdefault((source_type, destination_type), []).append(func)
        return func
    return register


def type_adapter_for(source_type: str, destination_type: str) -> TypeAdapter | None:
    """One callback composing every adapter for the pair, or None when there is none."""
    adapters = TYPE_ADAPTERS.get((source_type, destination_type), []) + TYPE_ADAPTERS.get((source_type, "*"), [])
    if not adapters:
        return None

    def adapt(sql_type: Any) -> Any:
        for adapter in adapters:
            result = adapter(sql_type)
            if result is not None:
                return result
        return None

    return adapt
