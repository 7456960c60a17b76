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
import glob
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ingestion_core.common import settings
from ingestion_core.observe.records import RECORD_COLUMNS, _glob, is_abandoned, records_connection

FAILED = ("failed", "partial", "quality_failed", "abandoned")
TABLE_TYPE = ("STRUCT(name VARCHAR, mode VARCHAR, status VARCHAR, backend VARCHAR, \"rows\" BIGINT, records BIGINT, "
              "bytes BIGINT, "
              "files BIGINT, duration_s DOUBLE, phases JSON, quality JSON, schema_changes JSON, "
              "error STRUCT(error_class VARCHAR, message VARCHAR, hint VARCHAR))[]")
RUN_COLUMNS = {k: v for k, v in RECORD_COLUMNS.items() if k != "tables"}
REQUIRED = ("run_id", "kind", "source", "status", "started_at")  # a record without them is malformed
ANOMALY_WINDOW, ANOMALY_MIN_RUNS, ANOMALY_MADS = 14, 5, 3.0


@dataclass
class RunData:
    runs: pd.DataFrame  # one row per run, newest first
    tables: pd.DataFrame  # one row per (run, table)
    skipped: list[str] = field(default_factory=list)  # record files that could not be read

    @cached_property
    def real(self) -> pd.DataFrame:
        """The real runs (previews left out), newest first."""
        return self.runs[self.runs["kind"] == "run"]


def load_run_data(since: datetime | None = None) -> RunData:
    """Every run record (or those started since ``since``) in one scan."""
    columns = {**RUN_COLUMNS, "tables": TABLE_TYPE}
    empty = RunData(pd.DataFrame(columns=[*RUN_COLUMNS, "filename", *PHASE_COLUMNS]),
                    pd.DataFrame(columns=_TABLE_COLUMNS))
    if "://" not in settings.runs_dir() and not any(Path(settings.runs_dir()).glob("*/*/*/*.json")):
        return empty
    keep = " AND ".join(f"{column} IS NOT NULL" for column in REQUIRED) + (" AND started_at >= ?" if since else "")
    with records_connection() as connection:
        # Rows are ordered by the queries below: keeping the files' order while materializing
        # 10,000 files cost several seconds here on 2 threads.
        connection.execute("SET preserve_insertion_order = false; SET enable_progress_bar = false")
        # read_text + json_transform: a third of the CPU of read_json over many one-record files.
        # A file that is not JSON is left out, a value of the wrong type becomes NULL; records
        # without the required fields are dropped after (a filter on the same query would
        # transform every document once per column it tests).
        connection.execute("CREATE TEMP TABLE r AS SELECT unnest(CASE WHEN json_valid(content) THEN "
                           "json_transform(content, ?) END), filename FROM read_text(?)",
                           [json.dumps(columns), _glob()])
        connection.execute(f"DELETE FROM r WHERE NOT ({keep})", [since] if since else [])
        # through Arrow: half the time of .df() for the text columns
        runs = connection.execute(f"SELECT * EXCLUDE (tables), {_phase_columns('phases')} FROM r "
                                  "ORDER BY started_at DESC").to_arrow_table().to_pandas()
        tables = connection.execute(
            "SELECT run_id, source, kind, started_at, r.status AS run_status, t.name AS \"table\", t.mode, "
            "t.status, t.backend, t.rows, t.records, t.bytes, t.files, t.duration_s, t.phases, t.quality, "
            "t.schema_changes, "
            f"t.error.message AS error, {_phase_columns('t.phases')} FROM r, unnest(r.tables) AS u(t) "
            "ORDER BY started_at DESC").to_arrow_table().to_pandas()
    if not runs.empty:
        running = runs["status"] == "running"
        runs.loc[running, "status"] = [
            "abandoned" if is_abandoned(row) else "running" for row in runs[running].to_dict("records")]
    skipped = [] if since or "://" in settings.runs_dir() else sorted(set(glob.glob(_glob())) - set(runs["filename"]))
    return RunData(runs, tables, skipped)


