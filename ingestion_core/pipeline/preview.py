"""A preview's own steps: several tables through one dlt pipeline (one extract, normalize and
load instead of one of each per table: dlt's fixed cost per step is most of a small preview),
and the sample rows read back from the preview DuckDB file. The runner falls back to a pipeline
per table when the pipeline fails (:func:`preview_together` returns False)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingestion_core.config.models.tables import TableBase
from ingestion_core.engine.errors import describe
from ingestion_core.engine.plan import RunPlan, pipeline_name
from ingestion_core.observe.records import RunRecord
from ingestion_core.observe.run_log import LOGGER
from ingestion_core.pipeline.table_load import (
    after_load,
    ended,
    extract_normalize_load,
    pipeline_for,
    quality_failed,
    record_failure,
    table_resource,
)


def preview_together(plan: RunPlan, tables: list[TableBase]) -> bool:
    """A preview of several tables through one dlt pipeline: one extract, normalize and load for
    all of them, instead of one of each per table (dlt's fixed cost per pipeline step is most of a
    small preview). A table whose resource cannot be built (a refused column) fails alone. True
    when every other table loaded; False when the pipeline failed, and then nothing of it counts:
    the caller previews each table on its own, so one table's error never hides the others'."""

    started, built = datetime.now(UTC), []
    for table, result in zip(tables, plan.record.tables, strict=True):
        result.status, result.started_at, result.attempts = "running", started, 1
        try:
            built.append((table, result, table_resource(plan, table, plan.config.settings_for(table), result, None)))
        except Exception as exc:
            record_failure(plan, table, result, exc)
            ended(result)
    plan.publish()
    if not built:
        return True
    pipeline = pipeline_for(plan, f"{plan.config.name}___preview")  # ___: never the pipeline of a table
    try:
        if pipeline.has_pending_data:  # a preview killed mid-way: its data is disposable
            pipeline.abort_packages()
        loaded = extract_normalize_load(plan, pipeline, [r for _, _, r in built], "drop_sources", "preview")
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        if plan.cancel.is_set():
            for _, result, _ in built:
                result.status = "cancelled"
                ended(result)
            plan.publish()
            return True
        LOGGER.warning("preview: the tables together failed (%s); each table again on its own", describe(exc))
        with contextlib.suppress(Exception):
            pipeline.abort_packages()
        for result in plan.record.tables:
            result.status, result.error, result.attempts, result.rows_so_far = "pending", None, 0, 0
        return False
    for table, result, _ in built:
        after_load(plan, pipeline, table, result, *loaded, share=1 / len(built))
        result.status = "quality_failed" if quality_failed(result) else "success"
        ended(result)
    plan.publish()
    return True


def samples(plan: RunPlan, record: RunRecord, rows: int) -> dict[str, list[dict[str, Any]]]:
    """The first ``rows`` rows of each previewed table, read back from the preview DuckDB file
    (none asked: the file is not opened)."""
    import duckdb

    samples: dict[str, list[dict[str, Any]]] = {}
    path = plan.destination.location
    if rows < 1 or not Path(path).exists():
        return samples
    with duckdb.connect(path) as connection:  # read-write like the open database it joins (kept_open)
        for result in record.tables:
            if result.status not in ("success", "quality_failed"):
                continue
            landed = plan.landed_names.get(result.name) or pipeline_for(
                plan, pipeline_name(plan.config.name, result.name)
            ).default_schema.naming.normalize_table_identifier(result.name)
            cursor = connection.execute(f'SELECT * FROM "{plan.config.dataset_name}"."{landed}" LIMIT {int(rows)}')
            names = [d[0] for d in cursor.description]
            samples[result.name] = [
                {k: v for k, v in zip(names, row, strict=True) if not k.startswith("_dlt")}
                for row in cursor.fetchall()
            ]
    return samples
