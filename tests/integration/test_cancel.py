"""A cancel that stops (issue 14): SIGTERM to ``ingest run`` stops its table threads at their next
page whatever state stdout is in, the source's lock is held until they have stopped (a second
``ingest run`` is refused until then), and ``--json`` still prints JSON.

The REST API (tests/http_api.py) serves a million records, 10 a page. To catch the run while
its work cannot have stopped yet, the API holds one request open (``slow`` fault) until the
test lets it answer: the cancel arrives while the table thread waits for that page."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingestion_core.observe.records import find_record
from ingestion_core.pipeline.run_control import cancel_run, lock_holder, start_run
from tests.conftest import REPO
from tests.http_api import ApiServer, running_api
from tests.integration.test_run_control import wait_for

SOURCE = """\
name: api
owner: market-de
source: {{type: rest_api, base_url: '{url}/', timeout_seconds: 600, retry_attempts: 1,
         paginator: {{type: offset, limit: 10, total_path: total}}}}
retries: {{attempts: 1}}
tables:
  - {{name: items, path: slow/offset/items}}
"""


def ingest(*args: str, **options: Any) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ingestion_core", *args], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, **options)


@pytest.fixture
def api(ingest_env: Path) -> Iterator[ApiServer]:
    with running_api(1_000_000, virtual=True, slow_from_page=1, slow_seconds=0) as server:
        (ingest_env / "configs" / "sources" / "api.yaml").write_text(SOURCE.format(url=server.url))
        yield server


@pytest.mark.parametrize("reader", ["reads", "gone"])
def test_a_cancelled_run_stops_its_requests_and_holds_the_lock_until_it_has(
        api: ApiServer, ingest_env: Path, tmp_path: Path, reader: str) -> None:
    errors = tmp_path / "stderr.txt"
    with open(errors, "wb") as stderr:
        run = ingest("run", "api", "--json", stdout=subprocess.PIPE, stderr=stderr)
    try:
        wait_for(lambda: len(api.requests) >= 30, "the run to read 30 pages")
        api.slow_seconds = 3600  # the next page is held: the run's work cannot stop before it answers
        held = len(api.requests) + 1
        wait_for(lambda: len(api.requests) >= held, "the run to ask for the held page")
        if reader == "gone":
            run.stdout.close()  # the reader stops reading: anything printed now is a broken pipe
        run_id = lock_holder("api")["run_id"]
        os.kill(run.pid, signal.SIGTERM)
        cancelled_at = time.monotonic()

        wait_for(lambda: "cancelling" in errors.read_text() or find_record(run_id).status != "running",
                 "the run to take the cancel")
        holder = lock_holder("api")
        assert run.poll() is None and holder and holder["run_id"] == run_id, \
            f"the lock was released ({holder}) while the run's table thread still waits for its page"
        second = ingest("run", "api", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = second.communicate(timeout=300)
        assert second.returncode == 1 and f"api is already running: run {run_id}" in err, (out, err)
        assert run.poll() is None and lock_holder("api")["run_id"] == run_id

        api._stop.set()  # the held page answers; the table thread stops at it
        released_at = wait_for(lambda: lock_holder("api") is None and time.monotonic(), "the lock to be released")
        output = run.stdout.read() if reader == "reads" else b""
        assert run.wait(timeout=300) == 130
    finally:
        if run.poll() is None:
            run.kill()

    after_cancel = [r for r in api.requests if r.at > cancelled_at]
    assert after_cancel == []  # the page asked for before the cancel was the last one
    assert all(r.at < released_at for r in api.requests)
    record = find_record(run_id)
    assert record.status == "cancelled" and [t.status for t in record.tables] == ["cancelled"], record
    assert record.tables[0].error is None
    text = errors.read_text()
    assert "Broken pipe" not in text and "error:" not in text and "Traceback" not in text, text
    if reader == "reads":
        printed = json.loads(output)
        assert (printed["run_id"], printed["status"], printed["exit_code"]) == (run_id, "cancelled", 130)
        assert printed["tables"][0]["status"] == "cancelled"
    else:
        assert "stdout was closed before the outcome was printed" in text

    # once it has exited, the source runs again (and this one is cancelled the portal's way)
    api.requests.clear()
    again = start_run("api", actor="ana")
    wait_for(lambda: len(api.requests) >= 5, "the next run to read pages")
    pid = lock_holder("api")["pid"]
    assert cancel_run(again, actor="ops").status == "cancelled"
    count = len(api.requests)
    wait_for(lambda: not alive(pid), "the cancelled run's process to exit")
    assert len(api.requests) == count  # nothing read after its lock was released


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
