"""The local scheduler under a fake clock: a due source fires (a real `ingest run` child), one
whose run is in progress is skipped, a restart makes up a missed run once (never one per
missed time), and the portal's status says whether it is alive and what runs a schedule."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingestion_core.cli.main import main
from ingestion_core.config.store import ConfigStore
from ingestion_core.observe.records import latest_runs
from ingestion_core.observe.schedule_status import describe_executor, heartbeat_path, log_path, scheduler_status
from ingestion_core.pipeline.run_control import source_lock
from ingestion_core.pipeline.scheduler import Scheduler, SchedulerRunningError


class FakeClock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def write_source(project: Path, name: str, schedule: str, timezone: str = "UTC") -> None:
    (project / "configs" / "sources" / f"{name}.yaml").write_text(
        f"name: {name}\nowner: market-de\nschedule: '{schedule}'\ntimezone: {timezone}\n"
        "source: {type: sqlite, path: shop.sqlite}\nretries: {attempts: 1}\ntables:\n  - {name: orders, mode: full}\n")


@pytest.fixture
def shop(ingest_env: Path) -> Path:
    with sqlite3.connect(ingest_env / "shop.sqlite") as con:
        con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, amount REAL)")
        con.executemany("INSERT INTO orders VALUES (?, ?)", [(i, i / 2) for i in range(40)])
    return ingest_env


def runs_of(source: str) -> list[dict]:
    return latest_runs(source=source, kind="run")


def test_a_due_source_fires_and_one_whose_run_is_in_progress_is_skipped(shop: Path) -> None:
    write_source(shop, "due_src", "0 6 * * *")
    write_source(shop, "busy_src", "0 6 * * *")
    clock = FakeClock(datetime(2026, 1, 5, 5, 59, 30, tzinfo=UTC))
    scheduler = Scheduler(actor="scheduler", clock=clock, interval_s=30)

    assert scheduler.start() == []  # yesterday's 06:00 is beyond the grace window
    assert scheduler.tick() == []
    with source_lock("busy_src", run_id="held-by-the-test"):
        clock.now = datetime(2026, 1, 5, 6, 0, 5, tzinfo=UTC)
        assert scheduler.tick() == ["busy_src", "due_src"]
        scheduler.wait()

    assert [(r["status"], r["trigger"], r["actor"]) for r in runs_of("due_src")] == [("success", "schedule",
                                                                                      "scheduler")]
    assert runs_of("busy_src") == []
    events = {(e["source"], e["event"]): e["detail"] for e in scheduler.events}
    assert "already running: run held-by-the-test" in events[("busy_src", "skipped")]
    assert scheduler.next_due["due_src"] == datetime(2026, 1, 6, 6, 0, tzinfo=UTC)
    clock.now += timedelta(seconds=30)
    assert scheduler.tick() == []  # fired once for 06:00
    assert heartbeat_path().exists()


def test_a_schedule_is_read_in_its_time_zone(shop: Path) -> None:
    write_source(shop, "berlin", "0 6 * * *", timezone="Europe/Berlin")  # 06:00 in Berlin: 05:00 UTC in winter
    write_source(shop, "london", "0 6 * * *", timezone="Europe/London")
    clock = FakeClock(datetime(2026, 1, 5, 4, 59, 30, tzinfo=UTC))
    scheduler = Scheduler(actor="scheduler", clock=clock, grace=timedelta(0))
    assert scheduler.start() == []
    assert scheduler.next_due == {"berlin": datetime(2026, 1, 5, 5, 0, tzinfo=UTC),
                                  "london": datetime(2026, 1, 5, 6, 0, tzinfo=UTC)}
    clock.now = datetime(2026, 1, 5, 5, 0, 10, tzinfo=UTC)
    assert scheduler.tick() == ["berlin"]
    scheduler.wait()
    assert scheduler.next_due["berlin"] == datetime(2026, 1, 6, 5, 0, tzinfo=UTC)
    clock.now = datetime(2026, 7, 1, 3, 59, tzinfo=UTC)  # summer time: 06:00 in Berlin is 04:00 UTC
    assert scheduler.tick() == ["berlin", "london"]  # both overdue since January: once each
    scheduler.wait()
    assert scheduler.next_due["berlin"] == datetime(2026, 7, 1, 4, 0, tzinfo=UTC)
    config = ConfigStore().load_source("berlin").config
    assert "cron 0 6 * * * Europe/Berlin" in describe_executor(config).text


def test_a_restart_makes_up_a_missed_run_once_within_the_grace_window(shop: Path) -> None:
    write_source(shop, "five", "*/5 * * * *")  # 06:00 .. 06:20 all missed while stopped
    write_source(shop, "daily", "0 6 * * *")  # missed 22 min ago: beyond a 10 min grace
    clock = FakeClock(datetime(2026, 1, 5, 6, 22, tzinfo=UTC))

    first = Scheduler(actor="scheduler", clock=clock, grace=timedelta(minutes=10))
    assert first.start() == ["five"]
    first.wait()
    assert len(runs_of("five")) == 1 and runs_of("daily") == []
    detail = {e["source"]: e["detail"] for e in first.events if e["event"] == "missed"}
    assert "06:20 UTC was missed; running it once now" in detail["five"]
    assert "waits for 2026-01-06 06:00 UTC" in detail["daily"]

    clock.now = datetime(2026, 1, 5, 6, 23, tzinfo=UTC)  # restarted again: 06:20 has its run now
    assert Scheduler(actor="scheduler", clock=clock, grace=timedelta(minutes=10)).start() == []
    assert len(runs_of("five")) == 1


def test_status_alive_stale_not_running_and_what_executes_a_schedule(shop: Path, capsys) -> None:
    write_source(shop, "due_src", "0 6 * * *")
    config = ConfigStore().load_source("due_src").config
    assert scheduler_status().state == "not running"
    executor = describe_executor(config)
    assert (executor.kind, executor.state, executor.command) == ("local_scheduler", "not running", "ingest scheduler")
    assert "nothing runs cron 0 6 * * * UTC yet" in executor.text

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
        executor = describe_executor(config)
        assert executor.state == "alive" and "next run" in executor.text
        later = datetime.now(UTC) + timedelta(minutes=10)
        assert scheduler_status(now=later).state == "stale"
        with pytest.raises(SchedulerRunningError, match="already running"):
            Scheduler(actor="other").run_forever(threading.Event())
        assert main(["scheduler", "--status"]) == 0
        assert main(["scheduler", "--interval", "1"]) == 1  # a second one is refused, with the reason
        assert "a scheduler is already running" in capsys.readouterr().err
    finally:
        stop.set()
        loop.join()
    assert scheduler_status().state == "not running"
    assert "scheduler started" in log_path().read_text()


def test_sources_of_a_databricks_jobs_destination_are_left_to_their_jobs(shop: Path) -> None:
    (shop / "configs" / "destinations" / "dbx.yaml").write_text(
        "type: databricks\nserver_hostname: adb-1.azuredatabricks.net\nhttp_path: /sql/1.0/warehouses/x\n"
        "catalog: main\naccess_token: ${secrets.dbx.token}\njobs: {volume: /Volumes/main/ingest/files}\n")
    write_source(shop, "remote", "0 6 * * *")
    path = shop / "configs" / "sources" / "remote.yaml"
    path.write_text(path.read_text() + "destination: dbx\n")
    store = ConfigStore()
    assert store.load("sources", "remote").valid, store.load("sources", "remote").issues
    executor = describe_executor(store.load_source("remote").config)
    assert executor.kind == "databricks_job" and "ingest-remote" in executor.text
    clock = FakeClock(datetime(2026, 1, 5, 6, 0, tzinfo=UTC))
    assert Scheduler(clock=clock).tick() == []
