"""Widgets the dashboard pages share: header with Refresh, filters, empty states, charts with
their one-line caption. They only display values from ``ingestion_core.observe.run_metrics``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import quote

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ingestion_core.common import settings
from ingestion_core.observe import run_metrics as rm
from portal.dashboards import dashboard_data
from portal.shared.components import time_column
from portal.shared.markdown import code

STATUS_ORDER = ["success", "failed", "partial", "quality_failed", "cancelled", "abandoned", "running"]
STATUS_ICONS = {"success": ":material/check_circle:", "failed": ":material/error:", "partial": ":material/warning:",
                "quality_failed": ":material/rule:", "cancelled": ":material/cancel:",
                "abandoned": ":material/help:", "running": ":material/pending:"}

STATUS_HINTS = {  # when the run recorded no hint of its own
    "quality_failed": "the data loaded but a check of severity error failed: see Quality for the observed value "
                      "against the threshold",
    "partial": "some tables failed: open the run to see each table's error",
    "abandoned": "its process is gone (crashed, killed, machine lost): run it again; incremental tables resume",
    "failed": "open the run for the error and its log",
}


def status_label(status: str | None) -> str:
    return (status or "-").replace("_", " ")


def run_link(run_id: str) -> str:
    """Markdown link to one run's drill-down in Run history (``/history?run=<run_id>``)."""
    return f"[Open run {code(run_id)} in Run history](history?run={quote(run_id)})"


def header(title: str, caption: str, key: str) -> None:
    """The page title with its one-line purpose, and a Refresh button that re-reads the records."""
    left, right = st.columns([5, 1], vertical_alignment="bottom")
    left.title(title, anchor=False)
    left.caption(caption)
    if right.button("Refresh", key=f"{key}_refresh", icon=":material/refresh:", width="stretch"):
        dashboard_data.clear()


def unreadable_records(skipped: list[str]) -> None:
    """Record files that could not be read are left out of every figure; say which."""
    if not skipped:
        return
    shown = "\n".join(f"- {code(path)}" for path in skipped[:10])
    more = f"\n- ... and {len(skipped) - 10} more" if len(skipped) > 10 else ""
    st.warning(f"**{len(skipped)} run record file(s) could not be read** and are left out of these figures "
               f"(not JSON, or missing run_id / kind / source / status / started_at). Move them out of the "
               f"runs folder or delete them:\n{shown}{more}", icon=":material/warning:")


def no_runs_yet() -> None:
    st.info(f"**No runs recorded yet.** Every test run and every run writes a record into "
            f"{code(settings.runs_dir())} (`INGEST_RUNS_DIR`), and the dashboards read them from there.\n\n"
            "To see something here: click **Test run** or **Run now** on a source in the portal, or run "
            "`ingest run <source>` (e.g. `ingest run demo_shop`), then press **Refresh**.", icon=":material/info:")


def no_real_runs_yet(previews: int) -> None:
    """The empty state of a page that charts real runs only."""
    if not previews:
        no_runs_yet()
        return
    st.info(f"**Only test runs so far** ({previews}). They are listed in Run history and left out of success rates, "
            "freshness and metrics. Start a real run with **Run now** on a source, or `ingest run <source>`, then "
            "press **Refresh**.", icon=":material/info:")


def anomalies_table(flagged: pd.DataFrame) -> pd.DataFrame:
    """``run_metrics.anomalies`` rows for people: the value and the usual one, formatted."""
    def human(metric: str, value: float) -> str:
        return rm.human_count(value) if metric == "rows" else rm.human_duration(value)

    return pd.DataFrame({
        "started": flagged["started_at"], "source": flagged["source"], "table": flagged["table"],
        "metric": flagged["metric"].map({"rows": "rows", "duration_s": "duration"}),
        "value": [human(m, v) for m, v in zip(flagged["metric"], flagged["value"], strict=True)],
        "usual (median)": [human(m, v) for m, v in zip(flagged["metric"], flagged["median"], strict=True)],
        "run": flagged["run_id"]})


def date_range(key: str, runs: pd.DataFrame, default_days: int | None = 30) -> tuple[datetime, datetime]:
    """A From - To date picker over the days the records span (UTC); returns [start, end)."""
    today = datetime.now(UTC).date()
    first = runs["started_at"].min().date() if not runs.empty else today
    last = max(today, runs["started_at"].max().date() if not runs.empty else today)
    start = first if default_days is None else max(first, last - timedelta(days=default_days - 1))
    picked = st.date_input("Dates (UTC)", value=(start, last), min_value=first, max_value=last, key=key,
                           format="YYYY-MM-DD")
    chosen = [d for d in (picked if isinstance(picked, tuple | list) else [picked]) if isinstance(d, date)]
    low, high = (chosen[0], chosen[-1]) if chosen else (first, last)
    return (datetime.combine(low, time.min, UTC), datetime.combine(high + timedelta(days=1), time.min, UTC))


