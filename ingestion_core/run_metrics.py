"""The figures behind the operations dashboards, computed from the run records.

One DuckDB scan of the records folder per page render (:func:`load_run_data`, explicit
columns, per-table results parsed by DuckDB into typed lists) feeds every chart; the functions
below only reshape the two DataFrames it returns. Previews are listed in history but left out
of success rates, freshness and anomalies.

Example::

    data = load_run_data()
    success_rates(data, now=datetime.now(UTC))
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from ingestion_core import settings
from ingestion_core.records import RECORD_COLUMNS, _glob, _read_json, is_abandoned

FAILED = ("failed", "partial", "quality_failed", "abandoned")
TABLE_TYPE = ("STRUCT(name VARCHAR, mode VARCHAR, status VARCHAR, backend VARCHAR, \"rows\" BIGINT, bytes BIGINT, "
              "files BIGINT, duration_s DOUBLE, phases JSON, quality JSON, schema_changes JSON, "
              "error STRUCT(error_class VARCHAR, message VARCHAR, hint VARCHAR))[]")
RUN_COLUMNS = {k: v for k, v in RECORD_COLUMNS.items() if k != "tables"}
ANOMALY_WINDOW, ANOMALY_MIN_RUNS, ANOMALY_MADS = 14, 5, 3.0


@dataclass
class RunData:
    runs: pd.DataFrame  # one row per run, newest first
    tables: pd.DataFrame  # one row per (run, table)

    @property
    def real(self) -> pd.DataFrame:
        return self.runs[self.runs["kind"] == "run"]


def load_run_data(since: datetime | None = None) -> RunData:
    """Every run record (or those started since ``since``) in one scan."""
    import duckdb

    columns = {**RUN_COLUMNS, "tables": TABLE_TYPE}
    empty = RunData(pd.DataFrame(columns=[*RUN_COLUMNS, "filename"]), pd.DataFrame(columns=_TABLE_COLUMNS))
    if "://" not in settings.runs_dir() and not any(Path(settings.runs_dir()).glob("*/*/*/*.json")):
        return empty
    where = "run_id IS NOT NULL" + (" AND started_at >= ?" if since else "")
    with duckdb.connect() as connection:
        connection.execute(f"CREATE TEMP TABLE r AS SELECT * FROM {_read_json('?', columns, filename=True)} "
                           f"WHERE {where}", [_glob(), *([since] if since else [])])
        runs = connection.execute("SELECT * EXCLUDE (tables) FROM r ORDER BY started_at DESC").df()
        tables = connection.execute(
            "SELECT run_id, source, kind, started_at, r.status AS run_status, t.name AS \"table\", t.mode, "
            "t.status, t.backend, t.rows, t.bytes, t.files, t.duration_s, t.phases, t.quality, t.schema_changes, "
            "t.error.message AS error FROM r, unnest(r.tables) AS u(t) ORDER BY started_at DESC").df()
    if not runs.empty:
        running = runs["status"] == "running"
        runs.loc[running, "status"] = [
            "abandoned" if is_abandoned(row) else "running" for row in runs[running].to_dict("records")]
    return RunData(runs, tables)


_TABLE_COLUMNS = ["run_id", "source", "kind", "started_at", "run_status", "table", "mode", "status", "backend",
                  "rows", "bytes", "files", "duration_s", "phases", "quality", "schema_changes", "error"]


# --- overview ------------------------------------------------------------------------------

def today_by_status(data: RunData, now: datetime) -> dict[str, int]:
    start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    today = data.real[data.real["started_at"] >= start]
    return {str(k): int(v) for k, v in today["status"].value_counts().items()}


def failing_sources(data: RunData) -> pd.DataFrame:
    """Sources whose latest real run did not succeed, with its error and fix hint."""
    latest = data.real.drop_duplicates("source", keep="first")
    failing = latest[latest["status"].isin(FAILED)].copy()
    failing["message"] = [e.get("message") if isinstance(e, dict) else None for e in failing["error"]]
    failing["hint"] = [e.get("hint") if isinstance(e, dict) else None for e in failing["error"]]
    columns = ["source", "status", "started_at", "message", "hint", "run_id"]
    return failing[columns].astype(object).where(failing[columns].notna(), None).reset_index(drop=True)


def rows_per_day(data: RunData, days: int = 30, now: datetime | None = None) -> pd.DataFrame:
    now = now or datetime.now(UTC)
    recent = data.real[data.real["started_at"] >= now - timedelta(days=days)].copy()
    recent["day"] = recent["started_at"].dt.tz_convert("UTC").dt.date
    return recent.groupby(["day", "source"], as_index=False)["rows_total"].sum().rename(columns={"rows_total": "rows"})


def success_rates(data: RunData, now: datetime) -> pd.DataFrame:
    """Share of real runs that succeeded over the last 7 and 30 days, per source."""
    rows = []
    for source, runs in data.real.groupby("source"):
        entry: dict[str, Any] = {"source": source}
        for days in (7, 30):
            window = runs[runs["started_at"] >= now - timedelta(days=days)]
            finished = window[window["status"] != "running"]
            entry[f"runs_{days}d"] = len(finished)
            entry[f"success_{days}d"] = (finished["status"] == "success").mean() if len(finished) else None
        rows.append(entry)
    return pd.DataFrame(rows, columns=["source", "runs_7d", "success_7d", "runs_30d", "success_30d"])


def freshness(data: RunData, schedules: dict[str, str | None], now: datetime,
              grace: timedelta = timedelta(minutes=30)) -> pd.DataFrame:
    """Time since each source's last successful real run against its schedule.

    A source is late when it has not succeeded since the scheduled time before the last one
    (plus ``grace``): one missed run. Sources without a schedule are 'not scheduled'."""
    from croniter import croniter

    success = data.real[data.real["status"].isin(("success", "quality_failed"))]
    last = success.groupby("source")["ended_at"].max()
    rows = []
    for source, schedule in sorted(schedules.items()):
        finished = last.get(source)
        finished = None if finished is None or pd.isna(finished) else finished.to_pydatetime()
        state, due = "not scheduled", None
        if schedule:
            itr = croniter(schedule, now.astimezone(UTC))
            itr.get_prev(datetime)
            due = itr.get_prev(datetime) + grace  # the run before the latest one must have landed
            state = "late" if finished is None or finished < due else "fresh"
            if finished is None and due > now:
                state = "waiting"
        rows.append({"source": source, "schedule": schedule, "last_success": finished, "due_by": due,
                     "age_s": (now - finished).total_seconds() if finished else None, "state": state})
    return pd.DataFrame(rows, columns=["source", "schedule", "last_success", "due_by", "age_s", "state"])


# --- metrics and anomalies -----------------------------------------------------------------

def table_runs(data: RunData, source: str | None = None, table: str | None = None) -> pd.DataFrame:
    """Per-table results of real runs over time, with throughput and phase seconds."""
    frame = data.tables[data.tables["kind"] == "run"]
    if source:
        frame = frame[frame["source"] == source]
    if table:
        frame = frame[frame["table"] == table]
    frame = frame.copy()
    frame["throughput"] = (frame["rows"] / frame["duration_s"]).where(frame["duration_s"] > 0)
    return frame


def anomalies(data: RunData) -> pd.DataFrame:
    """Runs whose rows or duration lie beyond 3 median absolute deviations from the median of
    that table's previous 14 successful real runs (only when there are at least 5)."""
    frame = data.tables[(data.tables["kind"] == "run") & (data.tables["status"] == "success")]
    flagged = []
    for (source, table), runs in frame.groupby(["source", "table"]):
        runs = runs.sort_values("started_at")
        for position in range(ANOMALY_MIN_RUNS, len(runs)):
            window = runs.iloc[max(0, position - ANOMALY_WINDOW):position]
            current = runs.iloc[position]
            for metric in ("rows", "duration_s"):
                median = window[metric].median()
                mad = (window[metric] - median).abs().median()
                deviation = abs(current[metric] - median)
                if deviation > ANOMALY_MADS * max(mad, _floor(metric, median)):
                    flagged.append({"source": source, "table": table, "run_id": current["run_id"],
                                    "started_at": current["started_at"], "metric": metric,
                                    "value": current[metric], "median": median, "mad": mad})
    return pd.DataFrame(flagged, columns=["source", "table", "run_id", "started_at", "metric", "value", "median",
                                          "mad"])


