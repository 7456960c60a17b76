"""The new / edit source wizard and its YAML mode. Five steps over one draft kept in the
session, so going back and forth keeps everything typed (every widget writes into the draft in
its ``on_change``; a widget that is not drawn in a run is drawn again from the draft):

1. type or template, 2. connection and its test, 3. tables (one table of every schema's tables
and views with mode, cursor and key per row; files or endpoints), 4. quality checks,
5. review: summary, destination, schedule, diff, the YAML, save, then test or run it.

Fields come from the models through :mod:`portal.onboarding.widgets`; everything that reads or writes
configs, secrets or sources goes through :mod:`ingestion_core.onboarding`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from ingestion_core import onboarding
from ingestion_core.config.models.source_file import SOURCE_FILE_MODELS
from ingestion_core.config.models.sources import SOURCE_MODELS
from ingestion_core.config.store import ConfigNotFoundError
from ingestion_core.config.validation import ConfigIssue
from ingestion_core.engine.errors import for_typed_secrets
from ingestion_core.engine.sources import ConnectionReport
from ingestion_core.onboarding import Discovered, Draft, SaveResult, review
from portal.onboarding import wizard_review, wizard_tables
from portal.onboarding.widgets import FormContext, FormState, render_fields, reset_widgets, seed, show_leftover
from portal.onboarding.wizard_steps import ABOUT_KEYS, STEPS, step_issues
from portal.shared import components
from portal.shared.identity import acting_user
from portal.shared.markdown import code, md_escape
from portal.shared.navigation import EDITOR_REQUEST_KEY

STATE_KEY = "editor"
SOURCES_PAGE = "pages/sources.py"
YAML_KEY = "editor-yaml-text"

SHORT = {"Quality checks": "Checks", "Review & schedule": "Review"}
FORM_OWNED = {"version", "source", "tables", *ABOUT_KEYS}


@dataclass
class EditorState(FormState):
    step: int = 1
    furthest: int = 1
    attempted: set[int] = field(default_factory=set)
    yaml_mode: bool = False
    yaml_text: str = ""
    report: ConnectionReport | None = None
    report_for: str = ""
    schemas: Discovered | None = None
    schemas_for: str = ""
    schema: str | None = None
    tables_found: dict[str, Discovered] = field(default_factory=dict)
    infos: dict[tuple[str | None, str], Any] = field(default_factory=dict)  # (schema, table) -> TableInfo
    files: Discovered | None = None
    endpoint_tests: dict[str, Any] = field(default_factory=dict)
    saved: SaveResult | None = None
    notice: str = ""
    confirm_save: bool = False  # Save was pressed after a failed connection test
    lookup_note: str = ""  # the answer of the last "Look up the columns"


# --- opening -------------------------------------------------------------------------------

def current_state() -> EditorState:
    request = st.session_state.pop(EDITOR_REQUEST_KEY, None)
    state = st.session_state.get(STATE_KEY)
    wanted = st.query_params.get("source")
    if request is None and wanted and (state is None or state.draft.original_name != wanted):
        request = {"mode": "edit", "name": wanted}
    if request is not None or state is None:
        state = _state_for(request or {"mode": "new"})
        st.session_state[STATE_KEY] = state
        for key in (YAML_KEY, "editor-yaml-mode", "wiz-type", "wiz-template"):
            st.session_state.pop(key, None)
        reset_widgets()
    return state


def _state_for(request: dict[str, Any]) -> EditorState:
    mode, name = request.get("mode"), request.get("name")
    if mode == "new" or not name:
        st.query_params.pop("source", None)
        return EditorState(Draft({"source": {}, "tables": []}))
    try:
        if mode == "duplicate":
            st.query_params.pop("source", None)
            return EditorState(onboarding.duplicate_draft(name), step=2, furthest=len(STEPS))
        draft, issues = onboarding.load_draft(name)
    except (ConfigNotFoundError, ValueError) as exc:
        state = EditorState(Draft({"source": {}, "tables": []}))
        state.notice = f"Could not open '{name}': {exc}"
        return state
    st.query_params["source"] = name
    broken = not draft.data or any(i.path.startswith("line ") for i in issues)
    state = EditorState(draft, step=2, furthest=len(STEPS), yaml_mode=mode == "yaml" or broken,
                        yaml_text=draft.text)
    if broken and mode != "yaml":
        state.notice = "This file cannot be read as a form; fix it in YAML mode."
    return state


# --- the page ------------------------------------------------------------------------------

def render(state: EditorState) -> None:
    _header(state)
    if state.notice:
        st.warning(md_escape(state.notice), icon=":material/info:")
    if state.saved is not None:
        wizard_review.saved_banner(state.saved)
    if state.yaml_mode:
        render_yaml_mode(state)
        return
    if state.step >= 3:
        wizard_tables.autofill_all(state)
    model, issues = onboarding.validate_draft(state.draft)
    components.help_icons_off_tab()
    _stepper(state)
    ctx = FormContext(STATE_KEY, state, issues, show_all=state.step in state.attempted)
    STEP_VIEWS[state.step](state, ctx, model)
    if state.step < len(STEPS):
        _navigation(state)


def _header(state: EditorState) -> None:
    draft = state.draft
    title = "New source" if draft.is_new else f"Edit {draft.original_name}"
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    left.title(md_escape(title), anchor=False)
    kind = draft.source_type
    left.caption(f"Type: **{md_escape(kind)}**" if kind else "Onboard a database, a REST API or files, step by step.")
    seed("editor-yaml-mode", state.yaml_mode)
    right.toggle("YAML mode", key="editor-yaml-mode", on_change=_toggle_yaml,
                 help="Edit the YAML file directly; it is validated on every change and saved under the same "
                      "rules as the form.")


def follow_links() -> None:
    """Page switches asked for in callbacks (st.switch_page cannot run inside one)."""
    wizard_review.follow_links()


def _stepper(state: EditorState) -> None:
    titles = wizard_tables.step_titles(state.draft.source_type, STEPS)
    st.progress(state.step / len(STEPS), text=f"Step {state.step} of {len(STEPS)}: {titles[state.step - 1]}")
    # a row that wraps (not columns: on a phone those stack into five full-width rows)
    with st.container(key="wiz-steps", horizontal=True, wrap=True, horizontal_alignment="distribute", gap="small"):
        for number, title in enumerate(titles, start=1):
            st.button(f"{number}. {SHORT.get(title, title)}", key=f"wiz-go-{number}", width="content", help=title,
                      type="primary" if number == state.step else "tertiary",
                      disabled=number > state.furthest, on_click=_go_to, args=(number,))


def _navigation(state: EditorState) -> None:
    st.divider()
    back, _, forward = st.columns([1, 4, 1])
    back.button("Back", key="wiz-back", icon=":material/arrow_back:", disabled=state.step == 1,
                width="stretch", on_click=_go_to, args=(state.step - 1,))
    forward.button("Next", key="wiz-next", icon=":material/arrow_forward:", type="primary", width="stretch",
                   on_click=_next)


def _go_to(step: int) -> None:
    state: EditorState = st.session_state[STATE_KEY]
    state.step = max(1, min(step, len(STEPS)))


def _next() -> None:
    state: EditorState = st.session_state[STATE_KEY]
    _, issues = onboarding.validate_draft(state.draft)
    blocking = [i for i in step_issues(state.step, issues, state.draft) if i.severity == "error"]
    if state.step == 1 and state.draft.source_type not in SOURCE_MODELS:
        blocking.append(ConfigIssue("source.type", "choose a type"))
    if state.step == 3:
        blocking += wizard_tables.missing_table_issues(state)
    if blocking:
        state.attempted.add(state.step)
        return
    state.attempted.discard(state.step)
    state.step += 1
    state.furthest = max(state.furthest, state.step)


# --- steps 1-3 -----------------------------------------------------------------------------

def step_type(state: EditorState, ctx: FormContext, model: Any) -> None:
    draft = state.draft
    if not draft.is_new:
        st.info(f"A saved source keeps its type (**{md_escape(draft.source_type)}**). To change it, duplicate "
                "the source and pick another type.", icon=":material/info:")
        return
    kinds = onboarding.source_types()
    options = list(kinds)
    current = draft.source_type
    seed("wiz-type", current if current in options else None)
    st.radio("What do you want to load?", options, key="wiz-type", on_change=_type_chosen,
             format_func=lambda k: f"{kinds[k].rstrip('.')} ({k})",
             help="The kind of source: a database, a REST API or files.")
    templates = onboarding.source_templates()
    if templates:
        st.selectbox("Or start from a template", [None, *templates], index=None, key="wiz-template",
                     format_func=lambda t: "(none)" if t is None else f"{t} ({templates[t]})",
                     on_change=_template_chosen,
                     help="A filled-in example of a source; you change the values in the next steps.")
    if state.step in state.attempted and current not in kinds:
        st.error("Choose what you want to load first.", icon=":material/error:")


def _type_chosen() -> None:
    state: EditorState = st.session_state[STATE_KEY]
    kind = st.session_state.get("wiz-type")
    if kind is None or kind == state.draft.source_type:
        return
    fresh = onboarding.new_draft(kind)
    for key in ("name", "owner", "description"):
        if state.draft.data.get(key):
            fresh.data[key] = state.draft.data[key]
    _replace_draft(state, fresh)


def _template_chosen() -> None:
    state: EditorState = st.session_state[STATE_KEY]
    template = st.session_state.get("wiz-template")
    if not template:
        return
    fresh = onboarding.draft_from_template(template)
    for key in ("name", "owner"):
        if state.draft.data.get(key):
            fresh.data[key] = state.draft.data[key]
    _replace_draft(state, fresh)
    st.session_state.pop("wiz-type", None)


def _replace_draft(state: EditorState, draft: Draft) -> None:
    state.draft = draft
    state.raw.clear()
    state.raw_errors.clear()
    state.replacing.clear()
    state.report = state.schemas = state.files = None
    state.tables_found.clear()
    state.infos.clear()
    state.attempted.clear()
    state.furthest = max(state.step, 1)
    reset_widgets()


def step_connection(state: EditorState, ctx: FormContext, model: Any) -> None:
    kind = state.draft.source_type
    if kind not in SOURCE_MODELS:
        st.info("Choose a type in step 1 first.", icon=":material/info:")
        return
    if not state.draft.is_new:
        ctx.disabled.add("name")
    if current_report(state) is not None:
        ctx.issues = [*ctx.issues, *review.connection_issues(state.report, state.draft.secrets)]
    st.subheader("About this source", anchor=False)
    render_fields(SOURCE_FILE_MODELS[kind], "", ctx, only=ABOUT_KEYS, inline=True)
    st.subheader("Connection", anchor=False)
    render_fields(SOURCE_MODELS[kind], "source", ctx, skip=("type",), more_label="More connection settings")
    show_leftover(ctx, ("source", *ABOUT_KEYS))
    connection_test(state)


def current_report(state: EditorState) -> ConnectionReport | None:
    """The last connection test, when it was made with the connection as it is now."""
    fresh = state.report is not None and state.report_for == onboarding.connection_fingerprint(state.draft)
    return state.report if fresh else None


def connection_test(state: EditorState) -> None:
    fingerprint = onboarding.connection_fingerprint(state.draft)
    timeout = onboarding.call_timeout()
    st.divider()
    test, note = st.columns([1, 3], vertical_alignment="center")
    if test.button("Test connection", key="wiz-test", icon=":material/electrical_services:", type="primary"):
        with st.spinner(f"Connecting (up to {timeout:g} s)...", show_time=True):
            state.report = onboarding.test_connection(state.draft, timeout)
            state.report_for = fingerprint
        st.rerun()  # draw the fields again with the answer attached to the one to fix
    note.caption("Checks that the portal can reach the source with these settings. Nothing is saved; a "
                 "typed password is used for the test only. You may skip it and come back later.")
    show_report(state.report, state.draft.secrets, stale=state.report is not None and state.report_for != fingerprint)


def show_report(report: ConnectionReport | None, typed: dict[str, str], *, stale: bool = False) -> None:
    """The answer of the last test. A failure of the settings as they are is not repeated here: the
    step draws it once, at the field to fix (``review.connection_issues``), or under "Also to fix"."""
    if report is None:
        return
    if report.ok:
        version = report.details.get("server_version")
        extra = f" Server: {md_escape(str(version).split(',')[0][:120])}." if version else ""
        reason = "" if report.reason in ("", "connected") else f" {md_escape(report.reason)}."
        st.success(f"Connected in {report.duration_s:.2f} s.{reason}{extra}", icon=":material/check_circle:")
    elif not stale:
        st.caption(":material/error: Could not connect: what went wrong and what to do are shown above, at the "
                   "field to fix.")
    else:
        hint = for_typed_secrets(report.mitigation or "check the connection settings", typed)
        st.error(f"**Could not connect.** {md_escape(report.reason)}\n\n**What to do:** {md_escape(hint)}",
                 icon=":material/error:")
    if stale:
        st.caption(":material/history: The connection settings changed since this test; test again.")


STEP_VIEWS = {
    1: step_type, 2: step_connection, 3: wizard_tables.step_tables, 4: wizard_tables.step_checks,
    5: wizard_review.step_review,
}


# --- YAML mode -----------------------------------------------------------------------------

def _toggle_yaml() -> None:
    state: EditorState = st.session_state[STATE_KEY]
    if st.session_state.get("editor-yaml-mode"):
        unchanged = not state.draft.is_new and not state.draft.secrets and state.yaml_text == state.draft.text \
            and state.draft.data == onboarding.load_draft(state.draft.original_name or "")[0].data
        state.yaml_text = state.draft.text if unchanged else onboarding.yaml_of_draft(state.draft)
        st.session_state.pop(YAML_KEY, None)
        state.yaml_mode = True
        return
    data, issues = onboarding.parse_yaml_text(state.yaml_text)
    if issues:
        state.notice = "The YAML cannot be turned into the form: " + issues[0].message
        st.session_state["editor-yaml-mode"] = True
        return
    state.notice = ""
    state.draft.data = data
    state.yaml_mode = False
    reset_widgets()


def _yaml_typed() -> None:
    state: EditorState = st.session_state[STATE_KEY]
    state.yaml_text = st.session_state.get(YAML_KEY) or ""


def render_yaml_mode(state: EditorState) -> None:
    draft = state.draft
    seed(YAML_KEY, state.yaml_text)
    st.text_area("Source file (YAML)", height=480, key=YAML_KEY, on_change=_yaml_typed,
                 help="The whole source file. Secrets only as references: ${secrets.<source>.<key>} or ${env:NAME}.")
    model, issues = onboarding.validate_yaml(state.yaml_text, draft)
    errors = [i for i in issues if i.severity == "error"]
    if errors:
        st.error("**Problems:**\n" + "\n".join(f"- {code(i.path or 'file')}: {md_escape(i.message)}"
                                                for i in errors), icon=":material/error:")
    else:
        st.success("Valid.", icon=":material/check_circle:")
    for warning in (i for i in issues if i.severity != "error"):
        st.warning(f"{code(warning.path)}: {md_escape(warning.message)}", icon=":material/warning:")
    if model is not None:
        wizard_review.show_diff(draft, state.yaml_text)
        wizard_review.show_pending_secrets(draft, model.name)
    if st.button("Save", key="yaml-save", type="primary", icon=":material/save:", disabled=model is None):
        wizard_review.save(state, lambda: onboarding.save_yaml(state.yaml_text, draft, actor=acting_user().principal))
