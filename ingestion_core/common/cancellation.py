"""Cancelling a run, cooperatively.

A cancel (SIGTERM from ``ingest cancel`` or the portal, Ctrl-C in a terminal) reaches the run's
main thread as ``KeyboardInterrupt``; Python cannot stop the table threads from outside. So the
runner sets the run's cancel event, and each table thread stops by itself at its next chunk of
rows (a page of an API, a chunk of a SQL table or a file), between its extract, normalize and
load, and in a retry's back-off, with :class:`RunCancelled`. The runner then waits for every
table thread to end (:func:`wait_for_tables`) before the run ends: the source's lock is released
only when nothing of the run reads or writes any more. A run stuck in a call that never returns
is killed by ``ingest cancel`` after its grace period; the kernel releases the lock then.

The same map step counts the rows read so far (:class:`RowCounter`): the record shows them
growing while a table loads, published at most once a second.

Example::

    resource.add_map(stop_when_cancelled(plan.cancel, "orders", RowCounter(result, plan.publish)))
    except KeyboardInterrupt:
        plan.cancel.set()
        wait_for_tables(pool)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class Cancel(threading.Event):
    """A run's cancel set from another thread (a portal test run's Cancel), saying by whom: the
    run's record then names them."""

    by: str | None = None

    def cancel(self, actor: str) -> None:
        self.by = self.by or actor
        self.set()


class RunCancelled(Exception):
    """Raised in a table's thread once its run is cancelled."""


def raise_if_cancelled(cancel: threading.Event, table: str) -> None:
    if cancel.is_set():
        raise RunCancelled(f"{table}: the run was cancelled; the table stopped at its next chunk")


class RowCounter:
    """Counts the rows of each chunk into ``result.rows_so_far`` (from 0: a new attempt counts
    afresh) and calls ``publish`` at most once every ``every_s`` seconds, never per row."""

    def __init__(self, result: Any, publish: Callable[[], None], every_s: float = 1.0):
        self.result, self.publish, self.every_s = result, publish, every_s
        self.result.rows_so_far = 0
        self.published_at = time.monotonic()

    def add(self, chunk: Any) -> None:
        self.result.rows_so_far += _row_count(chunk)
        now = time.monotonic()
        if now - self.published_at >= self.every_s:
            self.published_at = now
            self.publish()


def _row_count(chunk: Any) -> int:
    """A record (dict) is one row; an Arrow table or batch its num_rows; a list or frame its length."""
    if isinstance(chunk, dict):
        return 1
    rows = getattr(chunk, "num_rows", None)
    if isinstance(rows, int):
        return rows
    return len(chunk) if isinstance(chunk, list) or hasattr(chunk, "columns") else 1


def stop_when_cancelled(cancel: threading.Event, table: str,
                        counter: RowCounter | None = None) -> Callable[[Any, Any], Any]:
    """A map step for a dlt resource: passes each chunk through (counted by ``counter``, unless
    it is marked for another table: a REST record's child rows), or stops the extract once cancelled."""

    def check(chunk: Any, meta: Any = None) -> Any:
        raise_if_cancelled(cancel, table)
        if counter is not None and getattr(meta, "table_name", None) is None:
            counter.add(chunk)
        return chunk

    return check


def wait_for_tables(pool: ThreadPoolExecutor) -> None:
    """Drop the tables that have not started and wait until the running ones have stopped. A
    second Ctrl-C does not cut the wait short: the lock must outlive the threads."""
    pool.shutdown(wait=False, cancel_futures=True)
    while True:
        try:
            pool.shutdown(wait=True)
            return
        except KeyboardInterrupt:
            continue
