"""The local scheduler of the embedded default: ``ingest scheduler`` runs every enabled source
whose cron is due, through run-all (its ``after`` dependencies first, each source as its own
``ingest run``, one run per source by the source's lock).

Rules (docs/operations.md):

- Due: a source's next cron time (read in its `timezone`, default UTC) has come. When several
  of its times passed while the scheduler was busy or the machine slept, it runs once (never a
  run per missed time).
- Missed runs after a restart: at start, a source whose latest scheduled time lies within the
  grace window (default 2 h) and which has no real run started since that time runs once, now;
  an older miss waits for the next scheduled time (the Overview shows the source late).
- A source whose run is still in progress (the portal, the CLI, an earlier tick) is skipped,
  with the run that holds it in the log; its next time comes as usual.
- Sources whose destination runs them as Databricks jobs (a ``jobs:`` section) are left to
  those jobs.
- One scheduler per data dir (a lock); it writes a heartbeat (``INGEST_DATA_DIR/scheduler/
  heartbeat.json``, read by :mod:`ingestion_core.observe.schedule_status` for the portal) every tick
  and logs to ``INGEST_DATA_DIR/logs/scheduler.log``.

The clock is injectable, so tests fire schedules without waiting::

    scheduler = Scheduler(actor="scheduler", clock=lambda: datetime(2026, 1, 5, 6, 0, tzinfo=UTC))
    scheduler.start()      # the missed-run rule
    scheduler.tick()       # due sources start in the background
    scheduler.wait()       # (tests) until their runs ended
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

from ingestion_core.common import settings
from ingestion_core.common.atomic import atomic_write_text
from ingestion_core.config.store import ConfigStore
from ingestion_core.observe.records import latest_runs
from ingestion_core.observe.schedule_status import (
    DEFAULT_INTERVAL_S,
    beat_text,
    cron_next,
    cron_previous,
    heartbeat_path,
    log_path,
    runs_as_databricks_job,
    scheduler_dir,
    utc_now,
)
from ingestion_core.pipeline.run_all import SourceOutcome, SubprocessLauncher, execute, plan_run_all

LOGGER = logging.getLogger("ingestion_core.pipeline.scheduler")
Clock = Callable[[], datetime]
DEFAULT_GRACE = timedelta(hours=2)


def next_time(schedule: tuple[str, str] | str, after: datetime) -> datetime:
    """``schedule``: a cron in UTC, or (cron, time zone)."""
    cron, zone = (schedule, "UTC") if isinstance(schedule, str) else schedule
    return cron_next(cron, after, zone)


def previous_time(schedule: tuple[str, str] | str, before: datetime) -> datetime:
    cron, zone = (schedule, "UTC") if isinstance(schedule, str) else schedule
    return cron_previous(cron, before, zone)


def locally_scheduled(store: ConfigStore) -> dict[str, tuple[str, str]]:
    """Enabled, valid, scheduled sources the local scheduler runs: name -> (cron, time zone)."""
    destinations = store.destinations()
    found = {}
    for summary in store.list_sources():
        if summary.valid and summary.enabled and summary.schedule \
                and not runs_as_databricks_job(destinations.get(summary.destination or "")):
            found[summary.name] = (summary.schedule, summary.timezone)
    return found


class SchedulerRunningError(RuntimeError):
    """Another scheduler holds this data dir."""


class Scheduler:
    """Fires due sources; see the module's rules. ``tick`` is what the loop calls every interval."""

    def __init__(self, *, actor: str = "scheduler", store: ConfigStore | None = None, clock: Clock = utc_now,
                 interval_s: float = DEFAULT_INTERVAL_S, grace: timedelta = DEFAULT_GRACE, parallel: int = 2):
        self.actor, self.store, self.clock = actor, store or ConfigStore(), clock
        self.interval_s, self.grace, self.parallel = interval_s, grace, max(parallel, 1)
        self.next_due: dict[str, datetime] = {}
        self.crons: dict[str, tuple[str, str]] = {}
        self.in_flight: set[str] = set()
        self.events: list[dict[str, Any]] = []
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()
        self.started_at = clock()
        self.summary_cron: str | None = None
        self.summary_due: datetime | None = None

    # --- the rules ----------------------------------------------------------------------------
    def start(self) -> list[str]:
        """Read the schedules and apply the missed-run rule; returns the sources started now."""
        now = self.clock()
        self._refresh(now)
        missed = []
        for name, cron in sorted(self.crons.items()):
            scheduled = previous_time(cron, now)
            if self._ran_since(name, scheduled):
                continue
            if now - scheduled <= self.grace:
                self._event("missed", name, f"scheduled {scheduled:%Y-%m-%d %H:%M} UTC was missed; running it once now")
                missed.append(name)
            else:
                self._event("missed", name, f"scheduled {scheduled:%Y-%m-%d %H:%M} UTC was missed more than "
                            f"{_span(self.grace)} ago; it waits for {self.next_due[name]:%Y-%m-%d %H:%M} UTC")
        self._launch(missed, "missed run")
        self.beat()
        return missed

    def tick(self) -> list[str]:
        """Start the sources that are due; returns their names."""
        now = self.clock()
        self._refresh(now)
        due = sorted(n for n, at in self.next_due.items() if at <= now)
        for name in due:
            self.next_due[name] = next_time(self.crons[name], now)  # missed times in between collapse into one
        self._launch(due, "schedule")
        self._daily_summary(now)
        self.beat()
        return due

    def _daily_summary(self, now: datetime) -> None:
        """At the notifications file's ``daily_summary`` cron: the e-mail of the day before (once)."""
        from ingestion_core.observe.alerts import load_notifications

        try:
            cron = load_notifications().daily_summary
        except (ValueError, OSError) as exc:  # a broken notifications file must not stop the sources' runs
            LOGGER.warning("daily summary: %s", exc)
            return
        if cron != self.summary_cron or self.summary_due is None:
            self.summary_cron, self.summary_due = cron, next_time(cron, now) if cron else None
            return
        if self.summary_due <= now:
            self.summary_due = next_time(cron, now)
            thread = threading.Thread(target=self._send_summary, args=((now - timedelta(days=1)).date(),),
                                      name="daily-summary", daemon=True)
            self.threads.append(thread)
            thread.start()

    def _send_summary(self, day: Any) -> None:
        from ingestion_core.observe.alerts import load_notifications
        from ingestion_core.observe.daily_summary import send_summary, summary_rows
        from ingestion_core.observe.run_metrics import load_run_data

        try:
            sources = [s.name for s in self.store.list_sources() if s.enabled]
            results = send_summary(load_notifications(), summary_rows(load_run_data(), day, sources), day)
            self._event("summary", "-", f"daily summary of {day}: " + (", ".join(
                f"{r['channel']} {'sent' if r['ok'] else 'FAILED ' + str(r.get('error'))}" for r in results)
                or "sent already"))
        except Exception as exc:
            LOGGER.exception("the daily summary of %s was not sent: %s", day, exc)

    def _refresh(self, now: datetime) -> None:
        """Schedules are read again every tick: a new, changed or disabled source takes effect at once."""
        crons = locally_scheduled(self.store)
        for name, cron in crons.items():
            if self.crons.get(name) != cron or name not in self.next_due:
                self.next_due[name] = next_time(cron, now)
        for name in set(self.next_due) - set(crons):
            del self.next_due[name]
        self.crons = crons

    @staticmethod
    def _ran_since(name: str, moment: datetime) -> bool:
        runs = latest_runs(source=name, kind="run", limit=1)
        return bool(runs) and runs[0]["started_at"].astimezone(UTC) >= moment

    # --- starting runs ------------------------------------------------------------------------
    def _launch(self, names: list[str], why: str) -> None:
        with self.lock:
            busy = [n for n in names if n in self.in_flight]
            names = [n for n in names if n not in self.in_flight]
        for name in busy:
            self._event("skipped", name, "its run from an earlier tick is still in progress")
        if not names:
            return
        plan = plan_run_all(self.store, names=names)
        with self.lock:
            self.in_flight |= set(plan.order)
        for name in names:
            self._event("due", name, f"{why}; runs with: {', '.join(plan.order)}")
        launcher = SubprocessLauncher(self.store, self.actor, "schedule")
        thread = threading.Thread(target=self._run_batch, args=(plan, launcher), name="scheduled-batch", daemon=True)
        self.threads.append(thread)
        thread.start()

    def _run_batch(self, plan: Any, launcher: SubprocessLauncher) -> None:
        try:
            execute(plan, launcher, self.parallel, self._outcome)
        except Exception as exc:  # the scheduler keeps going; the log says what broke
            LOGGER.exception("a scheduled batch of %s stopped: %s", ", ".join(plan.order), exc)
        finally:
            with self.lock:
                self.in_flight -= set(plan.order)

    def _outcome(self, outcome: SourceOutcome) -> None:
        detail = f"run {outcome.run_id}, {outcome.rows:,} rows" if outcome.run_id else ""
        self._event(outcome.status, outcome.source, "; ".join(p for p in (detail, outcome.reason) if p))
        with self.lock:
            self.in_flight.discard(outcome.source)

    def wait(self, timeout: float | None = None) -> None:
        """Until the runs started so far ended (tests, and a clean stop)."""
        for thread in list(self.threads):
            thread.join(timeout)

    # --- heartbeat, events, the loop ----------------------------------------------------------
    def _event(self, kind: str, source: str, detail: str) -> None:
        event = {"at": self.clock().isoformat(), "event": kind, "source": source, "detail": detail}
        LOGGER.info("%s %s: %s", source, kind, detail)
        with self.lock:
            self.events = [*self.events[-49:], event]

    def beat(self) -> None:
        """Write the heartbeat: alive since, last beat, what comes next, the latest events."""
        with self.lock:
            beat = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": self.started_at.isoformat(),
                    "beat_at": self.clock().isoformat(), "interval_s": self.interval_s,
                    "grace_s": self.grace.total_seconds(),
                    "next_due": {n: t.isoformat() for n, t in sorted(self.next_due.items())},
                    "running": sorted(self.in_flight), "events": list(self.events)}
        atomic_write_text(heartbeat_path(), json.dumps(beat, indent=1))

    def run_forever(self, stop: threading.Event) -> None:
        """The ``ingest scheduler`` loop: start, then a tick every interval until ``stop`` is set."""
        with scheduler_lock(), scheduler_logging():
            LOGGER.info("scheduler started (pid %d), tick every %g s, missed-run grace %s", os.getpid(),
                        self.interval_s, _span(self.grace))
            self.start()
            while not stop.wait(self.interval_s):
                try:
                    self.tick()
                except Exception:  # a broken config read must not end the scheduler
                    LOGGER.exception("tick failed")
            LOGGER.info("scheduler stopping; waiting for the runs it started")
            self.wait()
            self.beat()


@contextlib.contextmanager
def scheduler_lock() -> Iterator[None]:
    """One scheduler per data dir; the kernel frees the lock when the process ends."""
    path = scheduler_dir() / "scheduler.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SchedulerRunningError(f"a scheduler is already running for {settings.data_dir()} ("
                                        f"{beat_text()}); one is enough: stop it first to start another") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def scheduler_logging() -> Iterator[Path]:
    """The scheduler's own log file (rotated at 5 MB, 5 kept)."""
    path = log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = RotatingFileHandler(path, maxBytes=5_000_000, backupCount=5, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.INFO)
    try:
        yield path
    finally:
        LOGGER.removeHandler(handler)
        handler.close()


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
