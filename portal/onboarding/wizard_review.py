"""The last step of the source form: what the source will do in plain words, where it lands and
when it runs (the schedule picker), then the diff and the YAML, and Save. A failed connection
test is said here and Save asks to confirm; a table the database does not have is refused.
After the save: Test now / Run now on the source's Test & run page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from ingestion_core import onboarding
from ingestion_core.config.access import AccessDeniedError
from ingestion_core.config.models.source_file import SOURCE_FILE_MODELS
from ingestion_core.config.store import ConfigStore, ConflictError
from ingestion_core.config.validation import ConfigError, ConfigIssue
from ingestion_core.observe.schedule_status import describe_executor
from ingestion_core.onboarding import Draft, SaveResult, review
from portal.onboarding import schedule_picker, wizard_tables
from portal.onboarding.widgets import FormContext, render_fields, reset_widgets
from portal.onboarding.wizard_steps import STEPS, step_issues
from portal.shared.identity import acting_user
from portal.shared.markdown import code, md_escape

STATE_KEY = "editor"
YAML_KEY = "editor-yaml-text"
SOURCES_PAGE = "pages/sources.py"
GO_KEY = "editor-go"  # a page switch asked for in a callback: ("sources" | "test" | "run", name)
RUN_FLASH_KEY = "run-now-flash"
FORM_OWNED = {"version", "source", "tables", "name", "owner", "description", "schedule", "timezone"}


def _executor(model: Any) -> None:
    """One line under the picker: what will execute this schedule (a Databricks job, the local
    scheduler, alive or not with the command that starts it, or nothing: no schedule)."""
    if model is not None and model.schedule:
        executor = describe_executor(model)
        running = executor.state in ("alive", "deployed by ingest deploy")
        icon = ":material/check_circle:" if running else ":material/info:"
        st.caption(f"{icon} **Runs on:** {executor.text}")


def step_review(state: Any, ctx: FormContext, model: Any) -> None:
    draft = state.draft
    kind = draft.source_type
    if kind not in SOURCE_FILE_MODELS:
        st.info("Choose a type in step 1 first.", icon=":material/info:")
        return
    missing = wizard_tables.missing_table_issues(state)
    if model is not None and not missing:
        st.info(f"**This source loads** {md_escape(review.summary(model))}.", icon=":material/summarize:")
    _connection_line(state)
    _problems(state, ctx, [*ctx.issues, *missing])
    st.subheader("When it runs", anchor=False)
    schedule_picker.render(ctx)
    _executor(model)
    _destination(state, ctx)
    if model is not None:
        text = onboarding.draft_yaml(model, onboarding.saved_data(draft))
        show_diff(draft, text)
        with st.expander(f"The file that will be saved: configs/sources/{model.name}.yaml", icon=":material/code:",
                         expanded=draft.is_new):
            if _has_comments(draft.text):
                st.warning("Saving from the form leaves out the comments of the saved file. To keep them, make "
                           "the change in YAML mode instead.", icon=":material/comments_disabled:")
            st.code(text, language="yaml")
        show_pending_secrets(draft, model.name)
    _save_buttons(state, model, missing)


def _connection_line(state: Any) -> None:
    fresh = state.report is not None and state.report_for == onboarding.connection_fingerprint(state.draft)
    if fresh and not state.report.ok:
        st.warning(f"**The connection test failed:** {md_escape(state.report.reason)}. Saving is possible, but "
                   "runs will fail until the connection works.", icon=":material/report:")
    elif fresh:
        st.caption(":material/check_circle: The connection test passed.")
    elif onboarding.is_sql(state.draft.source_type) or state.draft.source_type == "rest_api":
        st.caption(":material/help: The connection was not tested with these settings (step 2).")


def _problems(state: Any, ctx: FormContext, issues: list[ConfigIssue]) -> None:
    errors = [i for i in issues if i.severity == "error" and i.path not in ("schedule", "timezone")]
    if errors:
        st.error("**Fix these before saving:**", icon=":material/error:")
        titles = wizard_tables.step_titles(state.draft.source_type, STEPS)
        for number, issue in enumerate(errors):
            step = next((s for s in range(1, len(STEPS)) if issue in step_issues(s, [issue], state.draft)), 5)
            text, go = st.columns([5, 1], vertical_alignment="center")
            text.markdown(f"- {code(issue.path or 'file')}: {md_escape(issue.message)}")
            if step != 5:
                go.button(f"Go to {titles[step - 1]}", key=f"wiz-fix-{number}", on_click=_go_to, args=(step,))
    for warning in (i for i in issues if i.severity != "error"):
        st.warning(f"{code(warning.path)}: {md_escape(warning.message)}", icon=":material/warning:")


def _go_to(step: int) -> None:
    st.session_state[STATE_KEY].step = step


def _destination(state: Any, ctx: FormContext) -> None:
    ctx.choices["destination"] = ConfigStore().names("destinations")
    file_model = SOURCE_FILE_MODELS[state.draft.source_type]
    keys = [name for name, info in file_model.model_fields.items() if (info.alias or name) not in FORM_OWNED]
    st.subheader("Where it lands", anchor=False)
    st.caption("Where real runs load the tables. Test runs always use a local DuckDB file, so trying things out "
               "never touches the real destination.")
    render_fields(file_model, "", ctx, only=keys, more_label="Defaults, retries and parallelism")


def _save_buttons(state: Any, model: Any, missing: list[ConfigIssue]) -> None:
    draft = state.draft
    failed = state.report is not None and not state.report.ok \
        and state.report_for == onboarding.connection_fingerprint(draft)
    blocked = model is None or bool(missing)
    if state.confirm_save and failed and not blocked:
        st.warning("**The connection test failed.** Save anyway? The source is saved, but its runs fail until "
                   "the connection works.", icon=":material/report:")
        yes, no, _ = st.columns([1, 1, 4])
        if yes.button("Save anyway", key="wiz-save-anyway", type="primary"):
            save(state, lambda: onboarding.save_draft(draft, actor=acting_user().principal))
        no.button("Cancel", key="wiz-save-cancel", on_click=_cancel_confirm)
        return
    if st.button("Save", key="wiz-save", type="primary", icon=":material/save:", disabled=blocked):
        if failed:
            state.confirm_save = True
            st.rerun()
        save(state, lambda: onboarding.save_draft(draft, actor=acting_user().principal))


def _cancel_confirm() -> None:
    st.session_state[STATE_KEY].confirm_save = False


def _has_comments(text: str) -> bool:
    return any(line.lstrip().startswith("#") and "yaml-language-server" not in line for line in text.splitlines())


def show_diff(draft: Draft, text: str) -> None:
    if draft.is_new:
        return
    diff = onboarding.diff_text(draft.text, text, draft.original_name or "")
    st.subheader("Changes against the saved file", anchor=False)
    if diff:
        st.code(diff, language="diff")
    else:
        st.caption("No changes.")


def show_pending_secrets(draft: Draft, name: str) -> None:
    pending = [onboarding.reference_for(name, path) for path, value in draft.secrets.items() if value]
    if pending:
        where = onboarding.describe_reference(pending[0]).split(",")[0]
        st.info(f"On save, {len(pending)} secret(s) go to the {md_escape(where)}: "
                + ", ".join(f"`{r}`" for r in pending) + ". The YAML only holds these references.",
                icon=":material/lock:")


def save(state: Any, write: Callable[[], SaveResult]) -> None:
    state.confirm_save = False
    # what the form's tests and discoveries were made with (YAML mode saves its text, not the form)
    tested = None if state.yaml_mode else onboarding.connection_fingerprint(state.draft)
    try:
        saved = write()
    except ConflictError as exc:
        st.error(f"**Not saved.** {md_escape(exc)}", icon=":material/sync_problem:")
        return
    except AccessDeniedError as exc:
        st.error(f"**Not saved.** {md_escape(exc)}", icon=":material/lock:")
        return
    except ConfigError as exc:
        st.error("**Not saved.** " + "; ".join(f"{code(i.path)}: {md_escape(i.message)}" for i in exc.issues),
                 icon=":material/error:")
        return
    draft = state.draft
    draft.revision, draft.original_name = saved.revision, saved.name
    draft.text = saved.path.read_text(encoding="utf-8")
    draft.secrets.clear()
    draft.data = onboarding.load_draft(saved.name)[0].data
    if tested is not None:
        _carry_over(state, tested, onboarding.connection_fingerprint(draft))
    state.replacing.clear()
    state.saved = saved
    state.yaml_text = draft.text
    st.session_state.pop(YAML_KEY, None)
    reset_widgets()
    schedule_picker.forget()
    st.query_params["source"] = saved.name
    from portal.shared import data

    data.refresh_sources()
    st.rerun()


def _carry_over(state: Any, before: str, after: str) -> None:
    """The saved connection is the one tested: a typed secret is now a ``${secrets...}``
    reference to the same value, which changes the fingerprint but not the connection. The last
    test and the discoveries made with the settings as saved stay theirs (the review keeps saying
    "The connection test passed"); those of older settings stay stale."""
    if state.report_for == before:
        state.report_for = after
    if state.schemas_for == before:
        state.schemas_for = after
    for key in [k for k in state.tables_found if k.startswith(f"{before}|")]:
        state.tables_found[f"{after}|{key.split('|', 1)[1]}"] = state.tables_found.pop(key)


# --- after the save ---------------------------------------------------------------------------

def saved_banner(saved: SaveResult) -> None:
    stored = f" Secrets stored: {', '.join(f'`{r}`' for r in saved.stored_secrets)}." if saved.stored_secrets else ""
    st.success(f"Saved {code(saved.path)}. **{md_escape(saved.name)}** is now in the Sources list.{stored}",
               icon=":material/check_circle:")
    with st.container(horizontal=True, gap="small"):
        st.button("Test now", key="editor-test-now", type="primary", icon=":material/science:",
                  on_click=_go, args=("test", saved.name),
                  help="A test run: the real pipeline on a sample into a local DuckDB file; shows the rows.")
        st.button("Run now", key="editor-run-now", icon=":material/play_arrow:",
                  on_click=_go, args=("run", saved.name), help="A real run into the destination, in the background.")
        st.button("Go to Sources", key="editor-to-sources", icon=":material/list:",
                  on_click=_go, args=("sources", saved.name))


def _go(where: str, name: str) -> None:
    st.session_state[GO_KEY] = (where, name)


def follow_links() -> None:
    """Page switches asked for in callbacks (st.switch_page cannot run inside one)."""
    go = st.session_state.pop(GO_KEY, None)
    if go is None:
        return
    where, name = go
    if where == "sources":
        st.switch_page(SOURCES_PAGE)
    from portal.sources import test_run

    if where == "test":
        test_run.request_test_run(name)
    from portal.sources import run_control_view

    run_control_view.start(name)  # says on the Run now tab that it started, or why not
    st.switch_page(test_run.SOURCE_PAGE, query_params={"source": name})