PHASES = ("extract", "normalize", "load")
PHASE_COLUMNS = [f"{phase}_s" for phase in PHASES]  # seconds in each phase, 0 when not recorded
_TABLE_COLUMNS = ["run_id", "source", "kind", "started_at", "run_status", "table", "mode", "status", "backend",
                  "rows", "records", "bytes", "files", "duration_s", "phases", "quality", "schema_changes", "error",
                  *PHASE_COLUMNS]


def json_list(value: Any) -> list[dict[str, Any]]:
    """The dicts of a JSON list column (``quality``, ``schema_changes``): parsed text or a list."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _phase_columns(column: str) -> str:
    return ", ".join(f"coalesce(TRY_CAST(json_extract({column}, '$.{p}.duration_s') AS DOUBLE), 0) AS {p}_s"
                     for p in PHASES)


# --- one definition per figure -----------------------------------------------------------------
# Every page shows a run's figures through these, so Metrics, Run history, the run drill-down
# and the source's home agree: records are what the source yielded (root tables; child tables
# that dlt unpacks from nested lists are counted apart as child rows), seconds are the run's
# wall-clock time, throughput is records per wall-clock second.

def records_of(rows: Any, records: Any) -> Any:
    """Records of the root tables; a record written before ``records`` existed counts its rows."""
    if isinstance(records, pd.Series):
        return records.astype("Float64").fillna(rows.astype("Float64")).astype(float)
    return rows if records is None or pd.isna(records) else records


def throughput(records: Any, seconds: Any) -> Any:
    """Records per second of wall-clock time; NaN (a '-') when no time was recorded."""
    if isinstance(seconds, pd.Series):
        return (records / seconds).where(seconds > 0)
    return records / seconds if seconds else float("nan")


def run_figures(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with the figures the pages show: records, child_rows and records_per_s."""
    records = records_of(runs["rows_total"], runs["records_total"])
    return runs.assign(records=records, child_rows=runs["rows_total"] - records,
                       records_per_s=throughput(records, runs["duration_s"]))


def record_figures(record: Any) -> dict[str, float]:
    """The same figures for one :class:`RunRecord` (the drill-down and the source's home)."""
    records = records_of(record.rows_total, record.records_total)
    return {"records": records, "child_rows": record.rows_total - records, "seconds": record.duration_s,
            "records_per_s": throughput(records, record.duration_s), "bytes": record.bytes_total}


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
    return run_figures(recent).groupby(["day", "source"], as_index=False)["records"].sum()


def success_rates(data: RunData, now: datetime) -> pd.DataFrame:
    """Share of real runs that succeeded over the last 7 and 30 days, per source (finished runs
    only; NaN where a source finished none in the window)."""
    real = data.real[["source", "started_at", "status"]]
    rates = pd.DataFrame(index=pd.Index(sorted(real["source"].unique()), name="source"))
    finished = real[real["status"] != "running"]
    for days in (7, 30):
        window = finished[finished["started_at"] >= now - timedelta(days=days)]
        succeeded = (window["status"] == "success").groupby(window["source"])
        rates[f"runs_{days}d"] = succeeded.size().reindex(rates.index, fill_value=0).astype(int)
        rates[f"success_{days}d"] = succeeded.mean().reindex(rates.index).astype(float)
    return rates.reset_index()[["source", "runs_7d", "success_7d", "runs_30d", "success_30d"]]


def freshness(data: RunData, schedules: dict[str, str | None], now: datetime,
              grace: timedelta = timedelta(minutes=30), since: dict[str, datetime] | None = None,
              timezones: dict[str, str] | None = None) -> pd.DataFrame:
    """Time since each source's last successful real run against its schedule.

    A source is late when it has not succeeded since the scheduled time before the last one
    (plus ``grace``): one missed run. Sources without a schedule are 'not scheduled'. A source
    that never succeeded is 'waiting' (not late) while that scheduled time lies before it
    existed (``since``: when each source was created, ``ConfigStore.first_seen``). A cron is
    read in the source's time zone (``timezones``; UTC when not given)."""
    from ingestion_core.observe.schedule_status import cron_previous

    success = data.real[data.real["status"].isin(("success", "quality_failed"))]
    last = success.groupby("source")["ended_at"].max()
    rows = []
    for source, schedule in sorted(schedules.items()):
        finished = last.get(source)
        finished = None if finished is None or pd.isna(finished) else finished.to_pydatetime()
        state, due = "not scheduled", None
        if schedule:
            zone = (timezones or {}).get(source, "UTC")
            latest = cron_previous(schedule, now, zone)
            slot = cron_previous(schedule, latest, zone)  # the run before the latest one must have landed
            due = slot + grace
            state = "late" if finished is None or finished < due else "fresh"
            created = (since or {}).get(source)
            if finished is None and (due > now or (created is not None and slot < created)):
                state = "waiting"
        rows.append({"source": source, "schedule": schedule, "last_success": finished, "due_by": due,
                     "age_s": (now - finished).total_seconds() if finished else None, "state": state})
    return pd.DataFrame(rows, columns=["source", "schedule", "last_success", "due_by", "age_s", "state"])


