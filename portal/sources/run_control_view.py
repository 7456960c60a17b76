"""Real runs from the Test & run page: Run now (a background ``ingest run`` that outlives the tab,
one per source), its live status per table with Cancel, its log and its page in Run history; and
each table's incremental state with Reset state and Full refresh, both confirmed first
(:mod:`ingestion_core.pipeline.run_control`). Every action is recorded with the acting user."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from ingestion_core.config.access import AccessDeniedError
from ingestion_core.config.secrets import mask
from ingestion_core.config.store import ConfigNotFoundError, ConfigStore
from ingestion_core.config.validation import ConfigError
from ingestion_core.observe import run_metrics as rm
from ingestion_core.observe.records import RunRecord, find_record, is_abandoned, latest_runs
from ingestion_core.pipeline import run_control
from portal.dashboards import dashboard_data, run_view
from portal.dashboards.dashboard_widgets import STATUS_ICONS, code, run_link, status_label
from portal.shared import data as config_data
from portal.shared.components import (
    on_picked,
    outcome_box,
    relative_time,
    run_error,
    run_state,
    tables_progress,
    time_column,
)
from portal.shared.markdown import md_escape
from portal.sources import test_run

FLASH_KEY = "run-flash"
CONFIRM_KEY = "state-confirm"  # (source, action, table) waiting for a yes
LAST_KEY = "run-last"  # (source, run_id) of the run this session started or followed
POLL_SECONDS = 1.0
LOG_LINES = 40
STATE_COLUMNS = ["table", "mode", "cursor", "current value", "initial value", "last successful run", "run id"]


# --- Run now -------------------------------------------------------------------------------------

def render_run_now(name: str) -> None:
    _flash()
    if run_control.active_run(name) is not None:
        _live(name)
        return
    denied = test_run.refusal(name)
    left, right = st.columns([1, 4], vertical_alignment="center")
    left.button("Run now", key="run-now", type="primary", icon=":material/rocket_launch:", width="stretch",
                disabled=denied is not None, on_click=on_picked, args=(test_run.picked_source, start),
                help=denied or "The real load into the source's destination")
    right.caption("Loads every enabled table into the destination in a background process: closing the tab "
                  "does not stop it. One run per source at a time (the CLI and jobs wait for it too).")
    last = _last_run(name)
    if last is not None:
        _outcome(last)


def start(name: str, refresh_tables: list[str] | None = None, where: str = "run") -> None:
    """Start a real run (the Run now and Full refresh callbacks); ``where`` the message shows."""
    try:
        actor = test_run.require_run(name)
        run_id = run_control.start_run(name, actor=actor, trigger="portal", refresh_tables=refresh_tables)
    except run_control.RunInProgressError as exc:
        _say("info", f"{exc}", where)
        return
    except (run_control.RunControlError, ConfigError, ConfigNotFoundError, AccessDeniedError) as exc:
        _say("error", f"The run of {name} did not start: {mask(str(exc))}", where)
        return
    st.session_state[LAST_KEY] = (name, run_id)
    what = f"a full refresh of {', '.join(refresh_tables)}" if refresh_tables else "a run"
    _say("success", f"{actor} started {what} of {name}: run {run_id}. It runs in the background"
                    + ("; follow it under Run now." if where != "run" else "."), where)


@st.fragment(run_every=POLL_SECONDS)
def _live(name: str) -> None:
    """The active run, redrawn every second from its record; the whole page reruns once it ends."""
    record = run_control.active_run(name)
    if record is None:
        dashboard_data.clear()
        config_data.refresh_runs()
        st.rerun()
    st.session_state[LAST_KEY] = (name, record.run_id)
    done = sum(t.status not in ("pending", "running") for t in record.tables)
    box = st.status(f"Run {record.run_id} of {name}: {tables_progress(done, len(record.tables))} · running for "
                    f"{rm.human_duration(_age(record))}", state="running", expanded=True)
    box.progress(done / len(record.tables) if record.tables else 0.0)
    box.markdown(f"Started by **{md_escape(record.actor)}** ({record.trigger}) on {code(record.host)}, pid "
                 f"{record.pid}. {run_link(record.run_id)}")
    with box.container(key="run-live-tables"):
        st.dataframe(run_view.tables_frame(record.tables), hide_index=True, placeholder="-")
    denied = test_run.refusal(name)
    st.button("Cancel the run", key="run-cancel", icon=":material/cancel:", on_click=cancel,
              args=(name, record.run_id), disabled=denied is not None,
              help=denied or "Stops the run; tables already loaded stay loaded. Same as `ingest cancel RUN_ID`.")
    _log(record)


def cancel(name: str, run_id: str) -> None:
    try:
        actor = test_run.require_run(name)
        record = run_control.cancel_run(run_id, actor=actor)
    except (run_control.RunControlError, AccessDeniedError) as exc:
        _say("error", f"Not cancelled: {exc}")
        return
    dashboard_data.clear()
    config_data.refresh_runs()
    if record.status == "cancelled":
        _say("success", f"Run {run_id} was cancelled by {actor}.")
    else:  # it ended before the cancel reached it
        _say("info", f"Run {run_id} had already ended ({status_label(record.status)}): nothing was cancelled.")


def _age(record: RunRecord) -> float:
    return (datetime.now(UTC) - record.started_at).total_seconds()


def _last_run(name: str) -> RunRecord | None:
    """The run this session started (or followed) for ``name``, else the source's newest real run."""
    kept = st.session_state.get(LAST_KEY)
    if kept and kept[0] == name:
        record = find_record(kept[1])
        if record is not None:
            return record
    runs = latest_runs(source=name, kind="run", limit=1)
    return find_record(runs[0]["run_id"]) if runs else None


