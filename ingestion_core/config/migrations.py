"""Keeps old YAML working: renamed keys are moved to their new names with a warning, and a file
of an older ``version`` is upgraded step by step before validation.

To rename a field: add ``(path pattern, old key, new key)`` to :data:`RENAMED_KEYS`. To change
the format: bump ``CURRENT_VERSION`` and register a step in :data:`VERSION_STEPS`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from ingestion_core.config.models.source_file import CURRENT_VERSION
from ingestion_core.config.validation import ConfigIssue

# (where, old key, new key); where is "" for the top level, "tables[]" for every table, or a
# top-level key ("source", "defaults").
RENAMED_KEYS: list[tuple[str, str, str]] = [
    ("tables[]", "watermark_column", "cursor"),
    ("tables[]", "incremental_column", "cursor"),
    ("tables[]", "last_watermark", "initial_value"),
    ("tables[]", "write_disposition", "mode"),
    ("defaults", "write_disposition", "mode"),
    ("tables[]", "table_name", "name"),
    ("tables[]", "schema_name", "schema"),
    ("source", "user", "username"),
    ("source", "dbname", "database"),
    ("", "team", "owner"),
]
# old values of renamed keys whose meaning changed with the name
RENAMED_VALUES = {("mode", "replace"): "full"}

VERSION_STEPS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}
"""``VERSION_STEPS[n]`` turns a version-n document into a version-n+1 one."""


def migrate(data: Any) -> tuple[Any, list[ConfigIssue]]:
    """Returns an upgraded copy of a loaded source file and a warning per change made."""
    if not isinstance(data, dict):
        return data, []
    data = copy.deepcopy(data)
    warnings: list[ConfigIssue] = []
    version = data.get("version", CURRENT_VERSION)
    if isinstance(version, int) and version > CURRENT_VERSION:
        raise_newer(version)
    while isinstance(version, int) and version < CURRENT_VERSION and version in VERSION_STEPS:
        data = VERSION_STEPS[version](data)
        warnings.append(ConfigIssue("version", f"upgraded from version {version}; save to keep it", "warning"))
        version += 1
        data["version"] = version
    for where, old, new in RENAMED_KEYS:
        for path, node in _nodes(data, where):
            if isinstance(node, dict) and old in node:
                warnings.append(_rename(node, old, new, path))
    return data, warnings


def _nodes(data: dict[str, Any], where: str) -> list[tuple[str, Any]]:
    if where == "":
        return [("", data)]
    if where == "tables[]":
        tables = data.get("tables")
        return [(f"tables[{i}]", t) for i, t in enumerate(tables)] if isinstance(tables, list) else []
    return [(where, data.get(where))]


def _rename(node: dict[str, Any], old: str, new: str, path: str) -> ConfigIssue:
    where = f"{path}.{old}" if path else old
    if new in node:
        node.pop(old)
        message = f"'{old}' is an old name of '{new}', which is also set; '{old}' was ignored. Remove it"
        return ConfigIssue(where, message, "warning")
    value = node.pop(old)
    node[new] = RENAMED_VALUES.get((new, value), value) if isinstance(value, str) else value
    if node[new] is not value:
        return ConfigIssue(where, f"'{old}' is now called '{new}'; write {new}: {node[new]} "
                                  f"(it was read as {new}: {node[new]}, the new name of {value})", "warning")
    return ConfigIssue(where, f"'{old}' is now called '{new}'; rename it (it was read as '{new}')", "warning")


class NewerVersionError(ValueError):
    pass


def raise_newer(version: int) -> None:
    raise NewerVersionError(
        f"version {version} was written by a newer release of the portal (this one reads up to "
        f"{CURRENT_VERSION}); upgrade the portal or set version: {CURRENT_VERSION}"
    )
