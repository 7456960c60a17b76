"""Rows of the sources list: each source's summary with its newest run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ingestion_core.config_store import ConfigStore, SourceSummary

# --- the sources list ----------------------------------------------------------------------

@dataclass(frozen=True)
class SourceRow:
    summary: SourceSummary
    last_status: str | None = None
    last_started: datetime | None = None
    last_kind: str | None = None


def last_runs(limit: int = 2000) -> dict[str, dict[str, Any]]:
    """The newest run record of each source (real runs before previews)."""
    from ingestion_core.records import latest_runs

    newest: dict[str, dict[str, Any]] = {}
    try:
        runs = latest_runs(limit=limit)
    except Exception:  # unreadable records must not hide the sources list
        return {}
    for run in runs:
        source, current = run.get("source"), newest.get(run.get("source"))
        if current is None or (current.get("kind") == "preview" and run.get("kind") == "run"):
            newest[source] = run
    return newest


def source_rows(store: ConfigStore | None = None, runs: dict[str, dict[str, Any]] | None = None) -> list[SourceRow]:
    store = store or ConfigStore()
    runs = last_runs() if runs is None else runs
    rows = []
    for summary in store.list_sources():
        run = runs.get(summary.name) or {}
        rows.append(SourceRow(summary, run.get("status"), run.get("started_at"), run.get("kind")))
    return rows
