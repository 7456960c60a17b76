"""The sources' Databricks jobs as the portal's jobs page works with them: which workspaces can
run jobs, each source's job state (deployed? in step with the YAML? its latest run), and the
changes (deploy, run now, cancel, put a typed secret into the secret scope).

Every change takes an ``actor``: it is checked against their rights (``ingestion_core.config.access``:
``run`` on the source to deploy, run or cancel its job, ``edit`` to store one of its secrets)
and written to the audit log (kind ``databricks_jobs``; a secret's key, never its value).

Example::

    store = ConfigStore()
    target = target_of(store, "databricks_prod")   # ingestion_core.databricks.jobs
    client = workspace_client(target.workspace)
    state = job_state(client, target, store.load_source("sales_de").config, store)
    deploy(client, target, config, store=store, actor="ana")   # created | updated | unchanged
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingestion_core.config import access
from ingestion_core.config.models.source_file import SourceFileBase
from ingestion_core.config.secrets import mask, parse_reference
from ingestion_core.config.store import ConfigStore
from ingestion_core.databricks.job_runs import (
    JobRunHandle,
    cancel_job_runs,
    handle_of,
    job_status,
    refresh_job_run,
    run_now,
)
from ingestion_core.databricks.jobs import (
    Deployment,
    JobTarget,
    config_files,
    deploy_source,
    deploying_identity,
    find_job,
    job_settings,
    settings_differences,
    volume_file,
)
from ingestion_core.databricks.wheel import deploy_wheel, wheel_file_name
from ingestion_core.observe.records import RunRecord

AUDIT_KIND = "databricks_jobs"
SECRET_KEY_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
HOW_TO_CONFIGURE = (
    "Jobs run in a Databricks workspace that a destination file describes: add "
    "`configs/destinations/<name>.yaml` with `type: databricks`, `server_hostname`, `http_path`, `catalog`, "
    "credentials by reference (`access_token: ${secrets.dbx.token}`, or `client_id` / `client_secret` of a "
    "service principal) and a `jobs:` section naming the volume jobs read and write "
    "(`jobs: {volume: /Volumes/main/ingest/files, secret_scope: ingest}`). Check it with "
    "`ingest test-destination <name>`; docs/databricks.md walks through the whole set-up."
)


@dataclass(frozen=True)
class Workspaces:
    """The Databricks destination files that can run jobs, and those that cannot yet (why)."""

    usable: list[str]
    without_jobs: list[str] = field(default_factory=list)  # type databricks, no jobs: section
    invalid: list[str] = field(default_factory=list)  # files that do not validate (type unknown)


def job_workspaces(store: ConfigStore) -> Workspaces:
    usable, without, invalid = [], [], []
    for name, model in sorted(store.destinations().items()):
        if model is None:
            invalid.append(name)
        elif model.type == "databricks":
            (usable if model.jobs is not None else without).append(name)
    return Workspaces(usable, without, invalid)


# --- state ---------------------------------------------------------------------------------

@dataclass
class JobState:
    """One source's job as the workspace has it."""

    source: str
    owner: str
    deployed: bool
    job_id: int | None = None
    job_url: str = ""
    differences: list[str] = field(default_factory=list)  # what deploying would change; empty: in step
    latest_run: dict[str, Any] | None = None  # as job_status lists runs
    problem: str = ""  # the state could not be read: why and what to do

    @property
    def in_step(self) -> bool:
        return self.deployed and not self.differences and not self.problem

    @property
    def running(self) -> bool:
        return bool(self.latest_run and self.latest_run["status"] == "running")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def job_state(client: Any, target: JobTarget, config: SourceFileBase, store: ConfigStore,
              source_path: Path | None = None) -> JobState:
    """Whether the source's job exists, what deploying it would change (job settings, the config
    files on the volume) and its latest run. Problems (a refused token, a duplicate job) are
    reported in ``problem``, not raised."""
    state = JobState(config.name, config.owner, deployed=False)
    try:
        job = find_job(client, target.job_name(config.name), config.name)
        if job is None:
            state.differences = ["not deployed yet"]
            return state
        state.deployed, state.job_id = True, job.job_id
        state.job_url = f"{target.workspace.rest_url}/#job/{job.job_id}"
        state.differences = deployed_differences(client, target, config, store, job.job_id, source_path)
        runs = job_status(client, target, config.name, limit=1)
        state.latest_run = runs[0] if runs else None
    except Exception as exc:  # shown on the page with what to do; never a traceback
        state.problem = problem_text(exc, target)
    return state


def deployed_differences(client: Any, target: JobTarget, config: SourceFileBase, store: ConfigStore, job_id: int,
                         source_path: Path | None = None) -> list[str]:
    """What differs between the deployed job and the YAML: job settings by key (``schedule``,
    ``tasks``...), and config files on the volume by path (``sources/x.yaml changed``)."""
    identity = deploying_identity(client, target)
    desired = job_settings(config, target, f"{target.wheels_dir}/{wheel_file_name()}", identity).as_dict()
    current = client.jobs.get(job_id).settings.as_dict()
    differences = [f"job setting {key}" for key in settings_differences(desired, current, identity)]
    for relative, data in config_files(config, store, source_path).items():
        deployed = volume_file(client, f"{target.configs_dir}/{relative}")
        if deployed != data:
            differences.append(f"{relative} {'not on the volume' if deployed is None else 'changed'}")
    return differences