def _outcome(record: RunRecord) -> None:
    status = "abandoned" if is_abandoned(record) else record.status  # the file may still say running
    ok = status == "success"
    box = outcome_box(f"Last run {record.run_id}: {status_label(status)} · "
                      f"{rm.human_count(rm.record_figures(record)['records'])} records in "
                      f"{rm.human_duration(record.duration_s)}", run_state(status, ok), expanded=not ok)
    ended = " ".join(relative_time(record.ended_at)) if record.ended_at else "not recorded"
    box.markdown(f"Started by **{md_escape(record.actor)}** ({record.trigger}), ended {ended}. "
                 f"{run_link(record.run_id)}")
    if record.error:
        run_error("the run", record.error, icon=STATUS_ICONS.get(status, ":material/error:"), column=box)
    with box.container(key="run-last-tables"):
        st.dataframe(run_view.tables_frame(record.tables), hide_index=True, placeholder="-")
    _log(record)


def _log(record: RunRecord) -> None:
    excerpt = _tail(record.log_path)
    with st.expander(f"Log ({len(excerpt)} last lines)", icon=":material/description:"):
        if excerpt:
            st.caption(f"The end of {code(record.log_path)}")
            st.code(mask("\n".join(excerpt)), language="log")
        else:
            st.caption(f"No log here yet ({code(record.log_path or 'no log path recorded')}).")


def _tail(path: str, lines: int = LOG_LINES) -> list[str]:
    log = Path(path) if path else None
    if not log or not log.is_file():
        return []
    return log.read_text(errors="replace").splitlines()[-lines:]


# --- incremental state ---------------------------------------------------------------------------

