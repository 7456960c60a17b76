"""Cancelling a run, cooperatively.

A cancel (SIGTERM from ``ingest cancel`` or the portal, Ctrl-C in a terminal) reaches the run's
main thread as ``KeyboardInterrupt``; Python cannot stop the table threads from outside. So the
runner sets the run's cancel event, and each table thread stops by itself at its next chunk of
rows (a page of an API, a chunk of a SQL table or a file), between its extract, normalize and
load, and in a retry's back-off, with :class:`RunCancelled`. The runner then waits for every
table thread to end (:func:`wait_for_tables`) before the run ends: the source's lock is released
only when nothing of the run reads or writes any more. A run stuck in a call that never returns
is killed by ``ingest cancel`` after its grace period; the kernel releases the lock then.

Example::

    resource.add_map(stop_when_cancelled(plan.cancel, "orders"))   # each chunk checks the event
    except KeyboardInterrupt:
        plan.cancel.set()
        wait_for_tables(pool)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class RunCancelled(Exception):
    """Raised in a table's thread once its run is cancelled."""


def raise_if_cancelled(cancel: threading.Event, table: str) -> None:
    if cancel.is_set():
        raise RunCancelled(f"{table}: the run was cancelled; the table stopped at its next chunk")


def stop_when_cancelled(cancel: threading.Event, table: str) -> Callable[[Any], Any]:
    """A map step for a dlt resource: passes each chunk through, or stops the extract once cancelled."""

    def check(chunk: Any) -> Any:
        raise_if_cancelled(cancel, table)
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
