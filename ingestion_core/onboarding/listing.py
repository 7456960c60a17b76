"""Rows of the sources list: each source's summary with its newest run."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ingestion_core.config.store import ConfigStore, SourceSummary
from ingestion_core.onboarding.table_check import TableCheck, check_sources

# --- the sources list ----------------------------------------------------------------------

@dataclass(frozen=True)
class SourceRow:
    summary: SourceSummary
    last_status: str | None = None
    last_started: datetime | None = None
    last_kind: str | None = None
    tables_check: TableCheck | None = None  # discovery's answer: are the tables in the database?

    @property
    def valid(self) -> bool:
        """Valid on paper and no table the database says it lacks."""
        return self.summary.valid and (self.tables_check is None or self.tables_check.state != "missing")

    @property
    def checked_summary(self) -> SourceSummary:
        """The summary with discovery's missing tables among its problems."""
        if self.valid or self.tables_check is None:
            return self.summary
        return replace(self.summary, valid=False, issues=[*self.summary.issues, *self.tables_check.issues])


def last_runs(limit: int = 2000) -> dict[str, dict[str, Any]]:
    """The newest run record of each source (real runs before previews)."""
    from ingestion_core.observe.records import latest_runs

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


def source_rows(store: ConfigStore | None = None, runs: dict[str, dict[str, Any]] | None = None,
                summaries: list[SourceSummary] | None = None, check_tables: bool = False) -> list[SourceRow]:
    """A row per source; ``check_tables`` asks each valid database source's server whether its
    tables exist (bounded and cached: :func:`check_sources`)."""
    store = store or ConfigStore()
    runs = last_runs() if runs is None else runs
    summaries = store.list_sources() if summaries is None else summaries
    checks = check_sources(store, [s.name for s in summaries if s.valid]) if check_tables else {}
    rows = []
    for summary in summaries:
        run = runs.get(summary.name) or {}
        rows.append(SourceRow(summary, run.get("status"), run.get("started_at"), run.get("kind"),
                              checks.get(summary.name)))
    return rows
