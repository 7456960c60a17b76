"""One Databricks job per source, created or updated from the same YAML (``ingest deploy``).

The job runs a python wheel task: this package's ``ingest`` entry point with ``job-run SOURCE``
(see ``job_run``), reading its config from ``<volume>/configs`` and writing its run records to
``<volume>/runs``. Its schedule is the source's cron (UTC) in Quartz form, paused while the
source is disabled; retries, timeout, failure e-mails, compute (a job cluster or serverless)
and the identity it runs as come from the ``jobs:`` section of a Databricks destination file
(the "workspace": by default the source's own destination).

Deploying is idempotent: the job is found by name and its ``ingest_source`` tag, left alone
when its settings already match, reset (never re-created) when they differ; files are uploaded
only when their content changed.

Example::

    target = resolve_target(config, store)
    deployment = deploy_source(config, target, wheel=Path("dist/ingestion_portal-0.1.0-py3-none-any.whl"),
                               store=store)
    deployment.action  # created | updated | unchanged
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingestion_core.config.models.source_file import SourceFileBase
from ingestion_core.config.store import ConfigStore
from ingestion_core.databricks.schedule import quartz_cron
from ingestion_core.databricks.wheel import DISTRIBUTION, ENTRY_POINT

TASK_KEY = "ingest"
SOURCE_TAG = "ingest_source"
MANAGED_TAG = ("managed_by", "ingestion-portal")
RUN_ID_PARAMETER = "run_id"
# The job settings `ingest deploy` decides; the workspace may add others (format, queue, ...).
MANAGED_FIELDS = frozenset({"name", "description", "tags", "tasks", "parameters", "max_concurrent_runs",
                            "timeout_seconds", "environments", "job_clusters", "schedule", "email_notifications",
                            "run_as"})
SINGLE_NODE = {"spark.databricks.cluster.profile": "singleNode", "spark.master": "local[*]"}


@dataclass(frozen=True)
class JobTarget:
    """The workspace a source's job lives in: a Databricks destination file with ``jobs:``."""

    name: str
    workspace: Any  # DatabricksDestination
    jobs: Any  # DatabricksJobs

    @property
    def configs_dir(self) -> str:
        return f"{self.jobs.volume}/configs"

    @property
    def runs_dir(self) -> str:
        return f"{self.jobs.volume}/runs"

    @property
    def wheels_dir(self) -> str:
        return f"{self.jobs.volume}/wheels"

    def job_name(self, source: str) -> str:
        return f"{self.jobs.job_name_prefix}{source}"


def resolve_target(config: SourceFileBase, store: ConfigStore, workspace: str | None = None) -> JobTarget:
    """The Databricks destination file ``workspace`` names, else the source's own destination."""
    return target_of(store, workspace or config.destination)


def target_of(store: ConfigStore, name: str) -> JobTarget:
    """The jobs target a Databricks destination file describes."""
    destination = store.load_destination(name).config
    if destination.type != "databricks":
        raise ValueError(f"destination '{name}' is a {destination.type} destination; jobs run in a Databricks "
                         "workspace: pass --workspace <a Databricks destination with a jobs: section>")
    if destination.jobs is None:
        raise ValueError(f"destination '{name}' has no jobs: section; add one, e.g. 'jobs: {{volume: "
                         "/Volumes/main/ingest/files}}' (see docs/databricks.md)")
    return JobTarget(name, destination, destination.jobs)


# --- the job's settings ---------------------------------------------------------------------

def task_parameters(config: SourceFileBase, target: JobTarget, actor: str, config_dir: str | None = None) -> list[str]:
    """``ingest --actor A job-run SOURCE ...``: the run id comes from the job parameter (set by
    "run now"; empty for scheduled runs) and the job run id from Databricks."""
    params = ["--actor", actor, "job-run", config.name, "--config-dir", config_dir or target.configs_dir,
              "--runs-dir", target.runs_dir, "--run-id", f"{{{{job.parameters.{RUN_ID_PARAMETER}}}}}",
              "--job-run-id", "{{job.run_id}}"]
    if target.jobs.secret_scope:
        params += ["--secret-scope", target.jobs.secret_scope]
    if target.jobs.key_vault_url:
        params += ["--key-vault", target.jobs.key_vault_url]
    return params


def cluster_spec(jobs_config: Any) -> Any:
    from databricks.sdk.service import compute

    cluster = jobs_config.cluster
    single = cluster.num_workers == 0
    return compute.ClusterSpec(
        spark_version=cluster.spark_version, node_type_id=cluster.node_type_id, num_workers=cluster.num_workers,
        data_security_mode=compute.DataSecurityMode(cluster.data_security_mode), policy_id=cluster.policy_id,
        spark_conf=dict(SINGLE_NODE) if single else None,
        custom_tags={"ResourceClass": "SingleNode"} if single else None,
    )


