"""Metrics: duration, rows, throughput, bytes and the extract / normalize / load breakdown of
real runs over time, per source or per table, with anomalies flagged; filtered by dates,
source, owner, destination, status and trigger. Previews are left out."""

import streamlit as st

from ingestion_core.observe import run_metrics as rm
from portal.dashboards import charts, dashboard_data
from portal.dashboards import dashboard_widgets as ui
from portal.shared import components

components.ensure_app_navigation()

ALL_SOURCES = "All sources: daily totals"

ui.header("Metrics", "How long real runs take and how much they load, over time. Previews are left out.",
          key="metrics")
data = dashboard_data.run_data()
ui.unreadable_records(data.skipped)
real = data.real
if real.empty:
    ui.no_real_runs_yet(len(data.runs))
    st.stop()

with st.container(border=True):
    top, bottom = st.columns(3), st.columns(3)
    with top[0]:
        start, end = ui.date_range("metrics_dates", real, default_days=30)
    sources = ui.pick("Source", real["source"], "metrics_source", top[1])
    owners = ui.pick("Owner", real["owner"], "metrics_owner", top[2])
    destinations = ui.pick("Destination", real["destination"], "metrics_destination", bottom[0])
    statuses = ui.pick("Status", real["status"], "metrics_status", bottom[1], format_func=ui.status_label)
    triggers = ui.pick("Trigger", real["trigger"], "metrics_trigger", bottom[2])
shown = rm.filter_runs(data, start, end, kind=["run"], source=sources, owner=owners, destination=destinations,
                       status=statuses, trigger=triggers)
if shown.runs.empty:
    st.info("**No real runs match these filters.** Widen the dates or clear a filter.", icon=":material/filter_alt:")
    st.stop()

flagged = dashboard_data.anomalies(data)
flagged = flagged[flagged["run_id"].isin(shown.runs["run_id"])].sort_values("started_at", ascending=False)
cells = st.columns(5)
cells[0].metric("Runs", f"{len(shown.runs):,}", border=True)
figures = rm.run_figures(shown.runs)
cells[1].metric("Records loaded", rm.human_count(figures["records"].sum()), border=True,
                help=f"Records the sources yielded; {rm.human_count(figures['child_rows'].sum())} more rows went into "
                     "child tables (nested lists)")
cells[2].metric("Data extracted", rm.human_bytes(shown.runs["bytes_total"].sum()), border=True)
cells[3].metric("Median run", rm.human_duration(shown.runs["duration_s"].median()), border=True)
cells[4].metric("Anomalies", len(flagged), border=True,
                help="Rows or duration beyond 3 median absolute deviations of the table's last 14 successful runs")

tables = rm.table_runs(shown)
scopes = {ALL_SOURCES: (None, None)}
for source, names in tables.groupby("source")["table"].unique().sort_index().items():
    scopes[f"{source}: all tables"] = (source, None)
    scopes.update({f"{source} / {name}": (source, name) for name in sorted(names)})
scope = st.selectbox("Show", list(scopes), key="metrics_scope",
                     help="Daily totals per source, or every run of one source or one table")
source, table = scopes[scope]
if source is None:
    frame, x, series, marked = rm.daily_totals(shown.runs), "day", "source", None
    lines, hidden = charts.largest(frame, "source")
    unit = "per source and day (UTC)" + (f", the {charts.MAX_STACKED} sources that loaded most ({hidden} more: "
                                         "pick one above)" if hidden else "")
    flags = "pick a source or a table above to see each run and its anomalies"
else:
    frame = lines = rm.table_runs(shown, source, table)
    x, series, marked = "started_at", "table", flagged
    unit, flags = "per run, one line per table", "red crosses flag anomalies"

left, right = st.columns(2)
ui.chart(charts.metric_chart(lines, "duration_s", series, marked, x), f"Seconds spent, {unit}; {flags}.",
         key="metrics_duration", column=left)
ui.chart(charts.metric_chart(lines, "records", series, marked, x), f"Records loaded, {unit}; {flags}.",
         key="metrics_rows", column=right)
left, right = st.columns(2)
ui.chart(charts.metric_chart(lines, "throughput", series, None, x), f"Records per second, {unit}.",
         key="metrics_throughput", column=left)
ui.chart(charts.metric_chart(lines, "bytes", series, None, x), f"Bytes extracted, {unit}.", key="metrics_bytes",
         column=right)
ui.chart(charts.phase_chart(frame, x), "Seconds in each phase (extract, normalize, load), summed over every table "
         f"{'of each day' if source is None else 'of each run'}.", key="metrics_phases")

st.subheader("Anomalies", anchor=False)
if flagged.empty:
    st.caption("No anomaly in these runs. A run is flagged when its rows or duration lie beyond 3 median absolute "
               "deviations of its table's last 14 successful real runs (from the 6th run on).")
else:
    st.dataframe(ui.anomalies_table(flagged),
        key="metrics_anomalies", hide_index=True, placeholder="-",
        column_config={"started": components.time_column("started")})
    st.caption("Runs whose rows or duration lie beyond 3 median absolute deviations of the median of the table's "
               "last 14 successful real runs; open one in Run history to see why.")
