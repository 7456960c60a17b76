"""The Databricks jobs page: per source, whether its job is deployed and in step with the YAML,
Deploy / Redeploy, Run now, the latest job run followed live into its run record, Cancel, and a
form that stores a typed secret in the workspace's secret scope. Everything goes through
:mod:`ingestion_core.databricks.job_service`; every change is made as the acting user.

The password typed into the secret form is sent to the workspace and dropped: the form clears
on submit and nothing on the page, in the flash message or in the audit log repeats it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from ingestion_core.config.access import can
from ingestion_core.config.secrets import mask
from ingestion_core.config.store import ConfigStore
from ingestion_core.databricks import job_service
from ingestion_core.databricks.jobs import target_of
from ingestion_core.observe.records import RunRecord, find_record
from ingestion_core.storage.workspace import workspace_client
from portal.dashboards import dashboard_data, run_view
from portal.dashboards.dashboard_widgets import code, run_link, status_label
from portal.shared.data import config_fingerprint, source_summaries
from portal.shared.identity import acting_user
from portal.shared.markdown import md_escape

FLASH_KEY = "jobs-flash"
POLL_SECONDS = 5.0
STATE_TTL_SECONDS = 30
STATUS_STATES = {"success": "complete", "running": "running"}
SECRET_KEY, SECRET_VALUE = "jobs-secret-key", "jobs-secret-value"


# --- the page --------------------------------------------------------------------------------

def render() -> None:
    st.title("Databricks jobs", anchor=False)
    st.caption("One Databricks job per source, made from the same YAML (`ingest deploy`): deploy it, run it now, "
               "follow and cancel its runs, and store the secrets it reads.")
    store = ConfigStore()
    workspaces = job_service.job_workspaces(store)
    if not workspaces.usable:
        not_configured(workspaces)
        return
    name = st.selectbox("Workspace", workspaces.usable, key="jobs-workspace",
                        help="A Databricks destination file with a jobs: section; every source's job goes there")
    target = target_of(store, name)
    _flash()
    names = [s.name for s in source_summaries() if s.valid]
    if not names:
        st.info("No valid source yet: add one on the New / edit source page, then deploy it here.",
                icon=":material/info:")
        return
    states = job_states(name, tuple(names))
    overview(states)
    wanted = st.query_params.get("source")  # a link to jobs?source=<name>
    if wanted in names and "jobs-source" not in st.session_state:
        st.session_state["jobs-source"] = wanted
    source = st.selectbox("Source", names, key="jobs-source")
    config = store.load_source(source).config
    state = next(s for s in states if s.source == source)
    source_panel(name, target, config, state)
    secret_form(name, target, config)


def not_configured(workspaces: job_service.Workspaces) -> None:
    st.info(f"No Databricks workspace is configured for jobs. {job_service.HOW_TO_CONFIGURE}",
            icon=":material/cloud_off:")
    if workspaces.without_jobs:
        st.warning(f"{', '.join(code(n) for n in workspaces.without_jobs)}: a Databricks destination without a "
                   "`jobs:` section. Add one, e.g. `jobs: {volume: /Volumes/main/ingest/files}`.",
                   icon=":material/edit_note:")
    if workspaces.invalid:
        st.warning(f"{', '.join(code(n) for n in workspaces.invalid)}: destination file(s) that do not validate; "
                   "run `ingest validate` to see why.", icon=":material/error:")


# --- job states (cached: one request per job per TTL) ------------------------------------------

@st.cache_data(ttl=STATE_TTL_SECONDS, max_entries=8, show_spinner="Asking the workspace about the jobs...")
def _job_states(workspace: str, names: tuple[str, ...], fingerprint: Any) -> list[job_service.JobState]:
    store = ConfigStore()
    target = target_of(store, workspace)
    try:
        client = workspace_client(target.workspace, timeout_seconds=20)
    except Exception as exc:  # an unresolvable credential reference: every source says so
        problem = job_service.problem_text(exc, target)
        return [job_service.JobState(n, "", False, problem=problem) for n in names]
    return [job_service.job_state(client, target, store.load_source(n).config, store) for n in names]


def job_states(workspace: str, names: tuple[str, ...]) -> list[job_service.JobState]:
    store = ConfigStore()
    return _job_states(workspace, names, config_fingerprint(store.root))


def forget_states() -> None:
    _job_states.clear()
    dashboard_data.clear()


def overview(states: list[job_service.JobState]) -> None:
    rows = []
    for s in states:
        latest = s.latest_run or {}
        rows.append({"source": s.source, "owner": s.owner, "job": "deployed" if s.deployed else "not deployed",
                     "in step with the YAML": "-" if not s.deployed or s.problem else ("yes" if s.in_step else "no"),
                     "latest run": status_label(latest.get("status")) if latest else "",
                     "started": _when(latest.get("started_at")), "problem": s.problem})
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="jobs-overview",
                 column_config={"problem": st.column_config.TextColumn(width="large")})


def _when(iso: str | None) -> str:
    return f"{iso[:16].replace('T', ' ')} UTC" if iso else ""


# --- one source --------------------------------------------------------------------------------

def source_panel(workspace: str, target: Any, config: Any, state: job_service.JobState) -> None:
    user = acting_user()
    may_run = can(user.principal, "run", config.owner)
    with st.container(border=True, key="jobs-panel"):
        if state.problem:
            st.error(md_escape(state.problem), icon=":material/error:")
        elif not state.deployed:
            st.info(f"{code(config.name)} has no job in {code(target.workspace.rest_url)} yet: Deploy creates it.",
                    icon=":material/cloud_upload:")
        elif state.differences:
            st.warning("The deployed job differs from the YAML: " + ", ".join(md_escape(d) for d in state.differences)
                       + ". Redeploy to bring it in step.", icon=":material/sync_problem:")
        else:
            st.success(f"Job [{state.job_id}]({state.job_url}) is deployed and in step with the YAML.",
                       icon=":material/cloud_done:")
        left, middle, right = st.columns(3)
        rights = None if may_run else f"{user.name} may not run {config.name} (team {config.owner})"
        left.button("Redeploy" if state.deployed else "Deploy", key="jobs-deploy", icon=":material/cloud_upload:",
                    type="primary" if not state.in_step else "secondary", width="stretch", disabled=not may_run,
                    on_click=deploy, args=(workspace, config.name), help=rights or
                    "Uploads the wheel and the config files to the volume, then creates or updates the job")
        middle.button("Run now", key="jobs-run-now", icon=":material/rocket_launch:", width="stretch",
                      disabled=not (may_run and state.deployed) or state.running, on_click=run_now,
                      args=(workspace, config.name), help=rights or "Starts a job run now (the job must be deployed)")
        right.button("Refresh", key="jobs-refresh", icon=":material/refresh:", width="stretch", on_click=forget_states,
                     help="Ask the workspace again")
        if state.latest_run:
            latest_run(workspace, config.name, state.latest_run["job_run_id"], may_run,
                       live=state.latest_run["status"] == "running")


def latest_run(workspace: str, source: str, job_run_id: int, may_run: bool, live: bool) -> None:
    if live:
        st.fragment(_live_run, run_every=POLL_SECONDS)(workspace, source, job_run_id, may_run)
    else:
        _finished_run(workspace, source, job_run_id)


def _live_run(workspace: str, source: str, job_run_id: int, may_run: bool) -> None:
    """The running job run, asked again every few seconds; the page reruns once it ends."""
    record, over = _refresh(workspace, source, job_run_id)
    if record is None:
        return
    if over:
        forget_states()
        st.rerun()
    box = st.status(f"Job run {job_run_id} of {source}: {status_label(record.status)}", state="running",
                    expanded=True)
    _record_body(box, record)
    st.button("Cancel the job run", key="jobs-cancel", icon=":material/cancel:", disabled=not may_run,
              on_click=cancel, args=(workspace, source, job_run_id),
              help="Asks Databricks to cancel the run; tables already loaded stay loaded")


def _finished_run(workspace: str, source: str, job_run_id: int) -> None:
    record, _ = _refresh(workspace, source, job_run_id, keep=True)
    if record is None:
        return
    box = st.status(f"Latest job run {job_run_id}: {status_label(record.status)}",
                    state=STATUS_STATES.get(record.status, "error"), expanded=record.status != "success")
    _record_body(box, record)


def _record_body(box: Any, record: RunRecord) -> None:
    box.markdown(f"Started by **{md_escape(record.actor)}** ({record.trigger}) at {record.started_at:%Y-%m-%d %H:%M} "
                 f"UTC · [the job run's page]({record.log_path}) · {run_link(record.run_id)}")
    if record.error:
        box.error(f"{md_escape(mask(record.error.message))}\n\n**What to do:** {md_escape(record.error.hint)}",
                  icon=":material/error:")
    with box.container(key="jobs-run-tables"):
        st.dataframe(run_view.tables_frame(record.tables), hide_index=True, placeholder="-")


def _refresh(workspace: str, source: str, job_run_id: int, keep: bool = False) -> tuple[RunRecord | None, bool]:
    """The job run's record, brought up to date (``keep``: a finished run's record already here is
    used as is)."""
    store = ConfigStore()
    target = target_of(store, workspace)
    config = store.load_source(source).config
    try:
        client = workspace_client(target.workspace, timeout_seconds=20)
        if keep:
            handle = job_service.handle_of(client, job_run_id, source)
            known = find_record(handle.run_id)
            if known is not None and known.status != "running":
                return known, True
        return job_service.refresh(client, target, config, job_run_id, actor=acting_user().name, store=store)
    except Exception as exc:
        st.error(f"Cannot read job run {job_run_id}: {md_escape(job_service.problem_text(exc, target))}",
                 icon=":material/error:")
        return None, False


# --- actions (button callbacks) ------------------------------------------------------------------

def _act(workspace: str, source: str, what: str, action: Any) -> Any:
    """Run ``action(client, target, config, store, actor)``; a failure becomes the flash message."""
    store = ConfigStore()
    target = target_of(store, workspace)
    try:
        client = workspace_client(target.workspace, timeout_seconds=60)
        result = action(client, target, store.load_source(source).config, store, acting_user().principal)
    except Exception as exc:
        _say("error", f"{what} failed: {job_service.problem_text(exc, target)}")
        return None
    finally:
        forget_states()
    return result


def deploy(workspace: str, source: str) -> None:
    deployment = _act(workspace, source, f"Deploying {source}", lambda client, target, config, store, actor:
                      job_service.deploy(client, target, config, store=store, actor=actor))
    if deployment is not None:
        files = f"; uploaded {len(deployment.uploaded)} file(s)" if deployment.uploaded else ""
        _say("success", f"Job {deployment.job_name} ({deployment.job_id}) {deployment.action}{files}.")


def run_now(workspace: str, source: str) -> None:
    handle = _act(workspace, source, f"Starting {source}'s job", lambda client, target, config, store, actor:
                  job_service.start_job_run(client, target, config, actor=actor))
    if handle is not None:
        _say("success", f"Started job run {handle.job_run_id} (run {handle.run_id}); its status follows below.")


def cancel(workspace: str, source: str, job_run_id: int) -> None:
    cancelled = _act(workspace, source, f"Cancelling job run {job_run_id}", lambda client, target, config, store,
                     actor: job_service.cancel(client, target, config, actor=actor, job_run_id=job_run_id))
    if cancelled is not None:
        _say("success" if cancelled else "info", f"Asked job run {job_run_id} to cancel." if cancelled else
             f"Job run {job_run_id} was no longer running.")


# --- secrets ------------------------------------------------------------------------------------

def secret_form(workspace: str, target: Any, config: Any) -> None:
    scope = target.jobs.secret_scope
    st.subheader("Store a secret for the job", anchor=False)
    if not scope:
        st.info(f"{code(workspace)} names no secret scope: add `secret_scope: ingest` to its `jobs:` section, and "
                "jobs resolve `${secrets...}` references from it.", icon=":material/key_off:")
        return
    st.caption(f"Stored in the secret scope {code(scope)} of {code(target.workspace.rest_url)} as the key "
               f"`{config.name}-<key>`; the source's YAML refers to it as `${{secrets.{config.name}.<key>}}`. "
               "The value is sent to Databricks only: it is not shown, logged or kept here.")
    with st.form("jobs-secret", clear_on_submit=True, border=True):
        st.text_input("Key", key=SECRET_KEY, placeholder="password",
                      help="lower-case letters, digits and _, e.g. password or api_key")
        st.text_input("Value", key=SECRET_VALUE, type="password", autocomplete="new-password")
        st.form_submit_button("Store in the secret scope", key="jobs-secret-store", icon=":material/key:",
                              on_click=store_secret, args=(workspace, config.name))


def store_secret(workspace: str, source: str) -> None:
    """The form's callback: the typed value goes to the scope and is dropped from the session."""
    key, value = st.session_state.get(SECRET_KEY, ""), st.session_state.get(SECRET_VALUE, "")
    st.session_state[SECRET_VALUE] = ""
    reference = _act(workspace, source, "Storing the secret", lambda client, target, config, store, actor:
                     job_service.put_secret(client, target, config, key.strip(), value, actor=actor))
    if reference is not None:
        _say("success", f"Stored. Write {reference} into the YAML where the value is needed.")


# --- messages -------------------------------------------------------------------------------------

def _say(kind: str, text: str) -> None:
    st.session_state[FLASH_KEY] = (kind, mask(text))


def _flash() -> None:
    kept = st.session_state.pop(FLASH_KEY, None)
    if kept:
        kind, text = kept
        getattr(st, kind)(md_escape(text), icon={"success": ":material/check_circle:", "error": ":material/error:",
                                                 "info": ":material/info:"}[kind])