def render_state(name: str) -> None:
    _flash("state")
    if run_control.active_run(name) is not None:
        # the run is changing the state right now (and dlt.attach on a pipeline that a first run is
        # creating wipes its folder): it shows again when the run has ended
        st.info("A run of this source is going: each table's state shows here when it has ended.",
                icon=":material/hourglass_top:")
        return
    try:
        config = ConfigStore().load_source(name).config
        states = run_control.table_states(config)
    except (ConfigError, ConfigNotFoundError) as exc:
        st.error(md_escape(mask(str(exc))), icon=":material/error:")
        return
    st.caption("Where each table's incremental load stands: the cursor column, the last value loaded and the "
               "last successful run. Reset state makes the next run reload the table from its initial value.")
    with st.container(key="state-table-grid"):
        st.dataframe(states_frame(states), hide_index=True, placeholder="-",
                     column_config={"last successful run": time_column("last successful run")})
    denied = test_run.refusal(name)
    pick, reset, refresh = st.columns([2, 1, 1], vertical_alignment="bottom")
    first = next((i for i, s in enumerate(states) if s.cursor), 0)  # a table with a state to reset, if any
    table = pick.selectbox("Table", [s.table for s in states], key="state-pick", index=first)
    chosen = next((s for s in states if s.table == table), None)
    reset.button("Reset state", key="state-reset", icon=":material/restart_alt:", width="stretch",
                 disabled=denied is not None or chosen is None or not chosen.cursor, on_click=_ask,
                 args=(name, "reset", table), help=denied or ("Only tables with a cursor keep a state" if chosen and
                                                              not chosen.cursor else "Forget the cursor: the next "
                                                              "run reloads from the initial value"))
    refresh.button("Full refresh", key="state-refresh", icon=":material/sync:", width="stretch",
                   disabled=denied is not None or chosen is None, on_click=_ask, args=(name, "refresh", table),
                   help=denied or "Drop the table in the destination and load it again in full, now")
    _confirm(config)


def states_frame(states: list[run_control.TableState]) -> pd.DataFrame:
    return pd.DataFrame([{
        "table": s.table, "mode": s.mode, "cursor": s.cursor,
        "current value": s.cursor_value if s.cursor else None,
        "initial value": s.initial_value,
        "last successful run": pd.to_datetime(s.last_success_at, utc=True) if s.last_success_at else None,
        "run id": s.last_run_id,
    } for s in states], columns=STATE_COLUMNS)


def _ask(name: str, action: str, table: str) -> None:
    st.session_state[CONFIRM_KEY] = (name, action, table)


def _confirm(config: Any) -> None:
    pending = st.session_state.get(CONFIRM_KEY)
    if not pending or pending[0] != config.name:
        return
    _, action, table = pending
    with st.container(border=True, key="state-confirm-box"):
        if action == "reset":
            st.warning(f"Reset the incremental state of **{md_escape(table)}**? The next run reads it again from "
                       f"its initial value; the rows already loaded stay (append tables may get them twice).",
                       icon=":material/restart_alt:")
        else:
            st.warning(f"Full refresh of **{md_escape(table)}**? Its table in the destination is dropped and "
                       f"loaded again in full by a run that starts now.", icon=":material/sync:")
        yes, no, _ = st.columns([1, 1, 4])
        yes.button("Reset state" if action == "reset" else "Run full refresh", key="state-confirm-yes",
                   type="primary", on_click=_do, args=(config, action, table))
        no.button("Cancel", key="state-confirm-no", on_click=lambda: st.session_state.pop(CONFIRM_KEY, None))


def _do(config: Any, action: str, table: str) -> None:
    st.session_state.pop(CONFIRM_KEY, None)
    if action == "refresh":
        start(config.name, refresh_tables=[table], where="state")
        return
    try:
        actor = test_run.require_run(config.name)
        run_control.reset_state(config, table, actor=actor)
    except (run_control.RunControlError, AccessDeniedError) as exc:
        _say("error", f"State not reset: {exc}", "state")
        return
    _say("success", f"{actor} reset the incremental state of {config.name}.{table}: the next run reloads it "
                    "from its initial value.", "state")


# --- messages ------------------------------------------------------------------------------------

def _say(kind: str, text: str, where: str = "run") -> None:
    st.session_state[f"{FLASH_KEY}-{where}"] = (kind, text)


def _flash(where: str = "run") -> None:
    flash = st.session_state.pop(f"{FLASH_KEY}-{where}", None)
    if flash:
        kind, text = flash
        show = {"success": st.success, "error": st.error}.get(kind, st.info)
        show(md_escape(text), icon=":material/info:")
