"""One definition per figure: every page renders the same records and shows the same figures
(records apart from child-table rows, the run's wall-clock seconds, records per second, bytes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingestion_core.observe import run_metrics as rm
from ingestion_core.observe.records import Phase, RunRecord, TableResult, write_record
from tests.ui.test_dashboards import figure, metrics, render

STARTED = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
RECORDS, CHILD_ROWS, SECONDS, BYTES = 250_000, 500_000, 14.0, 5_015_700


@pytest.fixture
def one_run(ingest_env: Path) -> str:
    """One real run of a REST source whose records carry a nested list (2 items each): 3x the rows.
    Its two tables ran in parallel, so their seconds add up to more than the run's 14 s."""
    tables = [TableResult(name="orders", mode="full", status="success", rows=RECORDS + CHILD_ROWS, records=RECORDS,
                          child_rows={"orders__items": CHILD_ROWS}, bytes=BYTES, duration_s=13.1,
                          phases={"extract": Phase(duration_s=9.0), "load": Phase(duration_s=4.1)}),
              TableResult(name="customers", mode="full", status="success", rows=0, records=0, duration_s=6.5)]
    record = RunRecord(run_id="r-one", kind="run", source="crm", source_type="rest_api", owner="team",
                       destination="local_duckdb", destination_type="duckdb", dataset="crm", actor="ana",
                       status="success", started_at=STARTED, ended_at=STARTED + timedelta(seconds=SECONDS),
                       duration_s=SECONDS, tables=tables, rows_total=RECORDS + CHILD_ROWS, records_total=RECORDS,
                       bytes_total=BYTES, throughput_rows_per_s=(RECORDS + CHILD_ROWS) / SECONDS,
                       phases={"extract": Phase(duration_s=9.0), "load": Phase(duration_s=4.1)})
    write_record(record)
    return record.run_id


def test_every_page_shows_the_same_figures_for_the_same_records(one_run: str) -> None:
    per_second = RECORDS / SECONDS

    board = render("metrics")
    cells = metrics(board)
    assert cells["Median run"] == rm.human_duration(SECONDS) == "14 s"
    assert cells["Records loaded"] == rm.human_count(RECORDS) == "250k"  # not 750k: child rows apart
    assert cells["Data extracted"] == rm.human_bytes(BYTES) == "5 MB"
    assert list(figure(board, "metrics_duration")[0]["y"]) == [SECONDS]  # the run's time, not 19.6 s of tables
    assert list(figure(board, "metrics_rows")[0]["y"]) == [RECORDS]
    assert list(figure(board, "metrics_throughput")[0]["y"]) == pytest.approx([per_second])
    assert list(figure(board, "metrics_bytes")[0]["y"]) == [BYTES]

    history = render("history", history_run=one_run)
    run = metrics(history)
    assert run["Duration"] == cells["Median run"]
    assert run["Records"] == cells["Records loaded"]
    assert run["Data"] == cells["Data extracted"]
    assert run["Records per second"] == rm.human_count(per_second) == "17.9k"
    listed = history.dataframe[0].value.iloc[0]
    assert (listed["records"], listed["child rows"]) == (RECORDS, CHILD_ROWS)
    assert listed["records/s"] == pytest.approx(per_second)

    overview = render("overview")
    assert sum(sum(t["y"]) for t in figure(overview, "overview_rows")) == RECORDS
