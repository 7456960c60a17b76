"""The figures the dashboards show, computed from generated run records: counts, rates,
freshness against schedules, anomalies, failing sources first, quality results, drill-down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingestion_core.observe.records import ErrorInfo, RunRecord, TableResult, write_record
from ingestion_core.observe.run_metrics import (
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
    assert frame[frame["source"] == "shop"]["records"].sum() == 100_000 + sum(1000 + d for d in range(10) if d != 1)


def test_freshness_against_schedules(history) -> None:
    table = freshness(load_run_data(), {"shop": "0 10 * * *", "crm": "0 * * * *", "hr": None, "new": "0 6 * * *"},
                      NOW).set_index("source")
    assert table.loc["shop", "state"] == "fresh"  # succeeded at 10:00 today
    assert table.loc["crm", "state"] == "late"  # hourly, last success 30 h ago
    assert table.loc["hr", "state"] == "not scheduled"
    assert table.loc["new", "state"] == "late"  # never succeeded, due since yesterday 06:00


def test_freshness_reads_a_schedule_in_its_time_zone(history) -> None:
    schedules = {"shop": "0 6 * * *"}  # NOW is 12:00 UTC on 20 Nov; 06:00 in Tokyo is 21:00 UTC the day before
    utc = freshness(load_run_data(), schedules, NOW).iloc[0]
    tokyo = freshness(load_run_data(), schedules, NOW, timezones={"shop": "Asia/Tokyo"}).iloc[0]
    assert utc["due_by"] == datetime(2026, 11, 19, 6, 30, tzinfo=UTC)  # the run before the latest, + 30 min grace
    assert tokyo["due_by"] == datetime(2026, 11, 18, 21, 30, tzinfo=UTC)


def test_a_new_scheduled_source_is_not_late_before_its_first_scheduled_run(history) -> None:
    schedules = {"new": "0 6 * * *"}  # daily at 06:00; NOW is 12:00
    created_today = {"new": NOW - timedelta(hours=3)}  # after today's 06:00: its first run is tomorrow
    assert freshness(load_run_data(), schedules, NOW, since=created_today).iloc[0]["state"] == "waiting"
    created_before_yesterday = {"new": NOW - timedelta(days=2)}  # missed yesterday's 06:00 run
    assert freshness(load_run_data(), schedules, NOW, since=created_before_yesterday).iloc[0]["state"] == "late"


def test_first_seen_is_the_first_save_or_the_file_time(ingest_env: Path) -> None:
    from ingestion_core.config.store import ConfigStore
    store = ConfigStore()
    before = datetime.now(UTC)
    store.save_text("sources", "shop", "version: 1\nname: shop\nowner: team\nsource: {type: sqlite, path: x.db}\n"
               "tables: [{name: t}]\n", actor="ana", expected_revision=None)
    (ingest_env / "configs" / "sources" / "byhand.yaml").write_text("name: byhand\n")
    seen = store.first_seen()
    assert set(seen) == {"shop", "byhand"} and all(t >= before - timedelta(seconds=2) for t in seen.values())


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


# --- what the dashboard pages add ----------------------------------------------------------

def _reference_anomalies(data) -> list[tuple]:
    """The definition, run by brute force: each successful real run against the (up to) 14
    successful real runs of its table before it, from the 6th on."""
    import pandas as pd

    frame = data.tables[(data.tables["kind"] == "run") & (data.tables["status"] == "success")]
    found = []
    for (source, table), runs in frame.groupby(["source", "table"]):
        runs = runs.sort_values("started_at", kind="stable")
        for position in range(5, len(runs)):
            window, current = runs.iloc[max(0, position - 14):position], runs.iloc[position]
            for metric in ("rows", "duration_s"):
                median = window[metric].median()
                mad = (window[metric] - median).abs().median()
                floor = max(abs(median) * 0.01, 1.0 if metric == "rows" else 0.5)
                if abs(current[metric] - median) > 3 * max(mad, floor) and not pd.isna(current[metric]):
                    found.append((source, table, current["run_id"], metric, float(median), float(mad)))
    return found


@pytest.mark.parametrize("seed", range(4))
def test_anomalies_match_the_definition_on_random_histories(ingest_env: Path, seed: int) -> None:
    import random

    rng = random.Random(seed)
    for i in range(120):
        source = rng.choice(["a", "b", "c"])
        status = rng.choice(["success"] * 5 + ["failed"])
        kind = rng.choice(["run"] * 4 + ["preview"])
        write_record(record(source, 0.5 * i + rng.random() * 0.1, status=status, kind=kind,
                            rows=rng.choice([1000, 1010, 990, rng.randint(0, 100_000)]),
                            duration=rng.choice([10.0, 10.5, 9.5, rng.random() * 100])))
    data = load_run_data()

    flagged = anomalies(data)

    got = [(r.source, r.table, r.run_id, r.metric, float(r.median), float(r.mad)) for r in flagged.itertuples()]
    assert got == _reference_anomalies(data)
    assert got  # the random spikes are caught


def test_malformed_files_are_skipped_and_listed(ingest_env: Path) -> None:
    write_record(record("shop", 1))
    folder = ingest_env / "runs" / "2026" / "01" / "02"
    folder.mkdir(parents=True)
    bad = {"empty.json": "", "garbage.json": "not json\n", "array.json": "[1, 2]\n",
           "no_source.json": '{"run_id": "x", "kind": "run", "status": "success", "started_at": "2026-01-02"}',
           "bad_time.json": '{"run_id": "y", "kind": "run", "source": "s", "status": "success", "started_at": "soon"}'}
    for name, text in bad.items():
        (folder / name).write_text(text)

    data = load_run_data()

    assert data.runs["run_id"].tolist() == ["shop-run-1"]
    assert [Path(p).name for p in data.skipped] == sorted(bad)
    assert data.tables[["table", "extract_s"]].values.tolist() == [["orders", 0.0]]  # no phases recorded


def test_phase_seconds_come_with_the_scan(ingest_env: Path) -> None:
    from ingestion_core.observe.records import Phase

    run = record("shop", 1)
    run.phases = {"extract": Phase(duration_s=6, pct=60), "load": Phase(duration_s=4, pct=40)}
    run.tables[0].phases = {"extract": Phase(duration_s=5, pct=50)}
    write_record(run)

    data = load_run_data()

    assert data.runs[["extract_s", "normalize_s", "load_s"]].values.tolist() == [[6.0, 0.0, 4.0]]
    assert data.tables[["extract_s", "normalize_s", "load_s"]].values.tolist() == [[5.0, 0.0, 0.0]]


def test_source_health_failing_then_late_then_the_rest(history) -> None:
    from ingestion_core.observe.run_metrics import source_health

    health = source_health(load_run_data(), {"shop": "0 10 * * *", "crm": None, "billing": "0 6 * * *"}, NOW)

    assert health["source"].tolist() == ["crm", "hr", "billing", "shop"]
    crm = health.iloc[0]
    assert (crm["status"], crm["message"], crm["hint"], crm["state"]) == ("failed", "connection refused", "check",
                                                                        "not scheduled")
    assert health.set_index("source").loc["billing", "status"] == "never run"
    assert health.set_index("source").loc["billing", "state"] == "late"
    assert health.set_index("source").loc["shop", "success_7d"] == 1.0


def test_overall_success_leaves_previews_and_running_out(history) -> None:
    from ingestion_core.observe.run_metrics import overall_success

    write_record(record("shop", 0.5, status="running", host="elsewhere"))
    assert overall_success(load_run_data(), NOW, 7) == (8 / 10, 10)  # shop 7/7 in 7 days, crm 1/2, hr 0/1


def test_filter_runs_by_values_and_dates(history) -> None:
    from ingestion_core.observe.run_metrics import filter_runs

    data = load_run_data()
    failed = filter_runs(data, status=["failed"], kind=["run"])
    assert failed.runs["source"].tolist() == ["crm"] and failed.tables["run_id"].tolist() == ["crm-run-1"]
    recent = filter_runs(data, start=NOW - timedelta(hours=30), end=NOW - timedelta(hours=2), source=[])
    assert recent.runs["run_id"].tolist() == ["crm-preview-3", "shop-run-26", "crm-run-30"]
    assert filter_runs(data).runs.equals(data.runs)


def test_daily_totals_per_source(history) -> None:
    from ingestion_core.observe.run_metrics import daily_totals

    runs = load_run_data().runs
    totals = daily_totals(runs[runs["source"] == "shop"])

    assert len(totals) == 10 and totals["records"].sum() == 100_000 + sum(1000 + d for d in range(10) if d != 1)
    assert (totals["throughput"] == totals["records"] / totals["duration_s"]).all()


def _checks(ingest_env: Path) -> None:
    def q(status, observed, threshold=0, name="not_null(id)", severity="error"):
        return [{"check": name.split("(")[0], "name": name, "status": status, "severity": severity,
                 "observed": observed, "threshold": threshold, "column": "id", "message": "m"}]

    write_record(record("a", 50, quality=q("pass", 0)))
    write_record(record("a", 26, quality=q("fail", 7)))
    write_record(record("a", 2, quality=q("pass", 0) + q("skipped", None, None, "row_count")))
    write_record(record("b", 3, quality=q("warn", 2, name="unique(id)", severity="warn")))
    write_record(record("c", 4, quality=q("fail", 12, {"min": 1, "max": 10}, "row_count")))


def test_latest_checks_failing_first_with_counts(ingest_env: Path) -> None:
    from ingestion_core.observe.run_metrics import latest_checks

    _checks(ingest_env)
    latest = latest_checks(quality_results(load_run_data()))

    assert latest[["key", "status", "fails", "warns", "checked"]].values.tolist() == [
        ["c.orders · row_count", "fail", 1, 0, 1],
        ["b.orders · unique(id)", "warn", 0, 1, 1],
        ["a.orders · not_null(id)", "pass", 1, 0, 3],  # failed once, passes again now; skipped ones left out
    ]


def test_check_matrix_and_trend(ingest_env: Path) -> None:
    from ingestion_core.observe.run_metrics import check_matrix, check_trend

    _checks(ingest_env)
    results = quality_results(load_run_data())

    matrix = check_matrix(results)
    assert list(matrix.index) == ["c.orders · row_count", "b.orders · unique(id)", "a.orders · not_null(id)"]
    assert sorted(matrix.loc["a.orders · not_null(id)"].dropna().tolist()) == [0.0, 0.0, 2.0]
    assert matrix.loc["b.orders · unique(id)"].dropna().tolist() == [1.0]
    assert len(check_matrix(results, limit=1)) == 1

    trend = check_trend(results, "a.orders · not_null(id)")
    assert trend[["status", "observed", "maximum"]].values.tolist() == [["pass", 0, 0], ["fail", 7, 0],
                                                                         ["pass", 0, 0]]
    bounds = check_trend(results, "c.orders · row_count")
    assert bounds[["minimum", "maximum"]].values.tolist() == [[1.0, 10.0]]


def test_quality_results_keep_json_values_and_labels(ingest_env: Path) -> None:
    _checks(ingest_env)

    results = quality_results(load_run_data())

    row = results[results["source"] == "c"].iloc[0]
    assert (row["name"], row["observed"], row["threshold"], row["message"]) == ("row_count", 12,
                                                                                {"min": 1, "max": 10}, "m")
    assert results["started_at"].is_monotonic_decreasing


def test_run_detail_from_loaded_data_matches_a_fresh_lookup(ingest_env: Path) -> None:
    write_record(record("shop", 5, snapshot="name: shop\nmode: full\n"))
    write_record(record("shop", 3, kind="preview", snapshot="name: shop\nmode: merge\n"))
    write_record(record("shop", 1, snapshot="name: shop\nmode: append\n"))

    fresh, loaded = run_detail("shop-run-1"), run_detail("shop-run-1", data=load_run_data())

    assert fresh == loaded
    assert loaded["previous_run_id"] == "shop-preview-3" and "-mode: merge" in loaded["config_diff"]
    assert loaded["status"] == "success"


@pytest.mark.parametrize(("value", "text"), [(None, "-"), (3, "3"), (1234567, "1,234,567"), (0.25, "0.25"),
                                             ({"min": 1, "max": 5}, "min 1, max 5"), ("2 days", "2 days"),
                                             (True, "True"), ([1, 2], "[1, 2]")])
def test_as_text(value, text) -> None:
    from ingestion_core.observe.run_metrics import as_text

    assert as_text(value) == text


@pytest.mark.parametrize(("value", "text"), [(None, "-"), (512, "512 B"), (2000, "2 kB"), (1.5e6, "1.5 MB"),
                                             (3e9, "3 GB")])
def test_human_bytes(value, text) -> None:
    from ingestion_core.observe.run_metrics import human_bytes

    assert human_bytes(value) == text


@pytest.mark.parametrize(("value", "text"), [(None, "-"), (1.0, "100%"), (10 / 13, "76.9%"), (0, "0%")])
def test_human_share(value, text) -> None:
    from ingestion_core.observe.run_metrics import human_share

    assert human_share(value) == text
