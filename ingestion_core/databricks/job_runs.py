"""Runs of a source's Databricks job: run now, follow into a run record, status, cancel.

Following a job run keeps a run record (trigger ``job``) in this machine's runs folder: the
record the job writes on the volume (``<volume>/runs/YYYY/MM/DD/<run_id>.json``, with every
table's result) is copied as it changes; when there is none (the cluster never started, the
wheel did not install) or the job run ended while its record still said ``running`` (the
process was killed), the record is written from the job run's state, its message and its
page. When this machine's runs folder *is* the volume (``INGEST_RUNS_DIR=volumes://...``), the
job's own record is left alone but for that last case.

Example::

    handle = run_now(client, deployment.job_id, "sales_de")
    record = follow_job_run(client, target, config, handle, actor="ana")
    record.status
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ingestion_core.common import settings
from ingestion_core.config.models.source_file import SourceFileBase
from ingestion_core.config.secrets import mask
from ingestion_core.databricks.jobs import RUN_ID_PARAMETER, JobTarget, find_job
from ingestion_core.observe.records import ErrorInfo, RunRecord, TableResult, new_run_id, write_record

TERMINAL = ("TERMINATED", "INTERNAL_ERROR", "SKIPPED")
HEARTBEAT_SECONDS = 300.0  # a record silent for 30 minutes counts as abandoned
RESULTS = {"SUCCESS": "success", "CANCELED": "cancelled", "UPSTREAM_CANCELED": "cancelled"}


@dataclass(frozen=True)
class JobRunHandle:
    job_id: int
    job_run_id: int
    run_id: str  # the run record's id
    url: str

    def as_dict(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "job_run_id": self.job_run_id, "run_id": self.run_id, "url": self.url}


def run_now(client: Any, job_id: int, source: str) -> JobRunHandle:
    """Start the job now, with a run id chosen here so the run can be followed."""
    run_id = new_run_id(source)
    waiter = client.jobs.run_now(job_id, job_parameters={RUN_ID_PARAMETER: run_id})
    job_run_id = waiter.response.run_id
    run = client.jobs.get_run(job_run_id)
    return JobRunHandle(job_id, job_run_id, run_id, run.run_page_url or "")


def job_run_status(run: Any) -> tuple[str, str]:
    """(run record status, message) of a Databricks job run."""
    state = run.state
    life = state.life_cycle_state.value if state and state.life_cycle_state else "PENDING"
    if life not in TERMINAL:
        return "running", life.lower().replace("_", " ")
    result = state.result_state.value if state.result_state else life
    return RESULTS.get(result, "failed"), mask(state.state_message or result)


def _record_id(run: Any) -> str:
    for parameter in run.job_parameters or []:
        if parameter.name == RUN_ID_PARAMETER and parameter.value:
            return parameter.value
    return ""


def scheduled_run_id(job_run_id: int | str, source: str) -> str:
    """The run id of a job run started without one (by its schedule): stable across retries."""
    return f"job{job_run_id}-{source}"


def handle_of(client: Any, job_run_id: int, source: str) -> JobRunHandle:
    run = client.jobs.get_run(job_run_id)
    run_id = _record_id(run) or scheduled_run_id(run.run_id, source)
    return JobRunHandle(run.job_id, run.run_id, run_id, run.run_page_url or "")


# --- the record -----------------------------------------------------------------------------

def volume_record(client: Any, target: JobTarget, run_id: str, since: datetime) -> RunRecord | None:
    """The record the job wrote on the volume, looked for in the day folders since ``since``."""
    from databricks.sdk.errors import NotFound

    day = since.astimezone(UTC).date()
    while day <= datetime.now(UTC).date():
        path = f"{target.runs_dir}/{day:%Y/%m/%d}/{run_id}.json"
        try:
            return RunRecord.model_validate_json(client.files.download(path).contents.read())
        except NotFound:
            day += timedelta(days=1)
    return None


def _runs_dir_is(target: JobTarget) -> bool:
    runs = settings.runs_dir().rstrip("/")
    return runs.startswith("volumes://") and "/Volumes/" + runs[len("volumes://"):] == target.runs_dir


def record_from_job_run(config: SourceFileBase, target: JobTarget, handle: JobRunHandle, run: Any, actor: str,
                        status: str, message: str, destination_type: str = "") -> RunRecord:
    """A record told by the job run alone (no record from the job itself)."""
    started = datetime.fromtimestamp((run.start_time or time.time() * 1000) / 1000, UTC)
    record = RunRecord(
        run_id=handle.run_id, kind="run", source=config.name, source_type=config.source_type, owner=config.owner,
        destination=config.destination, destination_type=destination_type, dataset=config.dataset_name, trigger="job",
        actor=actor, status=status, started_at=started, host=target.workspace.rest_url.split("://")[-1], pid=0,
        workers=config.workers.model_dump(), log_path=handle.url,
        tables=[TableResult(name=t.name, mode=config.settings_for(t).mode) for t in config.enabled_tables()],
    )
    if status != "running":
        record.ended_at = datetime.fromtimestamp(run.end_time / 1000, UTC) if run.end_time else datetime.now(UTC)
        record.duration_s = round((record.ended_at - started).total_seconds(), 3)
        for table in record.tables:
            table.status = "cancelled" if status == "cancelled" else "skipped" if status == "failed" else table.status
    if status in ("failed", "cancelled"):
        record.error = ErrorInfo(error_class="DatabricksJobRun", message=f"job run {handle.job_run_id}: {message}",
                                 hint=f"see the job run's page: {handle.url}")
    return record


def _settle(record: RunRecord, status: str, message: str, handle: JobRunHandle) -> RunRecord:
    """The job's own record still says running, but the job run is over: its process was killed."""
    record.status = "cancelled" if status == "cancelled" else "failed"
    record.ended_at = datetime.now(UTC)
    record.duration_s = round((record.ended_at - record.started_at).total_seconds(), 3)
    for table in record.tables:
        if table.status in ("pending", "running"):
            table.status = "cancelled" if status == "cancelled" else "failed"
    record.error = ErrorInfo(error_class="DatabricksJobRun", message=f"job run {handle.job_run_id} ended "
                             f"({message}) before the run finished", hint=f"see the job run's page: {handle.url}")
    return record


