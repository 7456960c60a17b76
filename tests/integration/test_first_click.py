"""The first test run of a freshly started portal (issue 14): the page reads each table's
incremental state while the test run's threads import dlt for the first time in the process.

Each case is a fresh interpreter (imports happen once per process), doing what the Test & run
page does on the click: start the test run in its background thread, and, at the moment that
thread is inside a heavy import, read the state on the page's thread. Before the fix the page
got ``KeyError: 'dlt'`` and the run ``_DeadlockError`` or "cannot import name 'json' from
partially initialized module 'dlt.common.json'" every time the state read fell inside
``import dlt``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.integration.test_demo_sources import demo  # noqa: F401  (a fixture: demo sources and data)

pytestmark = [pytest.mark.slow]

FIRST_CLICK = """
    import json, sys, time, traceback
    from ingestion_core.observe import records
    from ingestion_core.pipeline import run_control
    from ingestion_core.config.store import ConfigStore
    from portal.sources import preview_jobs

    config = ConfigStore().load_source("demo_shop").config
    records.latest_runs(source="demo_shop", kind="run", limit=100)  # the page's own first query, done

    def importing(name):
        module = sys.modules.get(name)
        return module is not None and getattr(getattr(module, "__spec__", None), "_initializing", False)

    job, _ = preview_jobs.start_preview("demo_shop", actor="ana")
    while not importing(sys.argv[1]) and job.running:  # the test run's thread is inside this import now
        time.sleep(0.0002)
    page = "ok"
    try:
        run_control.table_states(config)
    except BaseException:
        page = traceback.format_exc().strip().splitlines()[-1]
    job.wait(600)
    record = job.snapshot()
    print(json.dumps({"page": page, "job_error": job.error, "status": record.status if record else None,
                      "sample_rows": {k: len(v) for k, v in (job.result.samples if job.result else {}).items()}}))
"""


@pytest.mark.parametrize("module", ["dlt", "dlt.common", "pandas"])
def test_the_first_test_run_and_the_page_state_read_import_dlt_at_once(demo: Path, module: str) -> None:  # noqa: F811
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(FIRST_CLICK), module], capture_output=True,
                          text=True, cwd=REPO, timeout=600, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["page"] == "ok", outcome
    assert outcome["job_error"] is None and outcome["status"] == "success", outcome
    assert outcome["sample_rows"] and all(outcome["sample_rows"].values()), outcome