def problem_text(exc: Exception, target: JobTarget) -> str:
    """A failure talking to the workspace, as a line a user can act on (secrets masked)."""
    text = mask(f"{type(exc).__name__}: {exc}")[:400]
    if isinstance(exc, access.AccessDeniedError | LookupError | FileNotFoundError | ValueError):
        return mask(str(exc))
    return (f"the workspace {target.workspace.rest_url} did not answer as expected ({text}); run "
            f"`ingest test-destination {target.name}` to see which part fails")


# --- changes -------------------------------------------------------------------------------

def _allowed(actor: str | access.Principal, action: str, config: SourceFileBase) -> str:
    return access.require(actor, action, config.owner, name=config.name).name


def _audit(actor: str, action: str, source: str, **detail: Any) -> None:
    access.record(actor, action, AUDIT_KIND, source, **detail)


def deploy(client: Any, target: JobTarget, config: SourceFileBase, *, store: ConfigStore,
           actor: str | access.Principal, wheel: Path | None = None, source_path: Path | None = None) -> Deployment:
    """Create or update the source's job (``ingest deploy``); the wheel is built from this
    checkout unless given."""
    name = _allowed(actor, "run", config)
    deployment = deploy_source(config, target, wheel=wheel or deploy_wheel(), store=store, client=client,
                               source_path=source_path)
    _audit(name, "deploy", config.name, job_id=deployment.job_id, result=deployment.action,
           uploaded=deployment.uploaded, workspace=target.name)
    return deployment


def start_job_run(client: Any, target: JobTarget, config: SourceFileBase, *,
                  actor: str | access.Principal) -> JobRunHandle:
    """Run the source's job now ("Run now"); follow it with :func:`refresh`."""
    name = _allowed(actor, "run", config)
    job = find_job(client, target.job_name(config.name), config.name)
    if job is None:
        raise LookupError(f"source {config.name} has no job in {target.workspace.rest_url} yet: deploy it first")
    handle = run_now(client, job.job_id, config.name)
    _audit(name, "run-now", config.name, job_id=handle.job_id, job_run_id=handle.job_run_id, run_id=handle.run_id)
    return handle


def refresh(client: Any, target: JobTarget, config: SourceFileBase, job_run_id: int, *, actor: str,
            store: ConfigStore) -> tuple[RunRecord, bool]:
    """The run record of one of the source's job runs, brought up to date (written to the runs
    folder as ``ingest job-status --follow`` does); (record, whether the job run is over)."""
    handle = handle_of(client, job_run_id, config.name)
    destination_type = store.load_destination(config.destination).config.type
    return refresh_job_run(client, target, config, handle, actor=actor, destination_type=destination_type)


def cancel(client: Any, target: JobTarget, config: SourceFileBase, *, actor: str | access.Principal,
           job_run_id: int | None = None) -> list[int]:
    """Cancel a run of the source's job (every active one without ``job_run_id``)."""
    name = _allowed(actor, "run", config)
    cancelled = cancel_job_runs(client, target, config.name, job_run_id)
    _audit(name, "cancel", config.name, job_run_ids=cancelled)
    return cancelled


def secret_reference(source: str, key: str) -> str:
    """``${secrets.<source>.<key>}``: a source's secrets live in its own section."""
    import re

    if not re.fullmatch(SECRET_KEY_PATTERN, key or ""):
        raise ValueError(f"secret key '{(key or '')[:64]}' is not valid: use lower-case letters, digits and '_', "
                         "starting with a letter (e.g. password, api_key)")
    return f"${{secrets.{source}.{key}}}"


def put_secret(client: Any, target: JobTarget, config: SourceFileBase, key: str, value: str, *,
               actor: str | access.Principal) -> str:
    """Store a typed value in the workspace's secret scope (``jobs.secret_scope``) as the key
    ``<source>-<key>``; returns the reference to write into the YAML. The value is never logged,
    audited or put in an error."""
    from ingestion_core.config.secret_providers.databricks_scope import DatabricksSecretScopeProvider
    from ingestion_core.config.secrets import store_secret

    scope = target.jobs.secret_scope
    if not scope:
        raise ValueError(f"destination '{target.name}' has no jobs.secret_scope: add one (e.g. secret_scope: ingest) "
                         "so that jobs resolve ${secrets...} from it")
    if not value:
        raise ValueError("the secret value is empty: type the value to store")
    reference = secret_reference(config.name, key)
    name = _allowed(actor, "edit", config)
    provider = DatabricksSecretScopeProvider(scope, client)
    created = provider.ensure_scope()
    store_secret(reference, value, provider=provider)
    _audit(name, "put-secret", config.name, scope=scope, key=provider.keys(parse_reference(reference))[0],
           scope_created=created)
    return reference