def overall_success(data: RunData, now: datetime, days: int) -> tuple[float | None, int]:
    """(share of finished real runs that succeeded, how many finished) over the last ``days``."""
    window = data.real[(data.real["started_at"] >= now - timedelta(days=days)) & (data.real["status"] != "running")]
    return ((window["status"] == "success").mean() if len(window) else None), len(window)


HEALTH_COLUMNS = ["source", "owner", "status", "last_run", "message", "hint", "run_id", "runs_7d", "success_7d",
                  "runs_30d", "success_30d", "schedule", "last_success", "age_s", "state"]


def source_health(data: RunData, schedules: dict[str, str | None], now: datetime,
                  since: dict[str, datetime] | None = None, timezones: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per source (configured or seen in the records): its latest real run, success
    rates and freshness (``since``: as for :func:`freshness`); failing sources first, then late
    ones, then the rest by name."""
    latest = data.real.drop_duplicates("source", keep="first").set_index("source")
    sources = sorted(set(schedules) | set(latest.index))
    fresh = freshness(data, {s: schedules.get(s) for s in sources}, now, since=since,
                      timezones=timezones).set_index("source")
    rates = success_rates(data, now).set_index("source")
    rows = []
    for source in sources:
        run = latest.loc[source] if source in latest.index else None
        error = run["error"] if run is not None and isinstance(run["error"], dict) else {}
        rows.append({
            "source": source, "owner": run["owner"] if run is not None else None,
            "status": run["status"] if run is not None else "never run",
            "last_run": run["started_at"] if run is not None else None,
            "message": error.get("message") or None, "hint": error.get("hint") or None,
            "run_id": run["run_id"] if run is not None else None,
            **{k: (rates.loc[source, k] if source in rates.index else None)
               for k in ("runs_7d", "success_7d", "runs_30d", "success_30d")},
            **{k: fresh.loc[source, k] for k in ("schedule", "last_success", "age_s", "state")}})
    health = pd.DataFrame(rows, columns=HEALTH_COLUMNS)
    health[["success_7d", "success_30d", "age_s"]] = health[["success_7d", "success_30d", "age_s"]].astype(float)
    health["_rank"] = np.select([health["status"].isin(FAILED), health["state"] == "late"], [0, 1], 2)
    return health.sort_values(["_rank", "source"], kind="stable").drop(columns="_rank").reset_index(drop=True)


# --- filters -------------------------------------------------------------------------------

def filter_runs(data: RunData, start: datetime | None = None, end: datetime | None = None,
                **values: Any) -> RunData:
    """The runs started in [start, end) whose columns hold one of the given values, e.g.
    ``filter_runs(data, source=["shop"], status=["failed", "partial"])``; an empty or missing
    list keeps every value. The per-table rows follow their runs."""
    keep = pd.Series(True, index=data.runs.index)
    if start is not None:
        keep &= data.runs["started_at"] >= start
    if end is not None:
        keep &= data.runs["started_at"] < end
    for column, wanted in values.items():
        if wanted:
            keep &= data.runs[column].isin(list(wanted))
    runs = data.runs[keep]
    tables = data.tables[data.tables["run_id"].isin(runs["run_id"])] if len(runs) < len(data.runs) else data.tables
    return RunData(runs, tables, data.skipped)


# --- metrics and anomalies -----------------------------------------------------------------

def table_runs(data: RunData, source: str | None = None, table: str | None = None) -> pd.DataFrame:
    """Per-table results of real runs over time, with throughput and phase seconds."""
    frame = data.tables[data.tables["kind"] == "run"]
    if source:
        frame = frame[frame["source"] == source]
    if table:
        frame = frame[frame["table"] == table]
    frame = frame.copy()
    frame["records"] = records_of(frame["rows"], frame["records"])
    frame["child_rows"] = frame["rows"] - frame["records"]
    frame["throughput"] = throughput(frame["records"], frame["duration_s"])
    return frame


def daily_totals(runs: pd.DataFrame) -> pd.DataFrame:
    """Real runs (``RunData.runs`` rows) summed per day and source: records, bytes, the runs'
    wall-clock seconds (of each phase too) and records per second over the day, by the same
    definitions as each run's own figures."""
    frame = run_figures(runs[runs["kind"] == "run"]).rename(columns={"bytes_total": "bytes"})
    sums = ["records", "child_rows", "bytes", "duration_s", *PHASE_COLUMNS]
    days = frame.assign(day=frame["started_at"].dt.tz_convert("UTC").dt.floor("D"))
    totals = days.groupby(["day", "source"], as_index=False)[sums].sum()
    totals["throughput"] = throughput(totals["records"], totals["duration_s"])
    return totals


def anomalies(data: RunData) -> pd.DataFrame:
    """Runs whose rows or duration lie beyond 3 median absolute deviations from the median of
    that table's previous 14 successful real runs (only when there are at least 5).

    Every run of every table at once: one (runs x 14) matrix of the earlier values per metric."""
    columns = ["source", "table", "run_id", "started_at", "metric", "value", "median", "mad"]
    frame = data.tables[(data.tables["kind"] == "run") & (data.tables["status"] == "success")
                        & data.tables["table"].notna()]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame = frame.sort_values(["source", "table", "started_at"], kind="stable").reset_index(drop=True)
    position = frame.groupby(["source", "table"], sort=False).cumcount().to_numpy()
    offsets = np.arange(1, ANOMALY_WINDOW + 1)
    earlier = np.arange(len(frame))[:, None] - offsets  # row of the k-th earlier run of the same table
    same_table = position[:, None] >= offsets
    found = []
    for order, metric in enumerate(("rows", "duration_s")):
        values = frame[metric].to_numpy(dtype=float)
        windows = np.where(same_table, values[np.clip(earlier, 0, None)], np.nan)
        median = _nanmedian_rows(windows)
        mad = _nanmedian_rows(np.abs(windows - median[:, None]))
        with np.errstate(invalid="ignore"):
            beyond = np.abs(values - median) > ANOMALY_MADS * np.maximum(mad, _floor(metric, median))
        rows = np.flatnonzero(beyond & (position >= ANOMALY_MIN_RUNS))
        found.append(pd.DataFrame({"row": rows, "order": order, "metric": metric,
                                   "value": frame[metric].to_numpy()[rows], "median": median[rows], "mad": mad[rows]}))
    flagged = pd.concat(found, ignore_index=True).sort_values(["row", "order"], kind="stable")
    picked = frame.iloc[flagged["row"].to_numpy()]
    for column in ("source", "table", "run_id", "started_at"):
        flagged[column] = picked[column].array
    return flagged[columns].reset_index(drop=True)


def _nanmedian_rows(matrix: np.ndarray) -> np.ndarray:
    """Median of each row, NaN left out (NaN for a row of NaN only); np.nanmedian is ~50x slower."""
    ordered = np.sort(matrix, axis=1)  # NaN sort last
    count = (~np.isnan(matrix)).sum(axis=1)
    low = np.take_along_axis(ordered, np.clip((count - 1) // 2, 0, None)[:, None], axis=1)[:, 0]
    high = np.take_along_axis(ordered, np.clip(count // 2, 0, matrix.shape[1] - 1)[:, None], axis=1)[:, 0]
    return np.where(count > 0, (low + high) / 2, np.nan)


def _floor(metric: str, median: np.ndarray) -> np.ndarray:
    """A MAD of 0 (identical runs) would flag any change: ask for at least 1% of the median."""
    return np.maximum(np.abs(median) * 0.01, 1.0 if metric == "rows" else 0.5)


# --- audit ---------------------------------------------------------------------------------

def run_detail(run_id: str, log_lines: int = 200, data: RunData | None = None) -> dict[str, Any]:
    """One run for the drill-down: the record, its status (``abandoned`` for a run whose process
    is gone), a log excerpt and the config diff against the previous run of the same source
    (preview or real). With ``data`` (already loaded) the two
    records are found without another scan of the folder."""
    from ingestion_core.observe.records import find_record, latest_runs, load_record

    known = data.runs[data.runs["run_id"] == run_id] if data is not None else None
    if known is not None and not known.empty:
        record = load_record(known.iloc[0]["filename"])
        same = data.runs[(data.runs["source"] == record.source) & (data.runs["started_at"] < record.started_at)]
        previous = load_record(same.iloc[0]["filename"]) if not same.empty else None
    else:
        record = find_record(run_id)
        if record is None:
            raise LookupError(f"no run record with id {run_id}")
        earlier = [r for r in latest_runs(source=record.source, limit=200) if r["started_at"] < record.started_at]
        previous = find_record(earlier[0]["run_id"]) if earlier else None
    log = Path(record.log_path) if record.log_path else None
    excerpt = log.read_text(errors="replace").splitlines()[-log_lines:] if log and log.is_file() else []
    diff = []
    if previous and previous.config_snapshot != record.config_snapshot:
        diff = list(difflib.unified_diff(previous.config_snapshot.splitlines(), record.config_snapshot.splitlines(),
                                         f"run {previous.run_id}", f"run {record.run_id}", lineterm=""))
    status = "abandoned" if is_abandoned(record) else record.status  # the file still says running
    return {"record": record, "status": status, "log_excerpt": excerpt, "config_diff": diff,
            "previous_run_id": previous.run_id if previous else None}


# --- quality -------------------------------------------------------------------------------

CHECK_RESULT = {"check": "VARCHAR", "name": "VARCHAR", "status": "VARCHAR", "severity": "VARCHAR",
                "observed": "JSON", "threshold": "JSON", "column": "VARCHAR", "message": "VARCHAR"}
QUALITY_COLUMNS = ["run_id", "source", "kind", "started_at", "table", "check", "status", "severity", "observed",
                   "threshold", "column", "name", "message"]


def has_quality_results(data: RunData) -> bool:
    """Whether any run recorded a quality check result (cheap: no result is parsed)."""
    return bool((data.tables["quality"].fillna("[]").str.strip() != "[]").any())


def quality_results(data: RunData) -> pd.DataFrame:
    """One row per check result (previews included, marked by kind), newest first.

    ``name`` labels the check as the results do, e.g. ``not_null(order_id)``; ``observed`` and
    ``threshold`` are the JSON values as recorded (a number, a text, ``{"min": 1}``...)."""
    import duckdb

    tables = data.tables[["run_id", "source", "kind", "started_at", "table", "quality"]]
    tables = tables[tables["quality"].notna() & (tables["quality"] != "[]")]
    if tables.empty:
        return pd.DataFrame(columns=QUALITY_COLUMNS)
    with duckdb.connect() as connection:
        connection.execute("SET enable_progress_bar = false")
        connection.register("checked", tables.reset_index(drop=True))
        # json_transform parses each result once (a ->> per field would parse it once per field)
        results = connection.execute("""
            SELECT run_id, source, kind, started_at, "table", q."check", q.status, q.severity,
                   coalesce(CAST(q.observed AS VARCHAR), 'null') AS observed,
                   coalesce(CAST(q.threshold AS VARCHAR), 'null') AS threshold, q."column",
                   coalesce(q.name, q."check") AS name, q.message
            FROM (SELECT *, row_number() OVER () AS n FROM checked),
                 unnest(json_transform(quality, ?)) WITH ORDINALITY AS u(q, i)
            ORDER BY n, i""", [json.dumps([CHECK_RESULT])]).to_arrow_table().to_pandas()
    for column in ("observed", "threshold"):  # one json.loads for the whole column
        values = json.loads(f"[{','.join(results[column].tolist())}]")
        results[column] = pd.Series(values, index=results.index, dtype=object)
    return results[QUALITY_COLUMNS]


OUTCOME_RANK = {"fail": 0, "warn": 1, "pass": 2}


def check_key(results: pd.DataFrame) -> pd.Series:
    """How one check of one table is named across runs: ``source.table · not_null(order_id)``."""
    return results["source"] + "." + results["table"] + " · " + results["name"].fillna(results["check"])


def latest_checks(results: pd.DataFrame) -> pd.DataFrame:
    """The latest judged result of each check (skipped ones left out), failing checks first,
    then warnings, then passes; with how often it failed or warned in ``results``."""
    judged = results[results["status"].isin(list(OUTCOME_RANK))].assign(key=lambda f: check_key(f))
    if judged.empty:
        return judged.assign(fails=pd.Series(dtype=int), warns=pd.Series(dtype=int), checked=pd.Series(dtype=int))
    counts = judged.groupby("key")["status"].value_counts().unstack(fill_value=0)
    latest = judged.sort_values("started_at", ascending=False, kind="stable").drop_duplicates("key").set_index("key")
    latest["fails"] = counts.get("fail", 0)
    latest["warns"] = counts.get("warn", 0)
    latest["checked"] = counts.sum(axis=1)
    latest["_rank"] = latest["status"].map(OUTCOME_RANK)
    return latest.reset_index().sort_values(["_rank", "key"], kind="stable").drop(columns="_rank") \
        .reset_index(drop=True)


def check_matrix(results: pd.DataFrame, limit: int = 30) -> pd.DataFrame:
    """Checks (rows, failing ones first) by day (columns): the worst outcome of the day as
    0 pass, 1 warn, 2 fail, NaN where the check did not run; at most ``limit`` checks."""
    judged = results[results["status"].isin(list(OUTCOME_RANK))]
    if judged.empty:
        return pd.DataFrame()
    judged = judged.assign(key=check_key(judged), day=judged["started_at"].dt.tz_convert("UTC").dt.floor("D"),
                           level=2 - judged["status"].map(OUTCOME_RANK))
    matrix = judged.pivot_table(index="key", columns="day", values="level", aggfunc="max")
    order = latest_checks(results)["key"]
    return matrix.reindex([k for k in order if k in matrix.index][:limit])


def check_trend(results: pd.DataFrame, key: str) -> pd.DataFrame:
    """One check over time, oldest first: outcome, observed value (as a number where it is one)
    and its numeric bounds (a bare number threshold, or min / max of a mapping)."""
    chosen = results[check_key(results) == key].sort_values("started_at", kind="stable")
    bounds = [_bounds(t) for t in chosen["threshold"]]
    return pd.DataFrame({
        "started_at": chosen["started_at"].to_numpy(), "run_id": chosen["run_id"].to_numpy(),
        "kind": chosen["kind"].to_numpy(), "status": chosen["status"].to_numpy(),
        "observed": pd.to_numeric(pd.Series(chosen["observed"].to_numpy(), dtype=object), errors="coerce"),
        "minimum": np.array([b[0] for b in bounds], dtype=float),
        "maximum": np.array([b[1] for b in bounds], dtype=float),
    })


def _bounds(threshold: Any) -> tuple[float | None, float | None]:
    if isinstance(threshold, bool) or threshold is None:
        return None, None
    if isinstance(threshold, int | float):
        return None, float(threshold)
    if isinstance(threshold, dict):
        low, high = threshold.get("min"), threshold.get("max")
        number = (int, float)
        return (float(low) if isinstance(low, number) else None), (float(high) if isinstance(high, number) else None)
    return None, None


def as_text(value: Any) -> str:
    """An observed value or threshold as people read it: 3, 0.5, min 1, ['a', 'b']."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k} {as_text(v)}" for k, v in value.items())
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:,.4g}"


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


def human_bytes(value: float | None) -> str:
    if value is None or pd.isna(value):
        return "-"
    # decimal units, as Streamlit's "bytes" columns and the charts' axes show them (5,015,700 -> 5 MB)
    for limit, suffix in ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if abs(value) >= limit:
            return f"{value / limit:.1f} {suffix}".replace(".0 ", " ")
    return f"{value:,.0f} B"


def human_share(value: float | None) -> str:
    """0.953 -> '95.3%'; '-' when there is nothing to divide."""
    if value is None or pd.isna(value):
        return "-"
    return f"{100 * value:.1f}%".replace(".0%", "%")
