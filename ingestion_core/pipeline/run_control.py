"""Control over real runs: one active run per source, runs in the background, cancel, and each
table's incremental state (show it, reset it).

One active run per source is an exclusive, non-blocking ``fcntl`` lock on
``INGEST_DATA_DIR/locks/<source>.lock``: :func:`ingestion_core.pipeline.runner.run_source` takes it for
the whole run, so the portal, the CLI and Databricks jobs (which call ``ingest run``) all
respect it. The file holds who has it (run id, pid, host, start time); the kernel releases the
lock when the process ends, however it ends, so a crashed run never leaves a source stuck.

Example::

    run_id = start_run("sales_de", actor="ana")      # a detached `ingest run` process
    active_run("sales_de").status                    # 'running'
    cancel_run(run_id, actor="ana").status           # 'cancelled'
    reset_state(config, "orders", actor="ana")       # next run reloads orders from initial_value
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingestion_core.common import preload, settings
from ingestion_core.config import access
from ingestion_core.config.access import Principal
from ingestion_core.config.models.source_file import SourceFileBase
from ingestion_core.config.secrets import mask
from ingestion_core.config.store import ConfigStore
from ingestion_core.engine.plan import load_slot, pipeline_name, pipelines_dir
from ingestion_core.observe.records import (
    FINAL,
    RunRecord,
    cancelled_error,
    find_record,
    latest_runs,
    load_record,
    new_run_id,
    write_record,
)
from ingestion_core.pipeline.locks import (  # noqa: F401  (run control's errors, named here too)
    RunControlError,
    RunInProgressError,
    audit,
    lock_holder,
    lock_path,
    source_lock,
)
from ingestion_core.pipeline.runner import refresh_set
from ingestion_core.pipeline.table_load import cursor_state

LOGGER = logging.getLogger("ingestion_core.pipeline.run_control")
START_TIMEOUT_S = 90.0  # a loaded machine may take a while to import dlt in the child
CANCEL_GRACE_S = 10.0  # SIGTERM first; SIGKILL when the run has not stopped by then
TRIGGERS = ("portal", "cli", "job", "schedule", "test")


# --- runs in the background ----------------------------------------------------------------

def start_run(source: str, *, actor: str | Principal, trigger: str = "portal", tables: list[str] | None = None,
              refresh_tables: list[str] | None = None, store: ConfigStore | None = None,
              start_timeout_s: float = START_TIMEOUT_S) -> str:
    """Start ``ingest run SOURCE`` as a detached process (its own session: it outlives the
    Streamlit process, the browser tab and reruns) and return its run id once it holds the
    source's lock and has written its record. Follow it with :func:`active_run` or the record.

    Raises :class:`RunInProgressError` when the source is running already, and
    :class:`RunControlError` (with the child's last output lines) when the run could not start."""
    if not actor:
        raise RunControlError("a run needs an actor (who starts it)")
    if trigger not in TRIGGERS:
        raise RunControlError(f"trigger '{trigger}' is not one of {', '.join(TRIGGERS)}")
    store = store or ConfigStore()
    config = store.load_source(source).config
    actor = access.require(actor, "run", config.owner, name=config.name).name
    run_tables = tables or refresh_tables
    try:  # bad table names fail here, with the valid ones, before anything starts
        refresh_set(config, config.enabled_tables(run_tables), refresh_tables)
    except KeyError as exc:
        raise RunControlError(exc.args[0]) from None
    holder = lock_holder(config.name)
    if holder:
        raise RunInProgressError(config.name, holder)
    run_id = new_run_id(config.name)
    command = [sys.executable, "-m", "ingestion_core", "--actor", actor, "run", config.name,
               "--run-id", run_id, "--trigger", trigger]
    if run_tables:
        command += ["--tables", ",".join(run_tables)]
    if refresh_tables:
        command += ["--refresh", ",".join(refresh_tables)]
    output = settings.data_dir() / "logs" / "launch" / f"{run_id}.out"
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "wb") as handle:
        child = subprocess.Popen(command, env=_child_environment(store), stdin=subprocess.DEVNULL, stdout=handle,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    LOGGER.info("started run %s of %s (pid %d) for %s", run_id, config.name, child.pid, actor)
    _await_start(child, config.name, run_id, output, start_timeout_s)
    threading.Thread(target=child.wait, name=f"reap-{run_id}", daemon=True).start()  # no zombie left behind
    return run_id


def _child_environment(store: ConfigStore) -> dict[str, str]:
    """The parent's environment with every location made absolute, so the child reads and writes
    exactly where this process does, whatever its working directory."""
    package_root = str(Path(__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH", "")
    return {
        **os.environ, "INGEST_CONFIG_DIR": str(store.root), "INGEST_RUNS_DIR": settings.runs_dir(),
        "INGEST_DATA_DIR": str(settings.data_dir()), "INGEST_SECRETS_FILE": str(settings.secrets_file()),
        "PYTHONPATH": package_root + (os.pathsep + path if path else ""),
    }


def _await_start(child: subprocess.Popen, source: str, run_id: str, output: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        holder = lock_holder(source)
        if holder and holder.get("run_id") == run_id and find_record(run_id):
            return
        code = child.poll()
        if code is not None:
            if find_record(run_id):  # it ran and ended before we looked
                return
            if holder and holder.get("run_id") != run_id:
                raise RunInProgressError(source, holder)
            raise RunControlError(f"the run of {source} did not start (exit code {code}): {_tail(output)}")
        time.sleep(0.05)
    _signal_run(child.pid, signal.SIGKILL)
    raise RunControlError(f"the run of {source} did not start within {timeout_s:g} s (the machine may be "
                          f"overloaded); it was stopped. Its output: {output}")


def _tail(path: Path, lines: int = 5) -> str:
    with contextlib.suppress(OSError):
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return mask(" | ".join(text[-lines:])) or "no output"
    return "no output"


def active_run(source: str) -> RunRecord | None:
    """The running record of the source (found by its lock), None when the source is idle."""
    holder = lock_holder(source)
    if not holder or holder.get("action", "run") != "run":
        return None
    deadline = time.monotonic() + 2.0  # the holder writes its record right after taking the lock
    while True:
        record = _record_of(holder)
        if record is not None or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return record if record is not None and record.status == "running" else None


def _record_of(holder: dict[str, Any]) -> RunRecord | None:
    """The holder's record, read from the path it wrote into the lock (no search of the folder)."""
    path = str(holder.get("record_path") or "")
    if path and "://" not in path:
        with contextlib.suppress(OSError, ValueError):
            return load_record(path)
        return None
    return find_record(str(holder["run_id"]))


# --- cancel --------------------------------------------------------------------------------

def cancel_run(run_id: str, *, actor: str | Principal, grace_s: float = CANCEL_GRACE_S) -> RunRecord:
    """Stop a running run: SIGTERM to its process group (the run records itself as
    ``cancelled`` and exits 130); after ``grace_s`` SIGKILL, and the record is then written as
    cancelled here. The record says who cancelled. A run that has ended is a clear error."""
    record = find_record(run_id)
    if record is None:
        raise RunControlError(f"no run with id '{run_id}' in {settings.runs_dir()}; `ingest runs` lists the runs")
    actor = access.require(actor, "run", record.owner, name=record.source).name
    if record.status in FINAL:
        raise RunControlError(f"run {run_id} has already ended ({record.status}"
                              f"{_at(record.ended_at)}); there is nothing to cancel")
    holder = _holder_of(record)
    pid = int(holder["pid"])
    _signal_run(pid, signal.SIGTERM)
    if not _released(record.source, run_id, grace_s):
        LOGGER.warning("run %s did not stop within %g s of SIGTERM; killing it", run_id, grace_s)
        _signal_run(pid, signal.SIGKILL)
        _released(record.source, run_id, 10.0)
    record = find_record(run_id) or record
    if record.status not in ("running", "cancelled"):
        raise RunControlError(f"run {run_id} ended ({record.status}) before the cancel reached it")
    _write_cancelled(record, actor)
    audit(actor, "cancel", record.source, run_id=run_id)
    return record


def _at(moment: datetime | None) -> str:
    return f" at {moment:%Y-%m-%d %H:%M:%S} UTC" if moment else ""


def _holder_of(record: RunRecord) -> dict[str, Any]:
    """The lock holder of a running record; a clear error when no live process holds it."""
    holder = lock_holder(record.source)
    if holder and holder.get("run_id") == record.run_id:
        if holder.get("host") != socket.gethostname():
            raise RunControlError(f"run {record.run_id} runs on host {holder.get('host')}; cancel it there")
        if int(holder.get("pid", 0)) == os.getpid():
            raise RunControlError(f"run {record.run_id} runs inside this process; stop it there (Ctrl-C)")
        return holder
    if record.host != socket.gethostname():
        raise RunControlError(f"run {record.run_id} ran on host {record.host}, not here; cancel it there (a "
                              f"Databricks job: `ingest job-cancel {record.source}`)")
    raise RunControlError(f"run {record.run_id} is no longer running: its process ({record.pid}) is gone, so "
                          "it shows as abandoned; there is nothing to cancel. Run the source again when wanted")


def _signal_run(pid: int, signum: int) -> None:
    """Signal the run's process group when it leads one (runs started by start_run or a shell),
    else only the process: never the group of a server that runs tables in-process."""
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)


def _released(source: str, run_id: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        holder = lock_holder(source)
        if not holder or holder.get("run_id") != run_id:
            return True
        time.sleep(0.05)
    return False


def _write_cancelled(record: RunRecord, actor: str) -> None:
    if record.status == "running":  # killed before it could write its own end
        record.status = "cancelled"
        record.ended_at = datetime.now(UTC)
        record.duration_s = round((record.ended_at - record.started_at).total_seconds(), 3)
        for table in record.tables:
            if table.status in ("pending", "running"):
                table.status = "cancelled"
    record.error = cancelled_error(actor)
    write_record(record)


# --- incremental state ---------------------------------------------------------------------

@dataclass
class TableState:
    """Where a table's incremental load stands."""

    table: str
    mode: str
    cursor: str | None
    cursor_value: str | None  # the last value loaded; None: the next run starts from initial_value
    initial_value: str | None
    last_success_at: datetime | None
    last_run_id: str | None


def table_states(config: SourceFileBase, store: ConfigStore | None = None) -> list[TableState]:
    """Each enabled table's cursor value (from its dlt pipeline state on this machine, else from
    its last successful run's record) and its last successful real run."""
    preload.load_heavy_modules()  # a page reads this while a test run's threads may be importing dlt
    runs = latest_runs(source=config.name, kind="run", limit=100)
    states = []
    for table in config.enabled_tables():
        last = _last_success(runs, table.name)
        value = _cursor_value(config.name, table.name)
        if value is _NO_PIPELINE and last:
            value = (last[1].get("cursor") or {}).get("last_value")
        states.append(TableState(
            table=table.name, mode=config.settings_for(table).mode, cursor=table.cursor,
            cursor_value=None if value is _NO_PIPELINE else value,
            initial_value=None if table.initial_value is None else str(table.initial_value),
            last_success_at=last[0]["ended_at"] if last else None, last_run_id=last[0]["run_id"] if last else None,
        ))
    return states


_NO_PIPELINE: Any = object()


def _last_success(runs: list[dict[str, Any]], table: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    for run in runs:
        for entry in run.get("tables") or []:
            if entry.get("name") == table and entry.get("status") in ("success", "quality_failed"):
                return run, entry
    return None


def _cursor_value(source: str, table: str) -> Any:
    """The cursor's last value in the table's dlt pipeline state; _NO_PIPELINE when this machine
    has no pipeline for it. Reads ``state.json`` only: attaching (``dlt.attach``) to a folder a
    first run is creating in another process would make dlt wipe it under that run."""
    from dlt.common.versioned_state import json_decode_state

    state_file = pipelines_dir("run") / pipeline_name(source, table) / "state.json"
    try:
        state = json_decode_state(state_file.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return _NO_PIPELINE
    cursor = cursor_state(state, table)
    return cursor["last_value"] if cursor else None


def reset_state(config: SourceFileBase, table: str, *, actor: str | Principal,
                store: ConfigStore | None = None) -> None:
    """Forget a table's incremental cursor, so that its next run reloads from ``initial_value``.

    Only the state goes (dlt's own drop, ``state_only``), in the pipeline folder and in the
    destination; the loaded rows stay. Refused while a run holds the source; audit-logged."""
    from dlt.pipeline.helpers import pipeline_drop

    actor = access.require(actor, "run", config.owner, name=config.name).name
    preload.load_heavy_modules()
    store = store or ConfigStore()
    entry = _incremental_table(config, table)
    with source_lock(config.name, action="reset-state"):
        plan, pipeline = _real_pipeline(config, entry.name, store)
        if not pipeline.default_schema_name:
            pipeline.sync_destination()  # the state may live only in the destination (a job ran it)
        if not pipeline.default_schema_name:
            LOGGER.info("%s.%s has no state yet; nothing to reset", config.name, table)
            return
        if pipeline.has_pending_data:
            raise RunControlError(f"{config.name}.{table} has a package a stopped run left unloaded; run the "
                                  f"source once (it loads that package first), then reset the state")
        with load_slot(plan):  # the drop writes the state into the destination: one load at a time
            pipeline_drop(pipeline, resources=[entry.name], state_only=True)()
    audit(actor, "reset-state", config.name, table=table)
    LOGGER.info("%s reset the incremental state of %s.%s", actor, config.name, table)


def _incremental_table(config: SourceFileBase, table: str) -> Any:
    tables = {t.name: t for t in config.tables}  # type: ignore[attr-defined]
    incremental = sorted(name for name, t in tables.items() if t.cursor)
    if table not in tables or not tables[table].cursor:
        what = "has no table" if table not in tables else "has no incremental state for"
        choices = ", ".join(incremental) or "none: no table has a cursor"
        raise RunControlError(f"{config.name} {what} '{table}'; tables with incremental state (a cursor): "
                              f"{choices}. A table without a cursor reloads in full at every run")
    return tables[table]


def _real_pipeline(config: SourceFileBase, table: str, store: ConfigStore) -> tuple[Any, Any]:
    import dlt

    from ingestion_core.engine.destinations import build_destination

    plan = build_destination(config.destination, store.load_destination(config.destination).config)
    return plan, dlt.pipeline(pipeline_name=pipeline_name(config.name, table), pipelines_dir=str(pipelines_dir("run")),
                              destination=plan.destination, staging=plan.staging, dataset_name=config.dataset_name)
