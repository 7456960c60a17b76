"""One active run per source: an exclusive, non-blocking ``fcntl`` lock on
``INGEST_DATA_DIR/locks/<source>.lock``, and the audit line of each run-control action.

Below both the runner (which holds the lock for a whole run) and run control (which reads it to
show, start and cancel runs). The file holds who has it (run id, pid, host, start time); the
kernel releases the lock when the process ends, however it ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingestion_core.common import settings
from ingestion_core.common.atomic import flock_within
from ingestion_core.config.models.base import NAME_PATTERN
from ingestion_core.observe.records import new_run_id

LOCK_RETRY_S = 0.5  # a reader probing the lock holds it for microseconds: try again for this long


class RunControlError(ValueError):
    """A run-control request that cannot be done; the message says what to do instead."""


class RunInProgressError(RunControlError):
    """The source is held by another run (or a state reset): ``.source`` and ``.run_id`` say which."""

    def __init__(self, source: str, holder: dict[str, Any]):
        self.source, self.holder = source, holder
        self.run_id: str = str(holder.get("run_id") or "unknown")
        since = f" since {holder['started_at']}" if holder.get("started_at") else ""
        where = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}{since}"
        if holder.get("action") == "reset-state":
            message = (f"{source} is busy: its incremental state is being reset ({where}); "
                       "try again in a moment")
        else:
            message = (f"{source} is already running: run {self.run_id} ({where}). One run per source at a "
                       f"time: wait for it to end, or cancel it (`ingest cancel {self.run_id}`, or Cancel in "
                       "the portal)")
        super().__init__(message)


# --- the lock ------------------------------------------------------------------------------

def lock_path(source: str) -> Path:
    if not re.fullmatch(NAME_PATTERN, source):
        raise RunControlError(f"'{source[:80]}' is not a source name (lower-case letters, digits and '_', "
                              "starting with a letter)")
    return settings.data_dir() / "locks" / f"{source}.lock"


def lock_holder(source: str) -> dict[str, Any] | None:
    """Who holds the source's lock ({run_id, pid, host, started_at, ...}), or None when it is free."""
    path = lock_path(source)
    if not path.exists():
        return None
    deadline = time.monotonic() + 1.0
    while True:
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return None
        except BlockingIOError:
            with contextlib.suppress(OSError, ValueError):
                info = json.loads(path.read_text(encoding="utf-8"))
                if isinstance(info, dict) and info.get("run_id"):
                    return info
        finally:
            os.close(fd)  # closing releases a shared lock taken just now
        if time.monotonic() > deadline:  # held, but what it says cannot be read
            return {"run_id": "unknown"}
        time.sleep(0.02)  # the holder writes right after taking the lock, and empties it before letting go


@contextlib.contextmanager
def source_lock(source: str, *, run_id: str | None = None, record_path: str = "",
                action: str = "run") -> Iterator[dict[str, Any]]:
    """Hold the source's lock for the duration of the block; :class:`RunInProgressError` when
    another run (in this process or any other) holds it."""
    path = lock_path(source)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, source)
        info = {"run_id": run_id or new_run_id(source), "pid": os.getpid(), "host": socket.gethostname(),
                "started_at": datetime.now(UTC).isoformat(), "record_path": record_path, "action": action}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield info
        finally:
            os.ftruncate(fd, 0)  # a free lock says nothing about a run that has ended
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, source: str) -> None:
    while not flock_within(fd, fcntl.LOCK_EX, LOCK_RETRY_S):
        holder = lock_holder(source)
        if holder:
            raise RunInProgressError(source, holder)


def audit(actor: str, action: str, source: str, **details: Any) -> None:
    """One line per run-control action in ``INGEST_DATA_DIR/audit/run_control.jsonl``."""
    log = settings.data_dir() / "audit" / "run_control.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"time": datetime.now(UTC).isoformat(), "actor": actor, "action": action, "source": source,
                       **details})
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