def dependency_tasks(config: SourceFileBase, dependency_jobs: dict[str, Any]) -> list[Any]:
    """``after: [a]`` as tasks: ``after_a`` runs source a's own job (``run_job_task``) and waits for
    it; the ingest task depends on these, so it is skipped ("Upstream failed") when one fails."""
    from databricks.sdk.service import jobs

    missing = [d for d in config.after if d not in dependency_jobs]
    if missing:
        raise LookupError(f"{config.name} runs after {', '.join(missing)}, which has no job here yet: deploy it first "
                          f"(`ingest deploy {missing[0]}`), or put it in the same bundle")
    return [jobs.Task(task_key=f"after_{d}", description=f"run source {d}'s job first (after: in {config.name})",
                      run_job_task=jobs.RunJobTask(job_id=dependency_jobs[d])) for d in config.after]


def job_settings(config: SourceFileBase, target: JobTarget, wheel_path: str, actor: str,
                 config_dir: str | None = None, dependency_jobs: dict[str, Any] | None = None) -> Any:
    """The whole ``JobSettings`` of a source's job (what create / reset send). ``dependency_jobs``:
    the job id (or a bundle reference) of each source in ``after``."""
    from databricks.sdk.service import compute, jobs

    settings_of = target.jobs
    before = dependency_tasks(config, dependency_jobs or {}) if config.after else []
    task = jobs.Task(
        task_key=TASK_KEY, description=f"ingest {config.name}",
        python_wheel_task=jobs.PythonWheelTask(package_name=DISTRIBUTION, entry_point=ENTRY_POINT,
                                               parameters=task_parameters(config, target, actor, config_dir)),
        max_retries=settings_of.max_retries, min_retry_interval_millis=settings_of.min_retry_interval_minutes * 60_000,
        retry_on_timeout=False, depends_on=[jobs.TaskDependency(task_key=t.task_key) for t in before] or None,
    )
    settings = jobs.JobSettings(
        name=target.job_name(config.name),
        description=(f"{config.description} - " if config.description else "")
        + f"loads source {config.name}; managed by `ingest deploy` (changes made here are overwritten)",
        tags={SOURCE_TAG: config.name, "ingest_owner": config.owner, MANAGED_TAG[0]: MANAGED_TAG[1],
              **settings_of.tags},
        tasks=[*before, task],
        parameters=[jobs.JobParameterDefinition(name=RUN_ID_PARAMETER, default="")],
        max_concurrent_runs=1,
        timeout_seconds=settings_of.timeout_minutes * 60,
    )
    if settings_of.compute == "serverless":
        task.environment_key = TASK_KEY
        settings.environments = [jobs.JobEnvironment(environment_key=TASK_KEY, spec=compute.Environment(
            environment_version=settings_of.serverless_environment_version, dependencies=[wheel_path]))]
    else:
        task.job_cluster_key = TASK_KEY
        task.libraries = [compute.Library(whl=wheel_path)]
        settings.job_clusters = [jobs.JobCluster(job_cluster_key=TASK_KEY, new_cluster=cluster_spec(settings_of))]
    if config.schedule:
        settings.schedule = jobs.CronSchedule(
            quartz_cron_expression=quartz_cron(config.schedule), timezone_id=config.timezone,
            pause_status=jobs.PauseStatus.UNPAUSED if config.enabled else jobs.PauseStatus.PAUSED)
    if settings_of.notify_on_failure:
        settings.email_notifications = jobs.JobEmailNotifications(
            on_failure=list(settings_of.notify_on_failure), no_alert_for_skipped_runs=True)
    if settings_of.run_as_service_principal:
        settings.run_as = jobs.JobRunAs(service_principal_name=settings_of.run_as_service_principal)
    return settings


def same_settings(desired: dict[str, Any], existing: dict[str, Any], identity: str | None = None) -> bool:
    """Whether a job already has the settings we would deploy (see :func:`settings_differences`)."""
    return not settings_differences(desired, existing, identity)


def settings_differences(desired: dict[str, Any], existing: dict[str, Any], identity: str | None = None) -> list[str]:
    """The job settings (top-level keys) that differ from what we would deploy. What the
    workspace adds is not a difference: defaults inside (a task's run_if), fields we never set
    (format, queue...), and run_as naming the deploying ``identity`` when we set none. A field
    we set before but not now (a schedule, e-mails) is one."""
    differences = []
    for key in sorted(MANAGED_FIELDS - desired.keys()):
        value = existing.get(key)
        if key == "run_as" and isinstance(value, dict) and identity in value.values():
            continue
        if value not in (None, {}, [], ""):
            differences.append(key)
    differences += [key for key, value in desired.items() if not (key in existing and _contains(existing[key], value))]
    return differences


