"""What a run is, decided before its first table starts (:class:`RunPlan`), and where its
tables' pipelines and load slots live. Shared by the runner, the quality checks and run control.
"""

from __future__ import annotations

import contextlib
import fcntl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingestion_core.common import settings
from ingestion_core.config.models.source_file import SourceFileBase
from ingestion_core.engine.destinations import DestinationPlan
from ingestion_core.observe.records import RunRecord, last_table_results, write_record

ProgressCallback = Callable[[RunRecord], None]


@dataclass
class RunPlan:
    """Everything a run needs, decided before the first table starts."""

    config: SourceFileBase
    kind: str  # run | preview
    destination: DestinationPlan
    pipelines_dir: Path
    record: RunRecord
    limit: int | None = None
    on_progress: ProgressCallback | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    cancel: threading.Event = field(default_factory=threading.Event)
    """Set when the run is cancelled: each table thread stops at its next chunk (ingestion_core.common.cancellation)."""
    refresh: frozenset[str] = frozenset()  # tables dropped and reloaded from initial_value
    source_columns: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)
    """Per table, the columns its load read (name in the source, landed dlt hints), when the
    source kind plans them (SQL): the after-load hooks use them instead of reading them again."""
    landed_names: dict[str, str] = field(default_factory=dict)
    """Per table, its name as landed (the dlt schema's naming), for the preview samples."""
    _previous: dict[str, tuple[str, dict[str, Any]]] | None = field(default=None, repr=False)
    _previous_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def last_table_result(self, table: str) -> tuple[str, dict[str, Any]] | None:
        """The source's last real run's result of ``table`` before this run
        (:func:`~ingestion_core.observe.records.last_table_result`), read for all the run's tables
        on the first ask: each table's after-load hooks ask, and each read goes through the day's
        record files (12 ms a read with 144 records that day)."""
        with self._previous_lock:
            if self._previous is None:
                self._previous = last_table_results(self.config.name, [t.name for t in self.record.tables],
                                                    exclude_run_id=self.record.run_id)
        return self._previous.get(table)

    def publish(self) -> None:
        """Rewrite the record (thread-safe) and tell the caller."""
        with self.lock:
            write_record(self.record)
            if self.on_progress:
                self.on_progress(self.record)


def pipeline_name(source: str, table: str) -> str:
    return f"{source}__{table}"


def pipelines_dir(kind: str) -> Path:
    return settings.data_dir() / ("preview" if kind == "preview" else "pipelines")


@contextlib.contextmanager
def load_slot(destination: DestinationPlan) -> Iterator[None]:
    """Loads into one DuckDB file (or Delta folder) one at a time, across threads and processes.
    Readers of the file take the same lock shared (:func:`load_slot_path`)."""
    if not destination.serial_load or "://" in destination.location:
        yield
        return
    lock_path = load_slot_path(destination.location)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_slot_path(location: str) -> Path:
    return Path(location + ".lock")