def current_record(client: Any, config: SourceFileBase, target: JobTarget, handle: JobRunHandle, actor: str,
                   since: datetime, destination_type: str = "") -> tuple[RunRecord, bool, Any]:
    """(record, whether the job run is over, the job run)."""
    run = client.jobs.get_run(handle.job_run_id)
    status, message = job_run_status(run)
    record = volume_record(client, target, handle.run_id, since)
    if record is None:
        record = record_from_job_run(config, target, handle, run, actor, status, message, destination_type)
    else:
        record.log_path = handle.url  # the cluster's log folder is gone with the cluster
        if status != "running" and record.status == "running":
            record = _settle(record, status, message, handle)
    return record, status != "running", run


def follow_job_run(client: Any, target: JobTarget, config: SourceFileBase, handle: JobRunHandle, *, actor: str,
                   destination_type: str = "", poll_seconds: float = 15.0, timeout_seconds: float | None = None,
                   on_update: Callable[[RunRecord], None] | None = None) -> RunRecord:
    """Poll the job run until it ends, keeping its run record up to date here (rewritten on
    every change, and every few minutes as a heartbeat); returns the last record (still
    ``running`` when ``timeout_seconds`` passed first)."""
    since = datetime.now(UTC) - timedelta(days=1)
    deadline = time.monotonic() + timeout_seconds if timeout_seconds else None
    shared = _runs_dir_is(target)
    last, written_at = None, 0.0
    while True:
        record, over, _ = current_record(client, config, target, handle, actor, since, destination_type)
        state = record.model_dump_json(exclude={"heartbeat_at"})
        due = state != last or time.monotonic() - written_at > HEARTBEAT_SECONDS
        if due and _ours_to_write(shared, over, record):
            write_record(record)
            last, written_at = state, time.monotonic()
            if on_update:
                on_update(record)
        if over or (deadline and time.monotonic() > deadline):
            return record
        time.sleep(poll_seconds)


def _ours_to_write(shared: bool, over: bool, record: RunRecord) -> bool:
    """On a runs folder shared with the job, its own record is left alone while it runs."""
    return not shared or (over and record.status != "running")


def refresh_job_run(client: Any, target: JobTarget, config: SourceFileBase, handle: JobRunHandle, *, actor: str,
                    destination_type: str = "") -> tuple[RunRecord, bool]:
    """One look at a job run (what a page polling it does): its run record brought up to date
    here as :func:`follow_job_run` would; returns (record, whether the job run is over)."""
    since = datetime.now(UTC) - timedelta(days=1)
    record, over, _ = current_record(client, config, target, handle, actor, since, destination_type)
    if _ours_to_write(_runs_dir_is(target), over, record):
        write_record(record)
    return record, over


# --- status / cancel ------------------------------------------------------------------------

def source_job_id(client: Any, target: JobTarget, source: str) -> int:
    job = find_job(client, target.job_name(source), source)
    if job is None:
        raise LookupError(f"source {source} has no job in {target.workspace.rest_url} yet: run ingest deploy {source}")
    return job.job_id


def job_status(client: Any, target: JobTarget, source: str, limit: int = 10) -> list[dict[str, Any]]:
    """The newest runs of a source's job: ids, state, status, start, end, page."""
    job_id = source_job_id(client, target, source)
    rows = []
    for run in client.jobs.list_runs(job_id=job_id, limit=limit):
        status, message = job_run_status(run)
        rows.append({
            "job_id": job_id, "job_run_id": run.run_id,
            "run_id": _record_id(run) or scheduled_run_id(run.run_id, source), "status": status, "state": message,
            "started_at": _time(run.start_time), "ended_at": _time(run.end_time), "url": run.run_page_url,
        })
        if len(rows) >= limit:
            break
    return rows


def _time(millis: int | None) -> str | None:
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat() if millis else None


def cancel_job_runs(client: Any, target: JobTarget, source: str, job_run_id: int | None = None) -> list[int]:
    """Cancel one run of the source's job (``job_run_id``), or every active one; returns the
    ids asked to cancel. The runs end as cancelled shortly after."""
    job_id = source_job_id(client, target, source)
    if job_run_id is not None:
        run = client.jobs.get_run(job_run_id)
        if run.job_id != job_id:
            raise LookupError(f"job run {job_run_id} is not a run of {source}'s job {job_id}")
        runs = [run]
    else:
        runs = list(client.jobs.list_runs(job_id=job_id, active_only=True))
    cancelled = []
    for run in runs:
        if job_run_status(run)[0] == "running":
            client.jobs.cancel_run(run.run_id)
            cancelled.append(run.run_id)
    return cancelled
