"""The Sources page: every source with its validation status and last run, search and filters,
and the actions on one source (edit, test run, duplicate, enable / disable, YAML, delete to the bin,
restore from the bin)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import streamlit as st

from ingestion_core import onboarding
from ingestion_core.config.access import AccessDeniedError
from ingestion_core.config.store import ConfigNotFoundError, ConfigStore, ConflictError, SourceSummary
from ingestion_core.config.validation import ConfigError
from ingestion_core.onboarding import SourceRow
from portal.dashboards import operations_view
from portal.shared import components, data, navigation
from portal.shared.identity import acting_user
from portal.shared.markdown import code, md_escape
from portal.sources import run_control_view, test_run

FLASH_KEY = "sources-flash"
PICK_KEY = "sources-pick"
TABLE_KEY = "sources-table"
SHOWN_KEY = "sources-shown"  # the names the list showed, in its order: a row click's index is into them
ROW_KEY = "sources-row"  # the row click already applied to the picker
CONFIRM_KEY = "sources-confirm"
STATUSES = ("all", "valid", "invalid", "enabled", "disabled", "last run failed")
COLUMNS = ("name", "home", "type", "owner", "destination", "tables", "enabled", "valid", "tables in database",
           "last run", "last run at", "schedule run by")


def render() -> None:
    head, refresh, new = st.columns([4, 1, 1], vertical_alignment="bottom")
    head.title("Sources", anchor=False)
    head.caption("Every source, whether it is valid and how its last run went.")
    if refresh.button("Refresh", key="sources-refresh", icon=":material/refresh:", width="stretch"):
        data.refresh_sources()
        data.refresh_runs()
        onboarding.forget_checks()
    if new.button("New source", key="sources-new", type="primary", icon=":material/add:", width="stretch"):
        navigation.request_editor("new")
    _flash()
    rows = source_rows()
    if not rows:
        st.info("**No sources yet.** Click **New source** to onboard a database, a REST API or files.",
                icon=":material/info:")
    else:
        shown = filter_rows(rows)
        st.dataframe(rows_frame(shown), key=TABLE_KEY, hide_index=True, width="stretch", placeholder="-",
                     column_config=_column_config(), on_select="rerun", selection_mode="single-row")
        st.caption(f"{len(shown)} of {len(rows)} sources shown.")
        _actions(shown or rows)
        components.source_problems([r.checked_summary for r in shown], key_prefix="sources")
    _bin()


def source_rows() -> list[SourceRow]:
    """Every source with its last run and whether discovery finds its tables (a few seconds at
    most, cached per file revision; Refresh asks again)."""
    return onboarding.source_rows(runs=data.last_runs(), summaries=data.source_summaries(), check_tables=True)


def filter_rows(rows: Sequence[SourceRow]) -> list[SourceRow]:
    search, kinds, owners, status = st.columns([3, 2, 2, 2])
    text = search.text_input("Search", key="sources-search", placeholder="name, owner or description",
                             icon=":material/search:")
    types = kinds.multiselect("Type", sorted({r.summary.type for r in rows if r.summary.type}), key="sources-type")
    teams = owners.multiselect("Owner", sorted({r.summary.owner for r in rows if r.summary.owner}),
                               key="sources-owner")
    wanted = status.selectbox("Status", STATUSES, key="sources-status")
    return [r for r in rows if _matches(r, text or "", types, teams, wanted)]


def _matches(row: SourceRow, text: str, types: list[str], teams: list[str], status: str) -> bool:
    summary = row.summary
    haystack = " ".join(str(v or "") for v in (summary.name, summary.owner, summary.description, summary.type))
    if text.strip() and text.strip().lower() not in haystack.lower():
        return False
    if (types and summary.type not in types) or (teams and summary.owner not in teams):
        return False
    checks = {"valid": row.valid, "invalid": not row.valid, "enabled": summary.enabled,
              "disabled": not summary.enabled, "last run failed": row.last_status in ("failed", "partial",
                                                                                       "quality_failed")}
    return checks.get(status, True)


def rows_frame(rows: Sequence[SourceRow]) -> pd.DataFrame:
    executors = operations_view.executor_labels([r.summary for r in rows])
    records = [{
        "name": r.summary.name, "home": f"source?source={quote(r.summary.name)}", "type": r.summary.type,
        "owner": r.summary.owner,
        "destination": r.summary.destination, "tables": r.summary.tables, "enabled": r.summary.enabled,
        "valid": r.valid, "tables in database": r.tables_check.label if r.tables_check else "-",
        "last run": (r.last_status + (" (test run)" if r.last_kind == "preview" else "")) if r.last_status else "never",
        "last run at": pd.to_datetime(r.last_started, utc=True) if r.last_started else None,
        "schedule run by": executors.get(r.summary.name, "-"),
    } for r in rows]
    return pd.DataFrame(records, columns=list(COLUMNS))


def _column_config() -> dict:
    return {
        "name": st.column_config.TextColumn("name", help="File name under sources/ and source name"),
        "home": st.column_config.LinkColumn("home", display_text="open", help="The source's home: status, runs, "
                                            "schema, settings and history"),
        "tables": st.column_config.NumberColumn("tables", help="Tables, files or endpoints loaded", format="%d"),
        "enabled": st.column_config.CheckboxColumn("enabled", help="Disabled sources are not scheduled"),
        "valid": st.column_config.CheckboxColumn("valid", help="Passes validation and the database has its tables "
                                                 "(problems listed below)"),
        "tables in database": st.column_config.TextColumn("tables in database", help="What the database said "
                                                          "when asked for the source's tables (asked again on "
                                                          "Refresh)"),
        "last run": st.column_config.TextColumn("last run", help="Status of the newest run"),
        "last run at": components.time_column("last run at"),  # empty when it never ran (then "last run": never)
    }


# --- actions -------------------------------------------------------------------------------

def _actions(rows: Sequence[SourceRow]) -> None:
    st.subheader("Change a source", anchor=False)
    by_name = {r.summary.name: r for r in rows}
    picked_source()
    st.session_state[SHOWN_KEY] = [r.summary.name for r in rows]
    name = st.selectbox("Source", list(by_name), key=PICK_KEY, help="Or click a row of the list above")
    if name is None:
        return
    action_buttons(by_name[name].summary, key_prefix="sources", picked=picked_source, in_list=True)


def picked_source() -> str | None:
    """The source the actions apply to: the picker's value, after a new click on a row of the list
    has moved the picker to that row (once: the picker can then be changed again). The buttons'
    callbacks ask it too, so an action clicked right after a new pick acts on the new pick."""
    state = st.session_state
    table = state.get(TABLE_KEY)
    rows = list(table.selection.rows) if table is not None and hasattr(table, "selection") else []
    shown = state.get(SHOWN_KEY) or []
    if rows != state.get(ROW_KEY, []):
        state[ROW_KEY] = rows
        if rows and rows[0] < len(shown):
            state[PICK_KEY] = shown[rows[0]]
    return state.get(PICK_KEY)


def action_buttons(summary: SourceSummary, *, key_prefix: str, picked: Callable[[], str | None],
                   in_list: bool = False) -> None:
    """The actions on one source: edit, duplicate, enable / disable, YAML, delete to the bin, and
    in the Sources list also open its home, test run and run now (its home has those in Status).
    Keys ``<prefix>-<action>``. ``picked`` names the page's picked source when a click is handled:
    the callbacks act on it (:func:`components.on_picked`), as the rerun the click starts does."""
    name, valid = summary.name, summary.valid
    problems = None if valid else "This file has problems: fix it in YAML mode."
    denied = test_run.refusal(name) if valid else None
    # eight actions in two rows of four: in one row of eight their labels were cut at 1280 px
    buttons = [*st.columns(4), *st.columns(4)] if in_list else list(st.columns(5))
    if in_list and buttons.pop(0).button("Open", key=f"{key_prefix}-open", icon=":material/open_in_new:",
                                      width="stretch", help="The source's home: status, runs, schema, settings"):
        st.switch_page(test_run.SOURCE_PAGE, query_params={"source": name})
    if in_list and buttons.pop(0).button("Test run", key=f"{key_prefix}-test-run", icon=":material/play_circle:",
                                      width="stretch", disabled=not valid or denied is not None,
                                      on_click=components.on_picked, args=(picked, test_run.start),
                                      help=problems or denied or "Run it on a sample into a local DuckDB file and "
                                      "see the rows, schema and checks"):
        test_run.open_test_run(name)
    if in_list and buttons.pop(0).button("Run now", key=f"{key_prefix}-run-now", icon=":material/rocket_launch:",
                                         width="stretch", disabled=not valid or denied is not None,
                                         on_click=components.on_picked, args=(picked, run_control_view.start),
                                         help=problems or denied or "Load it into its destination now, in the "
                                         "background, and follow it on its home"):
        st.switch_page(test_run.SOURCE_PAGE, query_params={"source": name})
    if buttons.pop(0).button("Edit", key=f"{key_prefix}-edit", icon=":material/edit:", width="stretch",
                             disabled=not valid, help=problems):
        navigation.request_editor("edit", name)
    if buttons.pop(0).button("Duplicate", key=f"{key_prefix}-duplicate", icon=":material/content_copy:",
                             width="stretch"):
        navigation.request_editor("duplicate", name)
    enabled = summary.enabled
    buttons.pop(0).button("Disable" if enabled else "Enable", key=f"{key_prefix}-toggle", width="stretch",
                          icon=":material/pause:" if enabled else ":material/play_arrow:",
                          on_click=components.on_picked, args=(picked, _toggle))
    if buttons.pop(0).button("Edit YAML", key=f"{key_prefix}-yaml", icon=":material/code:", width="stretch"):
        navigation.request_editor("yaml", name)
    buttons.pop(0).button("Delete", key=f"{key_prefix}-delete", icon=":material/delete:", width="stretch",
                          on_click=components.on_picked, args=(picked, _ask_delete))
    if not in_list:  # the list shows its messages at the top
        _flash()
    _confirm_delete(key_prefix)


def _toggle(name: str) -> None:
    summary = next((s for s in data.source_summaries() if s.name == name), None)
    if summary is not None:
        _set_enabled(name, not summary.enabled)


def _set_enabled(name: str, enabled: bool) -> None:
    try:
        onboarding.set_enabled(name, enabled, actor=acting_user().principal)
    except (ConfigError, ConflictError, ConfigNotFoundError, AccessDeniedError) as exc:
        _say("error", f"Could not {'enable' if enabled else 'disable'} {name}: {exc}")
        return
    data.refresh_sources()
    _say("success", f"{name} is now {'enabled' if enabled else 'disabled'}.")


def _ask_delete(name: str) -> None:
    try:
        _, revision = ConfigStore().read("sources", name)
    except ConfigNotFoundError as exc:
        _say("error", str(exc))
        return
    st.session_state[CONFIRM_KEY] = (name, revision)


def _confirm_delete(key_prefix: str) -> None:
    pending = st.session_state.get(CONFIRM_KEY)
    if not pending:
        return
    name, _ = pending
    with st.container(border=True, key=f"{key_prefix}-confirm-box"):
        st.warning(f"Delete **{md_escape(name)}**? Its file goes to the bin ({code(onboarding.bin_folder())}) and "
                   "can be restored at any time from **Deleted sources** at the bottom of the Sources page.",
                   icon=":material/delete:")
        yes, no, _ = st.columns([1, 1, 4])
        yes.button("Move to the bin", key=f"{key_prefix}-delete-yes", type="primary", on_click=_delete)
        no.button("Cancel", key=f"{key_prefix}-delete-no", on_click=lambda: st.session_state.pop(CONFIRM_KEY, None))


def _delete() -> None:
    name, revision = st.session_state.pop(CONFIRM_KEY)
    try:
        onboarding.delete_source(name, actor=acting_user().principal, expected_revision=revision)
    except (ConflictError, ConfigNotFoundError, AccessDeniedError) as exc:
        _say("error", f"Not deleted: {exc}")
        return
    data.refresh_sources()
    _say("success", f"{name} was moved to the bin.")


def _bin() -> None:
    binned = onboarding.deleted_sources()
    if not binned:
        return
    with st.expander(f"Deleted sources ({len(binned)})", icon=":material/restore_from_trash:"):
        labels = {str(p): onboarding.bin_entry_label(p) for p in reversed(binned)}
        chosen = st.selectbox("Deleted source", list(labels), format_func=labels.get, key="sources-bin-pick")
        st.button("Restore", key="sources-restore", icon=":material/restore:", on_click=_restore, args=(chosen,))


def _restore(chosen: str | None) -> None:
    if not chosen:
        return
    try:
        onboarding.restore_source(Path(chosen), actor=acting_user().principal)
    except (ConflictError, ConfigError, FileNotFoundError, AccessDeniedError) as exc:
        _say("error", f"Not restored: {exc}")
        return
    data.refresh_sources()
    _say("success", f"{onboarding.bin_entry_label(Path(chosen)).split(' (')[0]} is back.")


def _say(kind: str, text: str) -> None:
    st.session_state[FLASH_KEY] = (kind, text)


def _flash() -> None:
    flash = st.session_state.pop(FLASH_KEY, None)
    if flash:
        kind, text = flash
        (st.success if kind == "success" else st.error)(md_escape(text), icon=":material/info:")
