"""What executes each schedule, on the Sources list, and the Overview's warning when scheduled
sources have nothing running them: with the local scheduler stopped, then running."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from streamlit.testing.v1 import AppTest

from ingestion_core.observe.schedule_status import scheduler_status
from ingestion_core.pipeline.scheduler import Scheduler
from tests.ui.test_sources import SHOP, record_run, sources_page, table
from tests.ui.test_wizard import REPO, write_source

OVERVIEW = REPO / "pages" / "overview.py"


def executors(at: AppTest) -> dict[str, str]:
    return {row["name"]: row["schedule run by"] for row in table(at)}


def test_sources_list_and_overview_say_what_runs_each_schedule(ingest_env: Path) -> None:
    write_source(ingest_env, "shop", SHOP)
    write_source(ingest_env, "daily", SHOP.replace("name: shop", "name: daily") + "schedule: '0 6 * * *'\n")
    record_run("shop", "success", datetime.now(UTC) - timedelta(hours=1))

    assert executors(sources_page()) == {"daily": "nothing yet (start: ingest scheduler)", "shop": "-"}
    overview = AppTest.from_file(str(OVERVIEW), default_timeout=30).run()
    assert not overview.exception
    warning = [w.value for w in overview.warning if "Nothing runs the schedule" in w.value]
    assert len(warning) == 1 and "daily" in warning[0] and "ingest scheduler" in warning[0]

    stop = threading.Event()
    # it beats at start and then every 30 s (stale after 90 s); no make-up run whatever the hour
    scheduler = Scheduler(actor="scheduler", interval_s=30, grace=timedelta(0))
    loop = threading.Thread(target=scheduler.run_forever, args=(stop,))
    loop.start()
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=60)
        while not scheduler_status().alive:
            assert datetime.now(UTC) < deadline, "the scheduler never beat"
            stop.wait(0.05)
        assert executors(sources_page())["daily"] == "local scheduler"
        overview = AppTest.from_file(str(OVERVIEW), default_timeout=30).run()
        assert not [w for w in overview.warning if "Nothing runs the schedule" in w.value]
        assert any("the local scheduler is running" in c.value for c in overview.caption)
    finally:
        stop.set()
        loop.join()
