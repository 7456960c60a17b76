"""Whether the local scheduler runs, and what executes each source's schedule: read by the
portal (the Overview, the Sources list) and ``ingest scheduler --status``. Light on purpose:
it imports nothing of the run path (the portal's pages import it).

Example::

    scheduler_status().state                  # alive | stale | not running
    describe_executor(config).text            # "local scheduler, cron 0 6 * * * UTC; next run ..."
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ingestion_core.common import settings
from ingestion_core.config.store import ConfigStore

DEFAULT_INTERVAL_S = 30.0
STALE_AFTER_BEATS = 3  # a heartbeat older than this many intervals: the scheduler hangs
START_COMMAND = "ingest scheduler"


def utc_now() -> datetime:
    return datetime.now(UTC)


def cron_next(cron: str, after: datetime, timezone: str = "UTC") -> datetime:
    """The first time of ``cron`` (read in ``timezone``) after ``after``, in UTC."""
    from croniter import croniter

    return croniter(cron, after.astimezone(ZoneInfo(timezone))).get_next(datetime).astimezone(UTC)


def cron_previous(cron: str, before: datetime, timezone: str = "UTC") -> datetime:
    """The last time of ``cron`` (read in ``timezone``) before ``before``, in UTC."""
    from croniter import croniter

    return croniter(cron, before.astimezone(ZoneInfo(timezone))).get_prev(datetime).astimezone(UTC)


def _cron_text(config: Any) -> str:
    return f"{config.schedule} {getattr(config, 'timezone', 'UTC')}"


def scheduler_dir() -> Path:
    return settings.data_dir() / "scheduler"


def heartbeat_path() -> Path:
    return scheduler_dir() / "heartbeat.json"


def log_path() -> Path:
    return settings.data_dir() / "logs" / "scheduler.log"


def runs_as_databricks_job(destination: Any) -> bool:
    return getattr(destination, "type", None) == "databricks" and getattr(destination, "jobs", None) is not None


def beat_text() -> str:
    beat = read_heartbeat() or {}
    return f"pid {beat.get('pid', '?')} on {beat.get('host', '?')}"


def read_heartbeat() -> dict[str, Any] | None:
    with contextlib.suppress(OSError, ValueError):
        beat = json.loads(heartbeat_path().read_text(encoding="utf-8"))
        return beat if isinstance(beat, dict) else None
    return None


@dataclass(frozen=True)
class SchedulerStatus:
    state: str  # alive | stale | not running
    text: str
    beat_at: datetime | None = None
    next_due: dict[str, str] | None = None
    events: list[dict[str, Any]] | None = None

    @property
    def alive(self) -> bool:
        return self.state == "alive"


def scheduler_status(now: datetime | None = None) -> SchedulerStatus:
    """Whether the local scheduler runs: alive (holds its lock, recent heartbeat), stale (holds
    its lock but has not beaten for three intervals) or not running, with what to do."""
    now = now or utc_now()
    beat = read_heartbeat()
    held = _lock_held()
    if not held:
        last = f"; it last beat at {beat['beat_at'][:19]} UTC" if beat else ""
        return SchedulerStatus("not running", f"the local scheduler is not running{last}: start it with "
                               f"`{START_COMMAND}` (see docs/operations.md)", None, None,
                               beat.get("events") if beat else None)
    beat_at = datetime.fromisoformat(beat["beat_at"]) if beat else None
    interval = float(beat.get("interval_s", DEFAULT_INTERVAL_S)) if beat else DEFAULT_INTERVAL_S
    if beat_at is None or (now - beat_at).total_seconds() > STALE_AFTER_BEATS * interval:
        since = f"since {beat_at:%Y-%m-%d %H:%M:%S} UTC" if beat_at else "ever"
        return SchedulerStatus("stale", f"the local scheduler ({beat_text()}) has not beaten {since}: it may hang; "
                               f"see {log_path()}, stop it and start `{START_COMMAND}` again", beat_at,
                               beat.get("next_due") if beat else None, beat.get("events") if beat else None)
    return SchedulerStatus("alive", f"the local scheduler is running ({beat_text()}, last beat "
                           f"{int((now - beat_at).total_seconds())} s ago)", beat_at, beat.get("next_due"),
                           beat.get("events"))


def _lock_held() -> bool:
    path = scheduler_dir() / "scheduler.lock"
    if not path.exists():
        return False
    with open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


@dataclass(frozen=True)
class Executor:
    """What executes a source's schedule."""

    kind: str  # none (no schedule) | local_scheduler | databricks_job
    state: str  # not scheduled | alive | stale | not running | deployed by ingest deploy
    text: str
    command: str | None = None  # what starts it, when nothing runs the schedule yet


def describe_executor(config: Any, store: ConfigStore | None = None, status: SchedulerStatus | None = None,
                      destinations: dict[str, Any] | None = None) -> Executor:
    """Who runs this source on its schedule: nothing (no schedule), its Databricks job (a
    destination with ``jobs:``), or the local scheduler, alive, stale or not running (with the
    command that starts it). ``config``: a source file or a ``SourceSummary``; ``status`` and
    ``destinations``: read once for a listing."""
    name = config.name
    if not config.schedule:
        return Executor("none", "not scheduled", "no schedule: runs only when started (Run in the portal, "
                        f"`ingest run {name}`, `ingest run --all`)")
    if not config.enabled:
        return Executor("none", "disabled", f"disabled: its schedule {config.schedule} does not run")
    if destinations is None:
        destinations = (store or ConfigStore()).destinations()
    destination = destinations.get(config.destination or "")
    if runs_as_databricks_job(destination):
        job = f"{destination.jobs.job_name_prefix}{name}"
        return Executor("databricks_job", "deployed by ingest deploy",
                        f"Databricks job {job} in the workspace of {config.destination}, on cron "
                        f"{_cron_text(config)} (after a change: `ingest deploy {name}`)", f"ingest deploy {name}")
    status = status or scheduler_status()
    if status.alive:
        due = (status.next_due or {}).get(name)
        when = f"; next run {due[:16].replace('T', ' ')} UTC" if due else ""
        return Executor("local_scheduler", "alive", f"local scheduler, cron {_cron_text(config)}{when}")
    if status.state == "stale":
        return Executor("local_scheduler", "stale", f"local scheduler, but it is not responding: {status.text}",
                        START_COMMAND)
    return Executor("local_scheduler", "not running", f"nothing runs cron {_cron_text(config)} yet: the local "
                    f"scheduler is not running; start it with `{START_COMMAND}`", START_COMMAND)