KIND_LABELS = {"preview": "test run", "run": "run"}  # a record's kind as the portal names it


def kind_label(kind: str | None) -> str:
    """``preview`` is what the records and the CLI call a test run; the portal says test run."""
    return KIND_LABELS.get(kind or "", kind or "-")


def pick(label: str, options: Iterable[str], key: str, column=st, **kwargs) -> list[str]:
    """A multiselect filter: nothing picked means every value."""
    values = sorted({o for o in options if isinstance(o, str) and o})
    return column.multiselect(label, values, key=key, placeholder="all", **kwargs)


def chart(figure: go.Figure, caption: str, key: str, column=st) -> None:
    """A figure with its one-line caption underneath."""
    column.plotly_chart(figure, key=key, config={"displaylogo": False})
    column.caption(caption)


def history_columns() -> dict:
    """Run history's column settings; times in the viewer's time zone."""
    return {
        "started": time_column("started", format="YYYY-MM-DD HH:mm:ss"),
        "seconds": st.column_config.NumberColumn("seconds", format="%.1f", help="Duration of the run"),
        "records": st.column_config.NumberColumn("records", format="compact",
                                                 help="Records the source yielded (test runs: records sampled)"),
        "child rows": st.column_config.NumberColumn("child rows", format="compact",
                                                    help="Rows unpacked into child tables from nested lists"),
        "records/s": st.column_config.NumberColumn("records/s", format="compact",
                                                   help="Records per second of the run"),
        "bytes": st.column_config.NumberColumn("bytes", format="bytes", help="Bytes extracted"),
        "error": st.column_config.TextColumn("error", width="large"),
    }


def history_table(runs: pd.DataFrame, search: str = "") -> pd.DataFrame:
    """The runs as Run history lists (and exports) them; ``search`` keeps the runs whose id,
    source, actor or error text contains it (any case)."""
    errors = [e.get("message") if isinstance(e, dict) else None for e in runs["error"]]
    runs = rm.run_figures(runs)
    table = pd.DataFrame({
        "started": runs["started_at"].to_numpy(), "run": runs["run_id"].to_numpy(),
        "source": runs["source"].to_numpy(), "kind": runs["kind"].map(kind_label).to_numpy(),
        "status": runs["status"].to_numpy(),
        "trigger": runs["trigger"].to_numpy(), "actor": runs["actor"].to_numpy(),
        "seconds": runs["duration_s"].round(1).to_numpy(), "records": runs["records"].to_numpy(),
        "child rows": runs["child_rows"].to_numpy(), "records/s": runs["records_per_s"].to_numpy(),
        "bytes": runs["bytes_total"].to_numpy(), "destination": runs["destination"].to_numpy(),
        "owner": runs["owner"].to_numpy(), "error": pd.array(errors, dtype="string")})
    table["started"] = pd.to_datetime(table["started"], utc=True)
    if search.strip():
        needle = search.strip().lower()
        text = table["run"] + " " + table["source"] + " " + table["actor"].fillna("") + " " + table["error"].fillna("")
        table = table[text.str.lower().str.contains(needle, regex=False)]
    return table.reset_index(drop=True)


def check_columns() -> dict:
    """The Quality table's column settings; times in the viewer's time zone."""
    return {
        "last checked": time_column("last checked"),
        "failed": st.column_config.NumberColumn("failed", help="Runs in range where the check failed"),
        "warned": st.column_config.NumberColumn("warned", help="Runs in range where the check warned"),
        "runs": st.column_config.NumberColumn("runs", help="Runs in range that judged the check"),
    }


def checks_table(latest: pd.DataFrame) -> pd.DataFrame:
    """``run_metrics.latest_checks`` for people: observed and threshold as text."""
    return pd.DataFrame({
        "status": latest["status"], "source": latest["source"], "table": latest["table"],
        "check": latest["name"], "observed": [rm.as_text(v) for v in latest["observed"]],
        "threshold": [rm.as_text(v) for v in latest["threshold"]], "severity": latest["severity"],
        "last checked": latest["started_at"], "failed": latest["fails"], "warned": latest["warns"],
        "runs": latest["checked"], "message": latest["message"], "run": latest["run_id"]})
