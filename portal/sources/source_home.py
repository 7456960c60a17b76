"""A source's home (``source?source=NAME``): its header (type, owner, last run, schedule) and the
tabs Status (test run, run now, live progress), Runs (its run history), Schema (what landed, the
preview explorer), Settings (its YAML, edit / duplicate / enable / delete, incremental state)
and History (every save, diffs, restore). Every row of the Sources list leads here."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from ingestion_core.config.store import ConfigNotFoundError, ConfigStore, SourceSummary
from ingestion_core.observe import records
from ingestion_core.observe import run_metrics as rm
from ingestion_core.observe.records import RunRecord
from portal.dashboards import dashboard_data
from portal.dashboards import dashboard_widgets as ui
from portal.shared import data
from portal.shared.components import relative_time
from portal.shared.markdown import code, md_escape
from portal.sources import config_history_view, explorer_view, run_control_view, source_list, test_run

TABS = ("Status", "Runs", "Schema", "Settings", "History")
TAB_KEY = test_run.SOURCE_TAB_KEY


def render(name: str) -> None:
    """The header and the open tab. Only the open tab is drawn (a tab switch reruns the page):
    drawing all five read the run records, the preview and the pipeline states on every rerun,
    which also slowed a test run going on in the same process."""
    summary = next((s for s in data.source_summaries() if s.name == name), None)
    if summary is None:
        return
    top = st.container()  # the header, drawn last: its last-run query must not hold back a test run's rows
    status, runs, schema, settings, history = st.tabs(list(TABS), key=TAB_KEY, on_change="rerun")
    if status.open:
        with status:
            st.subheader("Test run", anchor=False)
            test_run.render(name)
            st.subheader("Run now", anchor=False)
            run_control_view.render_run_now(name)
    if runs.open:
        with runs:
            render_runs(name)
    if schema.open:
        with schema:
            render_schema(name)
            st.subheader("Explore the preview", anchor=False)
            explorer_view.render(name)
    if settings.open:
        with settings:
            render_settings(summary)
            st.subheader("Incremental state", anchor=False)
            run_control_view.render_state(name)
    if history.open:
        with history:
            config_history_view.render_source(name)
    with top:
        header(summary)


def header(summary: SourceSummary) -> None:
    """Who owns the source, what it is, how its last run went and when it runs next."""
    about = f"**{summary.type or 'unknown type'}** source of team **{md_escape(summary.owner or 'none')}**"
    about += f" into {code(summary.destination)}" if summary.destination else ""
    about += f" · {summary.tables} table(s)" + ("" if summary.enabled else " · **disabled**")
    st.caption(about + (f"  \n{md_escape(summary.description)}" if summary.description else ""))
    last = data.last_runs().get(summary.name) or {}
    cells = st.columns(4)
    when, hover = relative_time(last.get("started_at"))
    test_run_last = last.get("kind") == "preview"  # the label says so: "success (test run)" did not fit the box
    cells[0].metric("Last test run" if test_run_last else "Last run",
                    ui.status_label(last.get("status")) if last else "never", border=True,
                    help="The newest run or test run of this source")
    cells[1].metric("Started", when, border=True, help=hover or None)
    cells[2].metric("Records", rm.human_count(rm.records_of(last.get("rows_total") or 0, last.get("records_total")))
                    if last else "-", border=True, help="Records the last run loaded (child-table rows apart)")
    cells[3].metric("Schedule", summary.schedule or "none", border=True, help=_next_run(summary))


def _next_run(summary: SourceSummary) -> str:
    if not summary.schedule:
        return "No schedule in its YAML: it runs when someone runs it"
    from croniter import croniter

    upcoming = croniter(summary.schedule, datetime.now(UTC)).get_next(datetime)
    when, hover = relative_time(upcoming)
    return f"Next scheduled run {when} ({hover})" + ("" if summary.enabled else "; disabled, so it will not run")


def render_runs(name: str) -> None:
    runs = dashboard_data.run_data().runs
    mine = runs[runs["source"] == name]
    if mine.empty:
        st.info("No runs yet: press **Test run** or **Run now** under **Status**.", icon=":material/info:")
        return
    table = ui.history_table(mine).drop(columns=["source", "owner"])
    table.insert(1, "open", [f"history?run={r}" for r in table["run"]])
    test_run.grid(table, "source-runs", placeholder="-", column_config={
        **ui.history_columns(),
        "open": st.column_config.LinkColumn("open", display_text="details", help="Everything about the run")})
    st.caption(f"{len(table):,} runs and test runs of {name}, newest first. **details** opens one in Run history.")


def latest_with_schema(name: str) -> RunRecord | None:
    """The newest run or test run of ``name`` whose record lists landed columns."""
    for run in records.latest_runs(source=name, limit=10):
        record = records.find_record(run["run_id"])
        if record is not None and any(t.columns for t in record.tables):
            return record
    return None


def render_schema(name: str) -> None:
    record = latest_with_schema(name)
    if record is None:
        st.info("No schema yet: a test run shows what lands, column by column.", icon=":material/info:")
        return
    st.caption(f"What landed in the {'test run' if record.kind == 'preview' else 'run'} {code(record.run_id)} "
               f"({relative_time(record.started_at)[0]}).")
    for table in record.tables:
        with st.expander(f"{table.name}: {len(table.columns)} columns", expanded=len(record.tables) == 1):
            frame = pd.DataFrame(table.columns, columns=["name", "type", "nullable"])
            test_run.grid(frame, f"source-schema-{table.name}")


def render_settings(summary: SourceSummary) -> None:
    try:
        text, _ = ConfigStore().read("sources", summary.name)
    except ConfigNotFoundError as exc:
        st.error(md_escape(str(exc)), icon=":material/error:")
        return
    source_list.action_buttons(summary, key_prefix="home", picked=test_run.picked_source)
    st.code(text, language="yaml")
    st.caption("The source's YAML as saved: secrets appear only as references.")
