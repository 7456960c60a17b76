"""The Test & run page's source picker and its Test run section: a preview of the source (the real
pipeline, a few rows per table, into a local DuckDB file) started in the background and followed
live, then per table the sample rows, the landed schema and what changed since the previous
test run, the type decisions, the quality checks, the row count and the time taken."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from ingestion_core.config import access
from ingestion_core.config.secrets import mask
from ingestion_core.config.store import ConfigNotFoundError
from ingestion_core.config.validation import ConfigError
from ingestion_core.observe import run_metrics as rm
from ingestion_core.observe.records import RunRecord, TableResult
from ingestion_core.pipeline import runner
from portal.dashboards import run_view
from portal.dashboards.dashboard_widgets import STATUS_ICONS, code, run_link, status_label
from portal.shared import data, navigation
from portal.shared.components import on_picked, outcome_box, run_error, run_state, tables_progress
from portal.shared.identity import acting_user
from portal.shared.markdown import md_escape
from portal.sources import preview_jobs

SOURCE_PAGE = navigation.SOURCE_PAGE
REQUEST_KEY = "test_run_request"  # a source name: open the page on it (its test run has started)
PICK_KEY = "source-pick"
URL_KEY = "source-pick-url"  # the ?source= this session last wrote
FLASH_KEY = "test-run-flash"
# The browser asks for a poll POLL_SECONDS after the last one started; each waits up to END_WAIT_SECONDS
# for the end (no GIL held), then draws the progress (st.status sleeps 0.05 s): the first poll comes
# ~0.45 s after the click, and a test run ending from then on is seen within ~0.05 s (with 0.5 / 0.4 the
# first came at ~0.7 s: a 0.55 s test run showed its rows 0.15 s late)
POLL_SECONDS = 0.25
END_WAIT_SECONDS = 0.18  # + the draw < POLL_SECONDS; a click elsewhere on the page waits at most this long
SOURCE_TAB_KEY = "source-tab"  # the source home's open tab (source_home imports this module); the run shows on Status
TABLE_ICONS = {**STATUS_ICONS, "pending": ":material/hourglass_empty:", "running": ":material/progress_activity:",
               "skipped": ":material/skip_next:"}


def refusal(name: str) -> str | None:
    """Why the acting user may not run ``name`` (test runs included: they read the source's data),
    or None when they may. Runs need the ``run`` right: the source's owner team, or an admin."""
    user, owner = acting_user(), _owner(name)
    if access.can(user.principal, "run", owner):
        return None
    return f"{user.name} may not run {name}: it belongs to team {owner or 'unknown'}"


def require_run(name: str) -> str:
    """The acting user's name when they may run ``name``; else AccessDeniedError (and the refusal
    is written to the audit log)."""
    return access.require(acting_user().principal, "run", _owner(name), name=name).name


def _owner(name: str) -> str | None:
    return next((s.owner for s in data.source_summaries() if s.name == name), None)


def request_test_run(name: str) -> None:
    """Start a test run of ``name`` and go to its home (:func:`open_test_run`)."""
    start(name)
    open_test_run(name)


def open_test_run(name: str) -> None:
    """Go to the source's home on ``name``, its Status tab, where its test run shows. Start the run
    first (:func:`start`, as a button's ``on_click``): it then goes on while Streamlit switches
    pages (the switch waits for a message flush) and draws the source's page."""
    st.session_state[REQUEST_KEY] = name
    st.session_state[SOURCE_TAB_KEY] = "Status"
    st.switch_page(SOURCE_PAGE, query_params={"source": name})


# --- the source picker -------------------------------------------------------------------------

def pick_source() -> str | None:
    """The title (the source's name) and a switch to another source, following ``?source=NAME``
    and the Sources page's buttons. Returns the chosen source."""
    summaries = data.source_summaries()
    names = [s.name for s in summaries if s.valid]
    title, picker = st.columns([3, 1], vertical_alignment="bottom")
    if not names:
        title.title("Source", anchor=False)
        st.info("**No valid source yet.** Add one on the **Sources** page (or fix the problems listed there), "
                "then come back to test it.", icon=":material/info:")
        return None
    request = st.session_state.pop(REQUEST_KEY, None)
    url = st.query_params.get("source")
    # the URL wins when it was changed from outside (a shared link); else the picker does
    wanted = request or (url if url != st.session_state.get(URL_KEY) else None)
    if wanted and wanted not in names:
        invalid = any(s.name == wanted for s in summaries)
        st.warning(f"{code(wanted)} " + ("has problems: fix them on the **Sources** page (Edit YAML) first."
                                          if invalid else "is not a source here: pick one on the right."),
                   icon=":material/search_off:")
    elif wanted:
        st.session_state[PICK_KEY] = wanted
    name = picker.selectbox("Source", names, key=PICK_KEY, index=None, placeholder="Pick a source",
                            help="Open another source's home")
    title.title(name or "Source", anchor=False)
    st.session_state[URL_KEY] = name
    if name is None:
        st.caption("Pick a source to see its status, runs, schema, settings and history; every row of the "
                   "**Sources** list leads here too.")
        st.query_params.pop("source", None)
        return None
    st.query_params["source"] = name  # the address of this view, to share
    return name


def picked_source() -> str | None:
    """The source the page's picker shows (the buttons' callbacks act on it: :func:`on_picked`)."""
    return st.session_state.get(PICK_KEY)


# --- the Test run section ------------------------------------------------------------------------

def render(name: str) -> None:
    job = preview_jobs.current(name)
    running = job is not None and job.running
    denied = refusal(name)
    left, right = st.columns([1, 4], vertical_alignment="center")
    left.button("Test run", key="test-run", type="primary", icon=":material/play_arrow:", width="stretch",
                disabled=running or denied is not None, on_click=on_picked, args=(picked_source, start),
                help=denied or "Runs the real pipeline on a sample into a local DuckDB file: nothing reaches the "
                               "destination and the incremental state of real runs is left alone.")
    right.caption(f"Reads at most {runner.DEFAULT_PREVIEW_LIMIT:,} rows per table into a local DuckDB file, "
                  "then shows what landed.")
    _flash()
    if job is None and (job := preview_jobs.last_recorded(name)) is not None:
        st.caption("The last test run, from its record: its rows are under **Explore the preview** in the "
                   "**Schema** tab.")
    if job is None:
        st.info("This source has not been test-run yet. Press **Test run**.", icon=":material/info:")
    elif running:
        _follow(name)
    else:
        results(job)


def start(name: str) -> None:
    """Start a test run of ``name`` (the button's callback), unless one is already going."""
    try:
        job, started = preview_jobs.start_preview(name, actor=require_run(name))
    except (ConfigError, ConfigNotFoundError, access.AccessDeniedError) as exc:
        st.session_state[FLASH_KEY] = ("error", f"The test run of {name} cannot start: {mask(str(exc))}")
        return
    if not started:
        st.session_state[FLASH_KEY] = ("info", f"A test run of {name} is already going (started by {job.actor} "
                                               f"{job.elapsed():.0f} s ago): here is its progress.")


def _flash() -> None:
    flash = st.session_state.pop(FLASH_KEY, None)
    if flash:
        kind, text = flash
        (st.error if kind == "error" else st.info)(md_escape(text), icon=":material/info:")


@st.fragment(run_every=POLL_SECONDS)
def _follow(name: str) -> None:
    """Progress of a running test run, redrawn every half second; the whole page reruns once it ends.
    Each poll first waits up to END_WAIT_SECONDS for the end (an Event, no GIL held): the results
    show as the run ends, not at the next poll. Not on the draw right after the click (a run that
    has just started): the page then draws at once."""
    job = preview_jobs.current(name)
    if job is not None and job.elapsed() >= POLL_SECONDS:
        job.finished.wait(END_WAIT_SECONDS)
    if job is None or not job.running:
        data.refresh_runs()  # the Sources list shows the new last run at once
        st.rerun()
    progress(job)


def progress(job: preview_jobs.PreviewJob) -> None:
    record = job.snapshot()
    done, total = job.tables_done()
    stopping = job.stop.is_set()
    what = "cancelling: each table stops at its next chunk" if stopping else tables_progress(done, total)
    # not a `with` block: leaving one would mark the status complete
    box = st.status(f"Test run of {job.source}: {what} · {job.elapsed():.1f} s", state="running", expanded=True)
    box.progress(done / total if total else 0.0)
    for table in record.tables if record else []:
        box.markdown(f"{TABLE_ICONS.get(table.status, '')} **{md_escape(table.name)}**: {_table_line(table)}")
    denied = refusal(job.source)
    box.button("Cancel the test run", key="test-run-cancel", icon=":material/cancel:",
               disabled=stopping or denied is not None, on_click=on_picked, args=(picked_source, cancel),
               help=denied or "Stops it: tables that finished keep their rows; nothing else is touched")


def cancel(name: str) -> None:
    """Cancel the running test run of ``name`` (the Cancel button's callback)."""
    try:
        actor = require_run(name)
    except access.AccessDeniedError as exc:
        st.session_state[FLASH_KEY] = ("error", mask(str(exc)))
        return
    if preview_jobs.cancel(name, actor) is None:
        st.session_state[FLASH_KEY] = ("info", f"The test run of {name} had already ended.")


def _table_line(table: TableResult) -> str:
    if table.status == "pending":
        return "waiting"
    if table.status == "running":
        so_far = f": {table.rows_so_far:,} rows so far" if table.rows_so_far else ""
        return f"reading, normalizing and loading{so_far}"
    return f"{status_label(table.status)}, {table.rows:,} rows in {table.duration_s:.1f} s"


# --- results ---------------------------------------------------------------------------------------

def results(job: preview_jobs.PreviewJob) -> None:
    record = job.snapshot()
    if job.error or record is None:
        message, hint = job.error or ("the test run ended without a record", "see the portal's log")
        st.error(f"**The test run of {md_escape(job.source)} failed.** {md_escape(message)}\n\n"
                 f"**What to do:** {md_escape(hint)}", icon=":material/error:")
        return
    ok = record.status in ("success", "quality_failed", "cancelled")
    label = (f"Test run of {record.source}: {status_label(record.status)} · "
             f"{rm.human_count(rm.record_figures(record)['records'])} records from "
             f"{len(record.tables)} table(s) in {rm.human_duration(record.duration_s)}")
    with outcome_box(label, run_state(record.status, ok), expanded=record.status not in ("success", "quality_failed")):
        st.markdown(f"Run {code(record.run_id)} by **{md_escape(record.actor)}**, at most "
                    f"{record.limit or 0:,} rows per table. {run_link(record.run_id)}")
        if record.error:
            run_error("the run", record.error)  # a cancel says who
    # the overview grid is filled in after the open table: the browser draws the grids in the order it
    # gets them (each takes it 40-100 ms), and the sample rows are what a test run is for
    overview = st.container()
    previous = job.previous()
    # only the open table is drawn (a switch reruns the page): four grids per table made a source
    # of many tables slow to show its first sample rows
    tabs = st.tabs([f"{t.name}" for t in record.tables], key=table_tab_key(job.source), on_change="rerun")
    for tab, table in zip(tabs, record.tables, strict=True):
        if tab.open:
            with tab:
                table_detail(job, table, previous)
    with overview:
        grid(overview_frame(record), "test-run-overview", placeholder="-")


def table_tab_key(source: str) -> str:
    """The key of the test run's table tabs: its value is the open table's name."""
    return f"test-run-table-{source}"


def overview_frame(record: RunRecord) -> pd.DataFrame:
    return pd.DataFrame([{
        "table": t.name, "status": status_label(t.status), "rows": t.rows, "seconds": round(t.duration_s, 2),
        "columns": len(t.columns), "checks passed": sum(q.get("status") == "pass" for q in t.quality),
        "checks failed": sum(q.get("status") == "fail" for q in t.quality),
        "error": mask(t.error.message) if t.error else None,
    } for t in record.tables], columns=["table", "status", "rows", "seconds", "columns", "checks passed",
                                       "checks failed", "error"])


def table_detail(job: preview_jobs.PreviewJob, table: TableResult, previous: dict[str, Any] | None) -> None:
    key = f"test-run-{table.name}"
    cells = st.columns(4)
    cells[0].metric("Status", status_label(table.status), border=True)
    cells[1].metric("Rows", f"{table.rows:,}", border=True)
    cells[2].metric("Time taken", rm.human_duration(table.duration_s), border=True)
    cells[3].metric("Read with", table.backend or "-", border=True)
    if table.error:
        run_error(f"table {table.name}", table.error)
    sample = (job.result.samples if job.result else {}).get(table.name, [])
    if sample:
        st.markdown("**Sample rows**")
        grid(pd.DataFrame(sample), f"{key}-sample")
        st.caption(f"The first {len(sample):,} of the {table.rows:,} rows that landed in the preview; "
                   "query them all under **Explore the preview** in the **Schema** tab.")
    if table.columns:
        _schema(table, previous, key)
    if table.type_decisions:
        st.markdown("**Type decisions**: how each source column lands")
        grid(pd.DataFrame(table.type_decisions), f"{key}-types", placeholder="-")
    if table.quality:
        st.markdown("**Quality checks**")
        grid(run_view.checks_frame([{"table": table.name, **q} for q in table.quality]), f"{key}-checks",
             placeholder="-")


def _schema(table: TableResult, previous: dict[str, Any] | None, key: str) -> None:
    before = preview_jobs.previous_columns(previous, table.name)
    rows = preview_jobs.schema_rows(table.columns, before)
    changed = [r for r in rows if r["change"]]
    st.markdown("**Landed schema**")
    grid(pd.DataFrame(rows, columns=["column", "type", "nullable", "change"]), f"{key}-schema", placeholder="")
    if before is None:
        st.caption("The first test run of this table: nothing to compare with yet.")
    elif changed:
        st.caption(f"{len(changed)} column(s) changed since the previous test run {code(previous['run_id'])}.")
    else:
        st.caption(f"Same columns and types as the previous test run {code(previous['run_id'])}.")
    for change in table.schema_changes:  # against the last real run: what the next run will change
        st.warning(f"Compared with the last real run, column {code(change.get('column'))} is "
                   f"**{md_escape(change.get('change'))}**" + (f" ({md_escape(change['note'])})"
                                                                 if change.get("note") else ""),
                   icon=":material/difference:")


def grid(frame: pd.DataFrame, key: str, **options: Any) -> None:
    """A data grid in a container keyed ``key`` (tests and the browser find it by that key)."""
    with st.container(key=key):
        st.dataframe(frame, hide_index=True, **options)

