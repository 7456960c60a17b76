"""The figures the dashboards show, computed from generated run records: counts, rates,
freshness against schedules, anomalies, failing sources first, quality results, drill-down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingestion_core.records import ErrorInfo, RunRecord, TableResult, write_record
from ingestion_core.run_metrics import (
    anomalies,
    failing_sources,
    freshness,
    human_count,
    human_duration,
    load_run_data,
    quality_results,
    rows_per_day,
    run_detail,
    success_rates,
    today_by_status,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def record(source: str, hours_ago: float, status: str = "success", kind: str = "run", rows: int = 1000,
           duration: float = 10.0, quality: list | None = None, snapshot: str = "name: x\n", **extra) -> RunRecord:
    started = NOW - timedelta(hours=hours_ago)
    table = TableResult(name="orders", mode="full", status="success" if status == "success" else "failed",
                        rows=rows, duration_s=duration, quality=quality or [])
    return RunRecord(run_id=f"{source}-{kind}-{hours_ago}", kind=kind, source=source, source_type="sqlite",
                     owner="team", destination="local_duckdb", destination_type="duckdb", dataset=source,
                     actor="ana", status=status, started_at=started, ended_at=started + timedelta(seconds=duration),
                     duration_s=duration, rows_total=rows, tables=[table], config_snapshot=snapshot, **extra)


@pytest.fixture
def history(ingest_env: Path) -> None:
    for day in range(10):  # shop: a daily run, steady rows, except one spike yesterday
        rows = 100_000 if day == 1 else 1000 + day
        write_record(record("shop", 24 * day + 2, rows=rows))
    write_record(record("crm", 1, status="failed", rows=0,
                        error=ErrorInfo(error_class="OperationalError", message="connection refused", hint="check")))
    write_record(record("crm", 30))
    write_record(record("crm", 3, kind="preview", status="failed"))  # previews never count
    write_record(record("hr", 50, quality=[{"check": "not_null", "status": "fail", "severity": "error",
                                            "observed": 3, "threshold": 0, "column": "id"}],
                        status="quality_failed"))


def test_counts_rates_and_failing_first(history) -> None:
    data = load_run_data()
    assert len(data.runs) == 14 and len(data.real) == 13
    assert today_by_status(data, NOW) == {"success": 1, "failed": 1}
    failing = failing_sources(data)
    assert list(failing["source"]) == ["crm", "hr"]
    assert failing.iloc[0]["message"] == "connection refused" and failing.iloc[0]["hint"] == "check"
    rates = success_rates(data, NOW).set_index("source")
    assert rates.loc["crm", "runs_7d"] == 2 and rates.loc["crm", "success_7d"] == 0.5
    assert rates.loc["shop", "success_7d"] == 1.0 and rates.loc["shop", "runs_30d"] == 10


def test_rows_per_day_stacks_by_source(history) -> None:
    frame = rows_per_day(load_run_data(), days=30, now=NOW)
    assert frame[frame["source"] == "shop"]["rows"].sum() == 100_000 + sum(1000 + d for d in range(10) if d != 1)


def test_freshness_against_schedules(history) -> None:
    table = freshness(load_run_data(), {"shop": "0 10 * * *", "crm": "0 * * * *", "hr": None, "new": "0 6 * * *"},
                      NOW).set_index("source")
    assert table.loc["shop", "state"] == "fresh"  # succeeded at 10:00 today
    assert table.loc["crm", "state"] == "late"  # hourly, last success 30 h ago
    assert table.loc["hr", "state"] == "not scheduled"
    assert table.loc["new", "state"] == "late"  # never succeeded, due since yesterday 06:00


def test_anomaly_flagged_only_for_the_spike(history) -> None:
    flagged = anomalies(load_run_data())
    assert list(zip(flagged["source"], flagged["metric"], flagged["value"], strict=True)) == [("shop", "rows", 100_000)]


def test_no_anomaly_with_fewer_than_five_runs(ingest_env: Path) -> None:
    for hours, rows in ((1, 10), (2, 10), (3, 10), (4, 10_000)):
        write_record(record("tiny", hours, rows=rows))
    assert anomalies(load_run_data()).empty


def test_quality_results_and_abandoned(history) -> None:
    results = quality_results(load_run_data())
    assert results.iloc[0][["source", "check", "status", "observed"]].tolist() == ["hr", "not_null", "fail", 3]


def test_drill_down_with_config_diff_and_log(ingest_env: Path) -> None:
    write_record(record("shop", 5, snapshot="name: shop\nmode: full\n"))
    log = ingest_env / "run.log"
    log.write_text("line 1\nline 2\n")
    write_record(record("shop", 1, snapshot="name: shop\nmode: append\n", log_path=str(log)))
    detail = run_detail("shop-run-1")
    assert detail["previous_run_id"] == "shop-run-5"
    assert "-mode: full" in detail["config_diff"] and "+mode: append" in detail["config_diff"]
    assert detail["log_excerpt"] == ["line 1", "line 2"]


def test_empty_folder(ingest_env: Path) -> None:
    data = load_run_data()
    assert data.runs.empty and failing_sources(data).empty and anomalies(data).empty


@pytest.mark.parametrize(("value", "text"), [(0, "0"), (999, "999"), (1200, "1.2k"), (1_234_567, "1.2M"),
                                             (3_000_000_000, "3B"), (None, "-")])
def test_human_count(value, text) -> None:
    assert human_count(value) == text


@pytest.mark.parametrize(("seconds", "text"), [(0, "0 s"), (4, "4 s"), (184, "3 min 4 s"), (3700, "1 h 1 min"),
                                               (90061, "1 d 1 h")])
def test_human_duration(seconds, text) -> None:
    assert human_duration(seconds) == text