def _floor(metric: str, median: float) -> float:
    """A MAD of 0 (identical runs) would flag any change: ask for at least 1% of the median."""
    return max(abs(median) * 0.01, 1.0 if metric == "rows" else 0.5)


# --- audit ---------------------------------------------------------------------------------

def run_detail(run_id: str, log_lines: int = 200) -> dict[str, Any]:
    """One run for the drill-down: the record, a log excerpt and the config diff against the
    previous run of the same source."""
    from ingestion_core.records import find_record, latest_runs

    record = find_record(run_id)
    if record is None:
        raise LookupError(f"no run record with id {run_id}")
    log = Path(record.log_path) if record.log_path else None
    excerpt = log.read_text(errors="replace").splitlines()[-log_lines:] if log and log.exists() else []
    earlier = [r for r in latest_runs(source=record.source, limit=200) if r["started_at"] < record.started_at]
    previous = find_record(earlier[0]["run_id"]) if earlier else None
    diff = []
    if previous and previous.config_snapshot != record.config_snapshot:
        diff = list(difflib.unified_diff(previous.config_snapshot.splitlines(), record.config_snapshot.splitlines(),
                                         f"run {previous.run_id}", f"run {record.run_id}", lineterm=""))
    return {"record": record, "log_excerpt": excerpt, "config_diff": diff,
            "previous_run_id": previous.run_id if previous else None}


# --- quality -------------------------------------------------------------------------------

def quality_results(data: RunData) -> pd.DataFrame:
    """One row per check result (previews included, marked by kind), newest first."""
    import json

    rows = []
    for entry in data.tables.to_dict("records"):
        results = entry.get("quality")
        for result in json.loads(results) if isinstance(results, str) else (results or []):
            rows.append({"run_id": entry["run_id"], "source": entry["source"], "kind": entry["kind"],
                         "started_at": entry["started_at"], "table": entry["table"],
                         "check": result.get("check"), "status": result.get("status"),
                         "severity": result.get("severity"), "observed": result.get("observed"),
                         "threshold": result.get("threshold"), "column": result.get("column")})
    return pd.DataFrame(rows, columns=["run_id", "source", "kind", "started_at", "table", "check", "status",
                                       "severity", "observed", "threshold", "column"])


# --- numbers for people --------------------------------------------------------------------

def human_count(value: float | None) -> str:
    if value is None or pd.isna(value):
        return "-"
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}".replace(".0" + suffix, suffix)
    return f"{value:,.0f}"


def human_duration(seconds: float | None) -> str:
    if seconds is None or pd.isna(seconds):
        return "-"
    seconds = round(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")]
    shown = [f"{n} {unit}" for n, unit in parts if n][:2]
    return " ".join(shown) or "0 s"
