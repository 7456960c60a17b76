"""The points where later stages plug into a run, below the runner that calls them.

A module registers by appending to a list (once, at its import): ``ingestion_core.quality``
adds the quality checks and the schema-change events, ``ingestion_core.engine.sources.rest``
its paging checks. The runner (``ingestion_core.pipeline.runner``) calls every hook of the list
in order; a hook writes into the table's result (e.g. ``result.quality``) and never raises.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ingestion_core.config.models.tables import TableBase
    from ingestion_core.observe.records import TableResult

# (dlt pipeline, ingestion_core.engine.plan.RunPlan, table, result): the plan is typed Any here, as
# the plan module sits above the sources that register hooks
AfterTableLoad = Callable[[Any, Any, "TableBase", "TableResult"], None]
AFTER_TABLE_LOAD: list[AfterTableLoad] = []
"""Called after each table loaded, with its dlt pipeline: quality checks and schema-change
events register here and write into the TableResult (e.g. ``result.quality``)."""
AfterTableFailed = Callable[[Any, "TableBase", "TableResult"], None]
AFTER_TABLE_FAILED: list[AfterTableFailed] = []
"""Called after a table's load failed (its checks are recorded as skipped). Hooks must not raise."""
