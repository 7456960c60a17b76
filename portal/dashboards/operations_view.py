"""Daily operation on the dashboards: whether the local scheduler is alive, what executes each
source's schedule (the Sources list), and the schema drift of the latest runs (the Overview)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from ingestion_core.common import settings
from ingestion_core.config.store import ConfigStore
from ingestion_core.observe.run_metrics import FAILED, RunData
from ingestion_core.observe.schedule_status import describe_executor, scheduler_status
from ingestion_core.observe.schema_drift import schema_drift
from portal.dashboards.dashboard_widgets import status_label
from portal.shared.data import source_summaries
from portal.shared.markdown import md_escape

SHORT = {"alive": "local scheduler", "stale": "local scheduler (not responding)",
         "not running": "nothing yet (start: ingest scheduler)", "deployed by ingest deploy": "Databricks job",
         "not scheduled": "-", "disabled": "- (disabled)"}


def executor_labels(summaries: Sequence[Any]) -> dict[str, str]:
    """Source name -> what executes its schedule, in a few words (the Sources list's column)."""
    status = scheduler_status()
    destinations = ConfigStore(settings.config_dir()).destinations()
    return {s.name: SHORT.get(e.state, e.state) for s in summaries
            for e in [describe_executor(s, status=status, destinations=destinations)]}


def scheduler_banner() -> None:
    """One line on the Overview: is the local scheduler running; when it is not and scheduled
    sources need it, a warning naming them with the command that starts it."""
    status = scheduler_status()
    labels = executor_labels(source_summaries())
    waiting = sorted(n for n, label in labels.items() if label in (SHORT["not running"], SHORT["stale"]))
    if status.alive:
        st.caption(f":material/schedule: {md_escape(status.text)}")
    elif waiting:
        st.warning(f"**Nothing runs the schedule of {md_escape(', '.join(waiting))}**: {md_escape(status.text)}",
                   icon=":material/schedule:")


def attention_notes(data: RunData) -> None:
    """The Overview's "Needs attention" additions: the scheduler, then schema drift."""
    scheduler_banner()
    drift_notes(data)


def drift_notes(data: RunData) -> None:
    """Schema drift of each source's latest real run: columns added, removed or retyped."""
    for row in schema_drift(data).to_dict("records"):
        st.info(f"**{md_escape(row['source'])}.{md_escape(row['table'])}**: columns changed in run "
                f"`{row['run_id']}`: {md_escape(row['summary'])}", icon=":material/schema:")


def highlight_health_row(row: Any) -> list[str]:
    """The Overview's sources table: a failing source's row red, a late one's amber."""
    if row["last run"] in {status_label(s) for s in FAILED}:
        return ["background-color: rgba(207, 34, 46, 0.12)"] * len(row)
    if row["freshness"] == "late":
        return ["background-color: rgba(212, 167, 44, 0.20)"] * len(row)
    return [""] * len(row)
