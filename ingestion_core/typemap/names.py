"""One name per landed column type, shown alike in a run's type decisions and in its landed
schema (a 32-bit integer is ``integer`` in both, never ``integer`` next to ``bigint``).

Example::

    type_text({"data_type": "bigint", "precision": 16})   # 'smallint'
    type_text({"data_type": "decimal", "precision": 12, "scale": 2})   # 'decimal(12,2)'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

INTEGER_NAMES = {8: "tinyint", 16: "smallint", 32: "integer", 64: "bigint"}  # dlt's bigint precision = bits
SIZED = ("text", "binary", "time")


def type_text(column: Mapping[str, Any]) -> str:
    """The type a dlt column (``data_type`` with ``precision`` / ``scale`` / ``timezone`` hints)
    lands as; ``-`` when it has none."""
    kind = column.get("data_type") or ""
    precision = column.get("precision")
    if kind == "bigint":
        return INTEGER_NAMES.get(precision, "bigint")
    if kind == "decimal" and precision is not None:
        return f"decimal({precision},{column.get('scale') or 0})"
    if kind == "timestamp":
        base = f"timestamp({precision})" if precision is not None else "timestamp"
        return base + (" with time zone" if column.get("timezone") is True else "")
    if kind in SIZED and precision is not None:
        return f"{kind}({precision})"
    return kind or "-"
