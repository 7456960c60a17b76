"""Overview: today's runs by status, the sources that need attention (failed or late) with their
last error and what to do, and the ones whose last run was cancelled; success rates, freshness
against schedules and rows loaded per day. Test runs (previews) are left out of every figure here."""

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from ingestion_core.observe import run_metrics as rm
from portal.dashboards import charts, dashboard_data, operations_view
from portal.dashboards import dashboard_widgets as ui
from portal.shared import components
from portal.shared.markdown import md_escape

components.ensure_app_navigation()

ui.header("Overview", "How the sources did today and lately. Real runs only: test runs are listed in Run history.",
          key="overview")
data = dashboard_data.run_data()
ui.unreadable_records(data.skipped)
if data.real.empty:
    ui.no_real_runs_yet(len(data.runs))
    st.stop()

now = datetime.now(UTC)
health = rm.source_health(data, dashboard_data.schedules(), now, dashboard_data.first_seen(),
                          dashboard_data.timezones())
failing = health[health["status"].isin(rm.FAILED)]
late = health[(health["state"] == "late") & ~health["status"].isin(rm.FAILED)]
stopped = health[(health["status"] == "cancelled") & (health["state"] != "late")]  # not failing; not done either

st.subheader("Today", anchor=False)
today = rm.today_by_status(data, now)
statuses = [s for s in ui.STATUS_ORDER if today.get(s)]
cells = st.columns(max(6, 1 + len(statuses)))
cells[0].metric("Runs today", rm.human_count(sum(today.values())), border=True, help="Real runs started today (UTC)")
for cell, status in zip(cells[1:], statuses, strict=False):
    cell.metric(ui.status_label(status).capitalize(), rm.human_count(today[status]), border=True)

rate_7, runs_7 = rm.overall_success(data, now, 7)
rate_30, runs_30 = rm.overall_success(data, now, 30)
cells = st.columns(4)
cells[0].metric("Success rate, 7 days", rm.human_share(rate_7), border=True,
                help=f"Of {runs_7:,} finished real runs in the last 7 days")
cells[1].metric("Success rate, 30 days", rm.human_share(rate_30), border=True,
                help=f"Of {runs_30:,} finished real runs in the last 30 days")
cells[2].metric("Sources failing", len(failing), border=True, help="Latest real run did not succeed")
cells[3].metric("Sources late", len(late), border=True, help="No successful run since the scheduled time before "
                "the last one (30 min grace)")

st.subheader("Needs attention", anchor=False)
if failing.empty and late.empty and stopped.empty:
    st.success("Nothing to do: every source's latest run succeeded and no scheduled source is late.",
               icon=":material/check_circle:")
elif failing.empty and late.empty:
    st.success("No source's latest run failed and no scheduled source is late.", icon=":material/check_circle:")
for row in failing.to_dict("records"):
    when = rm.human_duration((now - row["last_run"]).total_seconds())
    text = f"**{md_escape(row['source'])}**: last run {ui.status_label(row['status'])} {when} ago"
    text += f": {md_escape(row['message'])}" if pd.notna(row["message"]) else ""
    hint = md_escape(row["hint"]) if pd.notna(row["hint"]) else ui.STATUS_HINTS.get(row["status"])
    text += f"\n\n**What to do:** {hint}" if hint else ""
    st.error(f"{text}\n\n{ui.run_link(row['run_id'])}", icon=ui.STATUS_ICONS[row["status"]])
for row in late.to_dict("records"):
    since = rm.human_duration(row["age_s"]) + " ago" if pd.notna(row["age_s"]) else "never"
    st.warning(f"**{md_escape(row['source'])}** is late: last successful run {since}, schedule "
               f"{ui.code(row['schedule'])}.\n\n**What to do:** check that its job or scheduler ran; open its last "
               "run in Run history for the error, or run it now.", icon=":material/schedule:")
for row in stopped.to_dict("records"):
    when = rm.human_duration((now - row["last_run"]).total_seconds())
    st.info(f"**{md_escape(row['source'])}**: its last run was cancelled {when} ago; the tables that finished before "
            f"the stop are loaded.\n\n**What to do:** run it again when wanted. {ui.run_link(row['run_id'])}",
            icon=":material/cancel:")
operations_view.attention_notes(data)

st.subheader("Sources", anchor=False)
table = pd.DataFrame({
    "source": health["source"], "last run": health["status"].map(ui.status_label),
    "started": health["last_run"], "success 7 d": health["success_7d"] * 100,
    "success 30 d": health["success_30d"] * 100,
    "last success": [rm.human_duration(a) + " ago" if pd.notna(a) else "never" for a in health["age_s"]],
    "schedule": health["schedule"].fillna("-"), "freshness": health["state"],
    "last error": health["message"], "what to do": health["hint"]})


st.dataframe(table.style.apply(operations_view.highlight_health_row, axis=1), key="overview_sources",
             hide_index=True, placeholder="-",
             column_config={
    "started": components.time_column("started", help="Latest real run, in your time zone"),
    "success 7 d": st.column_config.ProgressColumn("success 7 d", format="%.0f%%", min_value=0, max_value=100),
    "success 30 d": st.column_config.ProgressColumn("success 30 d", format="%.0f%%", min_value=0, max_value=100),
    "freshness": st.column_config.TextColumn("freshness", help="late: missed the run before the last scheduled one; "
                                             "not scheduled: no schedule in its YAML"),
})
st.caption("Failing sources first (red), then late ones (amber). Freshness compares the last successful run with "
           "the source's schedule.")
left, right = st.columns(2)
ui.chart(charts.rows_per_day_chart(rm.rows_per_day(data, days=30, now=now)),
         "Rows loaded per day over the last 30 days (UTC), stacked by source.", key="overview_rows", column=left)
ui.chart(charts.success_rate_chart(rm.success_rates(data, now)),
         "Share of finished real runs that succeeded, per source: last 7 days against last 30.",
         key="overview_rates", column=right)
