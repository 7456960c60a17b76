"""Test runs (previews) started from the portal, run in a background thread of the Streamlit
process and followed by the page.

One registry per process: a second click, from this tab or another session, while a test run
of the same source is going finds the running job instead of starting another. The runner
reports progress from its worker threads; the job keeps a copy of the newest record, which the
page reads on its own schedule (nothing here calls Streamlit).

Example::

    job = start_preview("demo_shop", actor="ana")
    job.wait(60)
    job.record.status, job.result.samples["orders"][:3]
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ingestion_core.common import preload, settings
from ingestion_core.common.cancellation import Cancel
from ingestion_core.config.store import ConfigStore
from ingestion_core.engine.errors import explain
from ingestion_core.observe import records
from ingestion_core.observe.records import RunRecord
from ingestion_core.pipeline import runner
from ingestion_core.pipeline.runner import PreviewResult

LOGGER = logging.getLogger("portal.sources.preview_jobs")
DONE_TABLE = ("success", "failed", "quality_failed", "skipped", "cancelled")
CLOSE_WAIT_S = 10.0  # closing a preview file takes 40-100 ms


@dataclass
class PreviewJob:
    """One test run of one source, in a background thread."""

    source: str
    actor: str
    limit: int
    started: float = field(default_factory=time.monotonic)
    record: RunRecord | None = None
    result: PreviewResult | None = None
    error: tuple[str, str] | None = None  # (masked message, what to do) when the run could not start or crashed
    finished: threading.Event = field(default_factory=threading.Event)  # its results are in: the page draws them
    closed: threading.Event = field(default_factory=threading.Event)  # and its thread is done, the preview file closed
    stop: Cancel = field(default_factory=Cancel)  # the run's cancel: its tables stop, the record says who
    previous_read: threading.Event = field(default_factory=threading.Event)  # see previous()
    _previous: dict[str, Any] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _previous_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def running(self) -> bool:
        return not self.finished.is_set()

    def cancel(self, actor: str) -> bool:
        """Stop the test run: its tables stop at their next chunk (those done keep their rows).
        False when it has ended already."""
        if not self.running:
            return False
        self.stop.cancel(actor)
        return True

    def elapsed(self) -> float:
        record = self.record
        if record is not None and record.duration_s and not self.running:
            return record.duration_s
        return time.monotonic() - self.started

    def progress(self, record: RunRecord) -> None:
        """The runner's on_progress: called from its worker threads with the live record. The
        first call (the run has its id) starts reading the test run before this one."""
        copy = record.model_copy(deep=True)
        with self._lock:
            first, self.record = self.record is None, copy
        if first:
            threading.Thread(target=self.previous, name=f"previous-{self.source}", daemon=True).start()

    def previous(self) -> dict[str, Any] | None:
        """The test run of this source before this one (a record dict; None for its first), for
        what changed since. Read once, in a thread of its own while the run goes on: the records
        query (10-50 ms) is then not between the run's end and its rows on the page."""
        with self._previous_lock:
            record = self.snapshot()
            if not self.previous_read.is_set() and record is not None:
                self._previous = previous_preview(self.source, record.run_id)
                self.previous_read.set()
            return self._previous

    def snapshot(self) -> RunRecord | None:
        with self._lock:
            return self.record

    def done(self, result: PreviewResult) -> None:
        """The runner's on_result: the results are in; the preview file is closed after it."""
        self.result = result
        self.progress(result.record)
        self.finished.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the whole test run, the closing of its preview file included (the page draws
        the results at ``finished``, while the file closes)."""
        return self.closed.wait(timeout)

    def tables_done(self) -> tuple[int, int]:
        record = self.snapshot()
        if record is None:
            return 0, 0
        return sum(t.status in DONE_TABLE for t in record.tables), len(record.tables)


_JOBS: dict[tuple[str, str], PreviewJob] = {}
_REGISTRY = threading.Lock()


def _job_key(source: str) -> tuple[str, str]:
    # the preview DuckDB lives under INGEST_DATA_DIR: another data dir is another project
    return str(settings.data_dir()), source


def current(source: str) -> PreviewJob | None:
    """The newest test run of ``source`` in this process, running or finished."""
    with _REGISTRY:
        return _JOBS.get(_job_key(source))


def running() -> list[PreviewJob]:
    """The test runs still going in this process (a shutdown or a test waits for them)."""
    with _REGISTRY:
        return [job for job in _JOBS.values() if not job.closed.is_set()]


def start_preview(source: str, *, actor: str, limit: int = runner.DEFAULT_PREVIEW_LIMIT,
                  store: ConfigStore | None = None) -> tuple[PreviewJob, bool]:
    """Start a test run of ``source`` unless one is running: (job, started).

    The config is loaded here, so a missing or invalid file raises at once (ConfigError,
    ConfigNotFoundError); what goes wrong later is kept in ``job.error`` or the run record."""
    config = (store or ConfigStore()).load_source(source).config
    ended = current(source)
    if ended is not None and not ended.running:
        ended.wait(CLOSE_WAIT_S)  # a test run that has just ended may still be closing its preview file
    with _REGISTRY:
        existing = _JOBS.get(_job_key(source))
        if existing is not None and existing.running:
            return existing, False
        job = PreviewJob(source, actor, limit)
        _JOBS[_job_key(source)] = job
    preload.load_heavy_modules()  # in this thread, before the run's thread: see ingestion_core.common.preload
    thread = threading.Thread(target=_run, args=(job, config), name=f"preview-{source}", daemon=True)
    thread.start()
    return job, True


def cancel(source: str, actor: str) -> PreviewJob | None:
    """Cancel the running test run of ``source`` (None when none is running)."""
    job = current(source)
    return job if job is not None and job.cancel(actor) else None


def last_recorded(source: str) -> PreviewJob | None:
    """The newest test run of ``source`` from the run records (one from before a restart of the
    portal, or an ``ingest preview`` in a terminal), as a finished job without sample rows."""
    runs = records.latest_runs(source=source, kind="preview", limit=1)
    record = records.find_record(runs[0]["run_id"]) if runs else None
    if record is None or record.status == "running":
        return None
    job = PreviewJob(source, record.actor, record.limit or 0, record=record)
    job.finished.set()
    job.closed.set()
    return job


def _run(job: PreviewJob, config: Any) -> None:
    try:
        runner.preview_source(config, actor=job.actor, trigger="portal", limit=job.limit, on_progress=job.progress,
                              cancel=job.stop, on_result=job.done)
    except BaseException as exc:  # recorded for the page; the thread must not die silently
        LOGGER.error("the test run of %s failed", job.source, exc_info=exc)
        job.error = explain(exc, job.record.log_path if job.record else None)
    finally:
        job.finished.set()
        job.closed.set()


# --- what changed since the previous preview ---------------------------------------------------

def previous_preview(source: str, run_id: str, limit: int = 50) -> dict[str, Any] | None:
    """The newest preview of ``source`` before ``run_id`` (a record dict), None when it is the first."""
    runs = records.latest_runs(source=source, kind="preview", limit=limit)
    ids = [r["run_id"] for r in runs]
    if run_id not in ids:
        return runs[0] if runs else None
    later = ids.index(run_id) + 1
    return runs[later] if later < len(runs) else None


def previous_columns(previous: dict[str, Any] | None, table: str) -> list[dict[str, Any]] | None:
    """The landed columns of ``table`` in a previous preview; None when it did not land there."""
    for entry in (previous or {}).get("tables") or []:
        if entry.get("name") == table and entry.get("columns"):
            return list(entry["columns"])
    return None


def schema_rows(columns: list[dict[str, Any]], before: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """One row per column: name, type, nullable and what changed since ``before`` (new, type
    changed, nullable changed, removed); ``change`` is empty when there is nothing to compare."""
    old = {c["name"]: c for c in before or []}
    rows = []
    for column in columns:
        change = ""
        if before is not None:
            was = old.get(column["name"])
            if was is None:
                change = "new"
            elif was.get("type") != column.get("type"):
                change = f"type changed (was {was.get('type')})"
            elif bool(was.get("nullable", True)) != bool(column.get("nullable", True)):
                change = f"nullable changed (was {'nullable' if was.get('nullable', True) else 'not null'})"
        rows.append({"column": column["name"], "type": column.get("type"),
                     "nullable": bool(column.get("nullable", True)), "change": change})
    present = {c["name"] for c in columns}
    rows += [{"column": name, "type": was.get("type"), "nullable": bool(was.get("nullable", True)),
              "change": "removed"} for name, was in old.items() if name not in present]
    return rows
