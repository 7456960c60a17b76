"""Quality: the data-quality checks of every table, failing ones first with the observed value
against the threshold; checks by table over time as a pass / warn / fail heatmap; the trend of
one chosen check."""

import streamlit as st

from ingestion_core.observe import run_metrics as rm
from portal.dashboards import charts, dashboard_data
from portal.dashboards import dashboard_widgets as ui
from portal.shared import components

components.ensure_app_navigation()

HEATMAP_ROWS = 30

ui.header("Quality", "The checks configured on each table and how they did, failing checks first.", key="quality")
data = dashboard_data.run_data()
ui.unreadable_records(data.skipped)
if data.runs.empty:
    ui.no_runs_yet()
    st.stop()
if not rm.has_quality_results(data):
    st.info("**No quality check has run yet.** Add checks to a table in the source's YAML, e.g. "
            "`checks: [{not_null: order_id}, {unique: order_id}, {row_count: {min: 1}}]`, then run it or click "
            "**Test run**: every run and test run checks what it loaded.", icon=":material/info:")
    st.stop()

with st.container(border=True):
    cells = st.columns([3, 3, 3, 2], vertical_alignment="bottom")
    with cells[0]:
        start, end = ui.date_range("quality_dates", data.runs, default_days=30)
    previews = cells[3].toggle("Test runs", key="quality_previews",
                               help="Include the checks of test runs (they see only the first rows): off by default")
    results = dashboard_data.quality(data, start, end, previews)
    sources = ui.pick("Source", results["source"], "quality_source", cells[1])
    tables = ui.pick("Table", results["table"], "quality_table", cells[2])
shown = results[results["source"].isin(sources)] if sources else results
shown = shown[shown["table"].isin(tables)] if tables else shown
latest = rm.latest_checks(shown)
if latest.empty:
    st.info("**No check result matches these filters.** Widen the dates, clear a filter or include test runs.",
            icon=":material/filter_alt:")
    st.stop()

counts = latest["status"].value_counts()
cells = st.columns(4)
cells[0].metric("Checks", f"{len(latest):,}", border=True, help="Distinct checks (source, table, check) in range")
cells[1].metric("Failing now", int(counts.get("fail", 0)), border=True, help="Latest result: fail")
cells[2].metric("Warning now", int(counts.get("warn", 0)), border=True, help="Latest result: warn")
cells[3].metric("Passing now", int(counts.get("pass", 0)), border=True, help="Latest result: pass")

st.subheader("Latest result of each check", anchor=False)
st.dataframe(ui.checks_table(latest), key="quality_latest", hide_index=True, placeholder="-",
             column_config=ui.check_columns())
st.caption("Failing checks first, then warnings: the observed value against the threshold of the latest run that "
           "judged it, and how often it failed or warned in the chosen dates.")

matrix = rm.check_matrix(shown, limit=HEATMAP_ROWS)
more = f" Showing the first {HEATMAP_ROWS} of {len(latest)} checks: pick a source to see its own." \
    if len(latest) > HEATMAP_ROWS else ""
ui.chart(charts.quality_heatmap(matrix), "Each check by day (UTC): green pass, amber warn, red fail (the worst result "
         f"of the day), blank where it did not run.{more}", key="quality_heatmap")

st.subheader("Trend of one check", anchor=False)
check = st.selectbox("Check", list(latest["key"]), key="quality_check", help="Failing checks are listed first")
ui.chart(charts.check_trend_chart(rm.check_trend(shown, check)), "The observed value at each run, coloured by "
         "outcome; dashed lines are the threshold's bounds where it has numeric ones.", key="quality_trend")
