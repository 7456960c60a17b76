"""Type adapters keyed by (source type, destination type), applied at reflection time through
dlt's ``type_adapter_callback``: they change the SQLAlchemy type a column is read as, before
any row is read (e.g. Oracle NUMBER without precision -> double on Databricks).

``"*"`` as the destination matches every destination. Adapters run in registration order; the
first one that returns a type wins.

A destination whose adapters are named rules with choices (Databricks: ``type_mapping:`` in the
destination file) registers a *type mapping* instead: ``factory(overrides) -> adapter``. A table
then tunes those rules for itself with its own ``type_mapping:`` (the ``overrides``), on top of
the destination's; the mapping runs before the plain adapters of the pair.

The type plan (:mod:`ingestion_core.typemap.fidelity`) consults them before its own rules: a column
an adapter takes lands as the adapter's type, shown as ``converted`` in the run record's
``type_decisions``; a table's ``column_types`` choice takes precedence over both.

Example::

    adapt = type_adapter_for("oracle", "databricks", {"oracle_number": "bigint"})
    adapt(oracle.NUMBER())   # BigInteger()
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

TypeAdapter = Callable[[Any], Any]
TypeMapping = Callable[[Mapping[str, str]], TypeAdapter]
TYPE_ADAPTERS: dict[tuple[str, str], list[TypeAdapter]] = {}
TYPE_MAPPINGS: dict[tuple[str, str], TypeMapping] = {}


def register_type_adapter(source_type: str, destination_type: str = "*"):
    def register(func: TypeAdapter) -> TypeAdapter:
        TYPE_ADAPTERS.setdefault((source_type, destination_type), []).append(func)
        return func
    return register


def register_type_mapping(source_type: str, destination_type: str):
    """Register ``factory(overrides) -> adapter`` for a pair: rules a table can tune with its
    ``type_mapping:`` (the factory checks the overrides and raises ValueError naming the valid ones)."""
    def register(factory: TypeMapping) -> TypeMapping:
        TYPE_MAPPINGS[(source_type, destination_type)] = factory
        return factory
    return register


def type_adapter_for(source_type: str, destination_type: str,
                     overrides: Mapping[str, str] | None = None) -> TypeAdapter | None:
    """One callback composing every adapter for the pair (a table's ``type_mapping`` as
    ``overrides``), or None when there is none."""
    factory = TYPE_MAPPINGS.get((source_type, destination_type))
    adapters = [factory(overrides or {})] if factory else []
    adapters += TYPE_ADAPTERS.get((source_type, destination_type), []) + TYPE_ADAPTERS.get((source_type, "*"), [])
    if not adapters:
        return None

    def adapt(sql_type: Any) -> Any:
        for adapter in adapters:
            result = adapter(sql_type)
            if result is not None:
                return result
        return None

    return adapt


def table_type_mapping(table: Any) -> dict[str, str]:
    """The choices a table's ``type_mapping:`` sets (only those written in YAML)."""
    return dict(getattr(table, "type_mapping", None) or {})