def _contains(existing: Any, desired: Any) -> bool:
    if isinstance(desired, dict):
        return isinstance(existing, dict) and all(k in existing and _contains(existing[k], v)
                                                  for k, v in desired.items())
    if isinstance(desired, list):
        return (isinstance(existing, list) and len(existing) == len(desired)
                and all(_contains(e, d) for e, d in zip(existing, desired, strict=True)))
    return existing == desired


# --- deploy ---------------------------------------------------------------------------------

@dataclass
class Deployment:
    source: str
    job_id: int
    job_name: str
    action: str  # created | updated | unchanged
    job_url: str
    uploaded: list[str] = field(default_factory=list)
    unchanged_files: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def find_job(client: Any, name: str, source: str) -> Any | None:
    """The job ``ingest deploy`` made for ``source`` (by name, then the source tag)."""
    found = list(client.jobs.list(name=name))
    ours = [j for j in found if ((j.settings and j.settings.tags) or {}).get(SOURCE_TAG) == source]
    if len(ours) > 1:
        raise LookupError(f"{len(ours)} jobs named {name} are tagged {SOURCE_TAG}={source} (ids "
                          f"{', '.join(str(j.job_id) for j in ours)}); delete all but one, then deploy again")
    if not ours and found:
        raise LookupError(f"a job named {name} exists (id {found[0].job_id}) that `ingest deploy` did not create "
                          f"(no {SOURCE_TAG} tag); rename or delete it, or set jobs.job_name_prefix")
    return ours[0] if ours else None


def volume_file(client: Any, path: str) -> bytes | None:
    """The content of a file on a volume, None when there is none."""
    from databricks.sdk.errors import NotFound

    try:
        return client.files.download(path).contents.read()
    except NotFound:
        return None


def upload_if_changed(client: Any, path: str, data: bytes) -> bool:
    """Upload ``data`` to a volume path unless the file there is the same; True if uploaded."""
    from databricks.sdk.errors import NotFound

    if volume_file(client, path) == data:
        return False
    try:
        client.files.upload(path, io.BytesIO(data), overwrite=True)
    except NotFound:
        volume = "/".join(path.split("/")[:5])
        raise FileNotFoundError(f"cannot write {path}: does the volume {volume} exist? Create it (CREATE VOLUME "
                                f"{'.'.join(path.split('/')[2:5])}) and grant the deploying and the job's identity "
                                "READ VOLUME and WRITE VOLUME") from None
    return True


def config_files(config: SourceFileBase, store: ConfigStore, source_path: Path | None = None) -> dict[str, bytes]:
    """The files a job reads, by their path under the config dir: the source and its destination."""
    source_file = source_path or store.path("sources", config.name)
    return {
        f"sources/{config.name}.yaml": Path(source_file).read_bytes(),
        f"destinations/{config.destination}.yaml": store.path("destinations", config.destination).read_bytes(),
    }


def deploying_identity(client: Any, target: JobTarget) -> str:
    """Who the job runs as: ``jobs.run_as_service_principal``, else whoever deploys."""
    return target.jobs.run_as_service_principal or client.current_user.me().user_name


def deploy_source(config: SourceFileBase, target: JobTarget, *, wheel: Path, store: ConfigStore,
                  client: Any = None, source_path: Path | None = None) -> Deployment:
    """Upload the wheel and the config files, then create or reset the source's job. The job
    runs as ``jobs.run_as_service_principal``, else as whoever deploys (its runs' actor)."""
    from ingestion_core.storage.workspace import workspace_client

    client = client or workspace_client(target.workspace)
    files = {f"{target.wheels_dir}/{wheel.name}": wheel.read_bytes()}
    for relative, data in config_files(config, store, source_path).items():
        files[f"{target.configs_dir}/{relative}"] = data
    uploaded, unchanged = [], []
    for path, data in files.items():
        (uploaded if upload_if_changed(client, path, data) else unchanged).append(path)
    identity = deploying_identity(client, target)
    dependency_jobs = {d: job.job_id for d in config.after
                       for job in [find_job(client, target.job_name(d), d)] if job is not None}
    settings = job_settings(config, target, f"{target.wheels_dir}/{wheel.name}", identity,
                            dependency_jobs=dependency_jobs)
    existing = find_job(client, settings.name, config.name)
    if existing is None:
        job_id, action = client.jobs.create(**_fields(settings)).job_id, "created"
    else:
        job_id = existing.job_id
        current = client.jobs.get(job_id).settings.as_dict()
        action = "unchanged" if same_settings(settings.as_dict(), current, identity) else "updated"
        if action == "updated":
            client.jobs.reset(job_id, settings)
    return Deployment(config.name, job_id, settings.name, action, f"{target.workspace.rest_url}/#job/{job_id}",
                      uploaded, unchanged)


def _fields(settings: Any) -> dict[str, Any]:
    return {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)
            if getattr(settings, f.name) is not None}
