"""Cached reads of the run records for the dashboards.

Every dashboard page works from one :func:`run_data` per rerun: one DuckDB scan of the
records folder (``load_run_data``), kept for ``TTL_SECONDS``. The cache key holds a fingerprint
of the day folders (``runs/YYYY/MM/DD``): a record written, rewritten (temp file + rename) or
pruned changes its folder's mtime, so a finished run shows at once; the TTL covers records on
object stores and runs turning ``abandoned``. Whatever ends a run in the portal calls
:func:`clear` as well.

The figures that cost more than a reshape (anomalies, quality results) are cached on the
same key, so each is computed once per change of the records.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from ingestion_core.common import settings
from ingestion_core.config.store import ConfigStore
from ingestion_core.observe import run_metrics
from ingestion_core.observe.run_metrics import RunData
from portal.shared import data as config_data

TTL_SECONDS = 30
Fingerprint = tuple[tuple[str, int], ...]


def records_fingerprint(runs_dir: str) -> Fingerprint:
    """(day folder, mtime_ns) of every ``YYYY/MM/DD`` folder; empty for an fsspec URL."""
    if "://" in runs_dir:
        return ()
    root = Path(runs_dir)
    entries = []
    for folder in root.glob("*/*/*"):
        try:
            stat = folder.stat()
        except FileNotFoundError:  # pruned between glob and stat
            continue
        entries.append((str(folder.relative_to(root)), stat.st_mtime_ns))
    return tuple(sorted(entries))


@st.cache_data(ttl=TTL_SECONDS, max_entries=3, show_spinner="Reading the run records...")
def _load(runs_dir: str, fingerprint: Fingerprint) -> RunData:
    return run_metrics.load_run_data()


# The derived figures are keyed like the records; the page passes the records it already has
# as ``_data`` (a leading underscore: not hashed), so they are not unpickled twice. A record
# written between the two calls of one rerun can leave these a rerun behind, for TTL_SECONDS
# at most.

@st.cache_data(ttl=TTL_SECONDS, max_entries=3, show_spinner=False)
def _anomalies(runs_dir: str, fingerprint: Fingerprint, _data: RunData) -> pd.DataFrame:
    return run_metrics.anomalies(_data)


@st.cache_data(ttl=TTL_SECONDS, max_entries=6, show_spinner="Reading the quality results...")
def _quality(runs_dir: str, fingerprint: Fingerprint, start: datetime | None, end: datetime | None,
             previews: bool, _data: RunData) -> pd.DataFrame:
    kinds = ["run", "preview"] if previews else ["run"]
    return run_metrics.quality_results(run_metrics.filter_runs(_data, start, end, kind=kinds))


def _key() -> tuple[str, Fingerprint]:
    runs_dir = settings.runs_dir()
    return runs_dir, records_fingerprint(runs_dir)


def run_data() -> RunData:
    """Every run record (runs newest first, per-table rows, unreadable files)."""
    return _load(*_key())


def anomalies(data: RunData) -> pd.DataFrame:
    """``run_metrics.anomalies`` over ``data`` (from :func:`run_data` in the same rerun)."""
    return _anomalies(*_key(), _data=data)


def quality(data: RunData, start: datetime | None = None, end: datetime | None = None,
            previews: bool = True) -> pd.DataFrame:
    """``run_metrics.quality_results`` of the runs of ``data`` started in [start, end), previews
    included unless told otherwise: only the chosen dates are expanded into check results."""
    return _quality(*_key(), start, end, previews, _data=data)


def schedules() -> dict[str, str | None]:
    """Each configured source's schedule; None when it has none, is disabled or invalid (as
    ``ingest alerts`` sees it)."""
    return {s.name: (s.schedule if s.valid and s.enabled else None) for s in config_data.source_summaries()}


def timezones() -> dict[str, str]:
    """Each configured source's schedule time zone."""
    return {s.name: s.timezone for s in config_data.source_summaries()}


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def _first_seen(config_dir: str) -> dict[str, datetime]:
    return ConfigStore().first_seen("sources")


def first_seen() -> dict[str, datetime]:
    """When each source was created (``ConfigStore.first_seen``): no source is late before its
    first scheduled run."""
    return _first_seen(str(settings.config_dir()))


def clear() -> None:
    """Forget the cached records: call it when a run ends, or from a Refresh button."""
    _load.clear()
    _anomalies.clear()
    _quality.clear()
    _first_seen.clear()
