"""Run history: every run, test runs (previews) included, in a sortable and filterable table with CSV export;
pick a run (click its row, choose it below, or open ``history?run=<run_id>``) to see everything
about it."""

import streamlit as st

from ingestion_core.observe import run_metrics as rm
from portal.dashboards import dashboard_data, run_view
from portal.dashboards import dashboard_widgets as ui
from portal.shared import components

components.ensure_app_navigation()

ui.header("Run history", "Every run and test run, newest first: click a row to see everything about it.",
          key="history")
data = dashboard_data.run_data()
ui.unreadable_records(data.skipped)
if data.runs.empty:
    ui.no_runs_yet()
    st.stop()

runs = data.runs
with st.container(border=True):
    top, bottom = st.columns(3), st.columns(3)
    with top[0]:
        start, end = ui.date_range("history_dates", runs, default_days=None)
    sources = ui.pick("Source", runs["source"], "history_source", top[1])
    kinds = ui.pick("Kind", runs["kind"], "history_kind", top[2], format_func=ui.kind_label)
    statuses = ui.pick("Status", runs["status"], "history_status", bottom[0], format_func=ui.status_label)
    triggers = ui.pick("Trigger", runs["trigger"], "history_trigger", bottom[1])
    search = bottom[2].text_input("Search", key="history_search", placeholder="run id, actor or error text")
shown = rm.filter_runs(data, start, end, source=sources, kind=kinds, status=statuses, trigger=triggers).runs
table = ui.history_table(shown, search)

wanted = st.query_params.get("run")
if wanted and "history_run" not in st.session_state:
    if wanted in set(runs["run_id"]):
        st.session_state["history_run"] = wanted
    else:
        st.warning(f"There is no run {ui.code(wanted)} in the records (pruned, or a mistyped link).",
                   icon=":material/search_off:")


def _pick_row() -> None:
    rows = st.session_state["history_table"].selection.rows
    if rows:
        st.session_state["history_run"] = table["run"].iloc[rows[0]]


if table.empty:
    st.info("**No run matches these filters.** Widen the dates or clear a filter.", icon=":material/filter_alt:")
else:
    st.dataframe(table, key="history_table", hide_index=True, on_select=_pick_row, selection_mode="single-row",
                 column_config=ui.history_columns(), placeholder="")
left, right = st.columns([4, 1], vertical_alignment="center")
left.caption(f"{len(table):,} of {len(runs):,} runs. Click a column header to sort; durations in seconds.")
right.download_button("Download CSV", data=lambda: table.to_csv(index=False).encode(), key="history_csv",
                      file_name="run_history.csv", mime="text/csv", icon=":material/download:", width="stretch",
                      help="The runs listed above, as filtered")

options = list(table["run"])
chosen = st.session_state.get("history_run")
if chosen and chosen not in options and chosen in set(runs["run_id"]):
    options.insert(0, chosen)  # opened by link or picked before the filters changed
run_id = st.selectbox("Run", options, key="history_run", index=None, placeholder="Pick a run, or click its row above")
if not run_id:
    st.query_params.pop("run", None)
    st.stop()
st.query_params["run"] = run_id  # the address of this view, to share
try:
    detail = rm.run_detail(run_id, data=data)
except (LookupError, OSError, ValueError) as exc:
    st.error(f"Run {ui.code(run_id)} cannot be shown: its record is missing or unreadable "
             f"({type(exc).__name__}). It may have been pruned; press **Refresh**.", icon=":material/error:")
    st.stop()
run_view.render_run(detail, key="history_detail")
