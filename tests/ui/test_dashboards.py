"""The dashboard pages (Overview, Metrics, Run history, Quality) rendered headless with AppTest
over a generated records folder in the per-test project of the autouse ``ingest_env`` fixture.

The folder holds a known history (see ``history``): a steady daily source with one spike, a
failing source, a quality failure, a late source, an abandoned run, a live run, a preview and
two unreadable files. The tests assert the figures the pages show: metric values, table rows,
and the data handed to each plotly chart (read back from the chart's JSON spec)."""

from __future__ import annotations

import base64
import json
import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from ingestion_core.observe.records import ErrorInfo, Phase, RunRecord, TableResult, write_record
from portal.dashboards import dashboard_data

REPO = Path(__file__).resolve().parents[2]
PAGES = {name: REPO / "pages" / f"{name}.py" for name in ("overview", "metrics", "history", "quality")}
NOW = datetime.now(UTC)
TODAY = NOW.replace(hour=0, minute=0, second=0, microsecond=0)
CRM_ERROR = ErrorInfo(error_class="OperationalError", message="connection refused by db.crm.internal:5432",
                      hint="the server cannot be reached: check host and port", transient=True)
SOURCE_YAML = """\
name: {name}
owner: {owner}
source: {{type: sqlite, path: demo/data/{name}.sqlite}}
{schedule}tables:
  - name: orders
"""


def today(share: float) -> datetime:
    """A moment earlier today (UTC), whatever the time now: ``share`` of the day so far."""
    return TODAY + (NOW - TODAY) * share


def days_ago(days: int) -> datetime:
    """Noon UTC ``days`` ago. Never 7 or 30: those would sit on a window's edge."""
    assert days not in (7, 30)
    return TODAY - timedelta(days=days) + timedelta(hours=12)


def check(name: str, status: str, observed, threshold, severity: str = "error") -> dict:
    kind = name.split("(")[0]
    return {"check": kind, "name": name, "status": status, "severity": severity, "observed": observed,
            "threshold": threshold, "column": "order_id" if "(" in name else None, "message": ""}


def record(source: str, started: datetime, status: str = "success", *, kind: str = "run", rows: int = 1000,
           seconds: float = 10.0, quality: list | None = None, snapshot: str | None = None,
           run_id: str | None = None, **extra) -> RunRecord:
    phases = {"extract": Phase(duration_s=seconds * 0.6, pct=60), "normalize": Phase(duration_s=seconds * 0.1, pct=10),
              "load": Phase(duration_s=seconds * 0.3, pct=30)}
    table = TableResult(name="orders", mode="append", status="success" if status == "success" else "failed",
                        rows=rows, bytes=rows * 100, files=1, duration_s=seconds, phases=phases,
                        quality=quality or [])
    return RunRecord(
        run_id=run_id or f"{source}-{kind}-{started:%Y%m%dT%H%M%S}", kind=kind, source=source, source_type="sqlite",
        owner="market-fr" if source in ("crm", "hr") else "market-de", destination="local_duckdb",
        destination_type="duckdb", dataset=source, trigger="schedule" if kind == "run" else "portal", actor="ana",
        status=status, started_at=started, ended_at=started + timedelta(seconds=seconds), duration_s=seconds,
        rows_total=rows, bytes_total=rows * 100, throughput_rows_per_s=rows / seconds, phases=phases, tables=[table],
        config_snapshot=snapshot or f"name: {source}\ntables:\n  - name: orders\n", **extra)


SHOP_DAYS = [12, 11, 10, 9, 8, 6, 5, 4, 3, 2, 1]  # daily; day 1 loaded 100x the usual rows
SHOP_CHECKS = [check("not_null(order_id)", "pass", 0, 0), check("row_count", "pass", 1000, {"min": 1})]


@pytest.fixture
def history(ingest_env: Path) -> Path:
    dashboard_data.clear()
    for name, owner, schedule in (("shop", "market-de", "0 0 * * *"), ("crm", "market-fr", "0 * * * *"),
                                  ("hr", "market-fr", None), ("billing", "market-de", "0 0 * * *")):
        text = SOURCE_YAML.format(name=name, owner=owner, schedule=f'schedule: "{schedule}"\n' if schedule else "")
        (ingest_env / "configs" / "sources" / f"{name}.yaml").write_text(text, encoding="utf-8")
    for day in SHOP_DAYS:
        write_record(record("shop", days_ago(day), rows=100_000 if day == 1 else 1000 + day, quality=SHOP_CHECKS))
    write_record(record("shop", today(0.2), rows=1010, quality=SHOP_CHECKS))
    write_record(record("crm", days_ago(2), snapshot="name: crm\nmode: full\n"))
    write_record(record("crm", days_ago(1), "failed", kind="preview", snapshot="name: crm\nmode: full\n",
                        quality=[check("not_null(order_id)", "fail", 5, 0)]))
    log = ingest_env / ".ingest" / "logs" / "crm.log"
    log.parent.mkdir(parents=True)
    log.write_text("extract orders\nOperationalError: connection refused by db.crm.internal:5432\n")
    write_record(record("crm", today(0.4), "failed", rows=0, error=CRM_ERROR, snapshot="name: crm\nmode: append\n",
                        log_path=str(log), run_id="crm-failed-today"))
    write_record(record("hr", days_ago(4), quality=[check("not_null(order_id)", "pass", 0, 0)]))
    write_record(record("hr", days_ago(2), "quality_failed", quality=[check("not_null(order_id)", "fail", 3, 0)]))
    write_record(record("billing", days_ago(5), quality=[check("unique(order_id)", "warn", 2, 0, "warn")]))
    abandoned = record("erp", days_ago(3), "running", host="worker-9")  # silent for 3 days: abandoned
    path = Path(write_record(abandoned))
    path.write_text(abandoned.model_copy(update={"heartbeat_at": days_ago(3)}).model_dump_json(), encoding="utf-8")
    write_record(record("ledger", today(0.6), "running", host=socket.gethostname(), pid=os.getpid()))  # alive
    folder = ingest_env / "runs" / f"{NOW:%Y/%m/%d}"
    (folder / "truncated.json").write_text('{"run_id": "half-writ', encoding="utf-8")
    (folder / "empty.json").write_text("", encoding="utf-8")
    return ingest_env


def render(page: str, **state) -> AppTest:
    at = AppTest.from_file(str(PAGES[page]), default_timeout=30)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def figure(at: AppTest, key: str) -> list[dict]:
    """The traces handed to the plotly chart with ``key``, arrays decoded."""
    spec = next(e for e in at.get("plotly_chart") if e.key == key).proto.spec
    return [{k: _decode(v) for k, v in trace.items()} for trace in json.loads(spec)["data"]]


def _decode(value):
    if isinstance(value, dict) and "bdata" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = [int(n) for n in str(value.get("shape", len(array))).split(",")]
        return array.reshape(shape).tolist()
    return value


def captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption)


# --- every page ----------------------------------------------------------------------------

@pytest.mark.parametrize("page", PAGES)
def test_unreadable_files_and_abandoned_runs_never_break_a_page(page: str, history: Path) -> None:
    at = render(page)

    warning = at.warning[0].value
    assert "2 run record file(s) could not be read" in warning
    assert "truncated.json" in warning and "empty.json" in warning


@pytest.mark.parametrize("page", PAGES)
def test_empty_folder_says_how_to_get_runs(page: str, ingest_env: Path) -> None:
    dashboard_data.clear()
    at = render(page)

    text = at.info[0].value
    assert "No runs recorded yet" in text and "ingest run" in text
    assert str(ingest_env / "runs") in text.replace("\\", "")
    assert not at.dataframe and not at.get("plotly_chart")


@pytest.mark.parametrize("page", ["overview", "metrics"])
def test_previews_only_say_to_start_a_real_run(page: str, ingest_env: Path) -> None:
    dashboard_data.clear()
    write_record(record("shop", today(0.5), kind="preview"))

    at = render(page)

    assert "Only test runs so far" in at.info[0].value and "Run now" in at.info[0].value


@pytest.mark.parametrize("page", PAGES)
def test_every_chart_has_a_caption(page: str, history: Path) -> None:
    at = render(page, **({"history_run": "crm-failed-today"} if page == "history" else {}))

    charts = at.get("plotly_chart")
    assert len(at.caption) >= len(charts) + 1  # the page's own line plus one per chart


# --- overview ------------------------------------------------------------------------------

def test_overview_counts_today_and_success_rates_without_previews(history: Path) -> None:
    at = render("overview")

    shown = metrics(at)
    assert {k: shown[k] for k in ("Runs today", "Success", "Failed", "Running")} == {
        "Runs today": "3", "Success": "1", "Failed": "1", "Running": "1"}
    # 7 days: shop 7/7, crm 1/2 (the failed preview left out), hr 1/2, billing 1/1, erp 0/1 -> 10/13
    assert shown["Success rate, 7 days"] == "76.9%"
    assert shown["Success rate, 30 days"] == "83.3%"  # shop 12/12 and the rest: 15/18
    assert shown["Sources failing"] == "3" and shown["Sources late"] == "1"


def test_overview_lists_failing_sources_first_with_error_and_fix(history: Path) -> None:
    at = render("overview")

    errors = [e.value.replace("\\", "") for e in at.error]
    assert [e.split("**")[1] for e in errors] == ["crm", "erp", "hr"]
    assert "last run failed" in errors[0] and "connection refused by db.crm.internal:5432" in errors[0]
    assert "What to do:** the server cannot be reached: check host and port" in errors[0]
    assert "history?run=crm-failed-today" in errors[0]
    assert "last run abandoned" in errors[1] and "last run quality failed" in errors[2]
    late = at.warning[1].value.replace("\\", "")
    assert late.startswith("**billing** is late") and "0 0 * * *" in late

    table = at.dataframe[0].value
    assert table["source"].tolist() == ["crm", "erp", "hr", "billing", "ledger", "shop"]
    assert dict(zip(table["source"], table["freshness"], strict=True)) == {
        "crm": "late", "erp": "not scheduled", "hr": "not scheduled", "billing": "late", "ledger": "not scheduled",
        "shop": "fresh"}
    assert table.set_index("source").loc["crm", "success 7 d"] == 50.0


def test_overview_rows_per_day_stack_real_runs_by_source(history: Path) -> None:
    at = render("overview")

    traces = {t["name"]: t for t in figure(at, "overview_rows")}
    assert set(traces) == {"shop", "crm", "hr", "billing", "erp", "ledger"}
    assert sum(traces["shop"]["y"]) == 100_000 + 1010 + sum(1000 + d for d in SHOP_DAYS if d != 1)
    assert all(t["type"] == "bar" for t in traces.values())
    rates = {t["name"]: dict(zip(t["y"], t["x"], strict=True)) for t in figure(at, "overview_rates")}
    assert rates["last 7 days"]["crm"] == 50.0 and rates["last 30 days"]["shop"] == 100.0


def test_overview_all_clear(ingest_env: Path) -> None:
    dashboard_data.clear()
    write_record(record("shop", today(0.5)))

    at = render("overview")

    assert "Nothing to do" in at.success[0].value
    assert not at.error


def test_overview_names_a_source_whose_last_run_was_cancelled(ingest_env: Path) -> None:
    """A cancelled last run is not a failure, and not a success either: the page must not say every
    latest run succeeded; it names the source and says what to do."""
    dashboard_data.clear()
    write_record(record("shop", today(0.4)))
    write_record(record("crm", today(0.5), "cancelled", error=ErrorInfo(error_class="Cancelled",
                                                                        message="cancelled by ana")))

    at = render("overview")

    assert "every source's latest run succeeded" not in " ".join(s.value for s in at.success)
    assert "No source's latest run failed" in at.success[0].value and not at.error
    assert metrics(at)["Sources failing"] == "0"
    notes = [i.value for i in at.info if "**crm**" in i.value]
    assert len(notes) == 1 and "cancelled" in notes[0] and "run it again" in notes[0]


# --- metrics -------------------------------------------------------------------------------

def test_metrics_flags_the_spike_as_an_anomaly(history: Path) -> None:
    at = render("metrics")

    shown = metrics(at)
    assert shown["Runs"] == "19" and shown["Anomalies"] == "1"
    flagged = at.dataframe[0].value
    assert flagged[["source", "table", "metric", "value", "usual (median)"]].values.tolist() == [
        ["shop", "orders", "rows", "100k", "1k"]]


def test_metrics_for_one_table_marks_the_anomalous_run(history: Path) -> None:
    at = render("metrics")
    at.selectbox(key="metrics_scope").select("shop / orders").run()

    rows = {t["name"]: t for t in figure(at, "metrics_rows")}
    assert rows["orders"]["y"][-2:] == [100_000, 1010]
    assert rows["anomaly"]["y"] == [100_000]
    assert rows["anomaly"]["customdata"] == [f"shop-run-{days_ago(1):%Y%m%dT%H%M%S}"]
    assert "anomaly" not in {t["name"] for t in figure(at, "metrics_bytes")}
    phases = {t["name"]: t["y"] for t in figure(at, "metrics_phases")}
    assert list(phases) == ["extract", "normalize", "load"] and len(phases["extract"]) == 12
    assert phases["extract"][0] == pytest.approx(6.0)


def test_metrics_daily_totals_per_source(history: Path) -> None:
    at = render("metrics")

    traces = {t["name"]: t for t in figure(at, "metrics_rows")}
    assert sum(traces["shop"]["y"]) == 100_000 + 1010 + sum(1000 + d for d in SHOP_DAYS if d != 1)
    assert "anomaly" not in traces
    assert "pick a source or a table" in captions(at)


@pytest.mark.parametrize(("key", "values", "runs"), [
    ("metrics_status", ["failed"], "1"), ("metrics_owner", ["market-fr"], "4"), ("metrics_source", ["shop"], "12"),
    ("metrics_trigger", ["cli"], None), ("metrics_destination", ["local_duckdb"], "19")])
def test_metrics_filters(history: Path, key: str, values: list[str], runs: str | None) -> None:
    at = render("metrics")
    if runs is None:  # no run has this trigger: it is not even an option
        assert "cli" not in at.multiselect(key=key).options
        return
    at.multiselect(key=key).set_value(values).run()

    assert metrics(at)["Runs"] == runs


def test_metrics_date_range(history: Path) -> None:
    at = render("metrics")
    at.date_input(key="metrics_dates").set_value((days_ago(6).date(), NOW.date())).run()

    assert metrics(at)["Runs"] == "14"  # shop 6 + 1 today, crm 2, hr 2, billing, erp, ledger


# --- run history ---------------------------------------------------------------------------

def test_history_lists_every_run_with_previews(history: Path) -> None:
    at = render("history")

    table = at.dataframe[0].value
    assert len(table) == 19 + 1
    assert table["started"].is_monotonic_decreasing
    assert table.set_index("source").loc["erp", "status"] == "abandoned"
    assert (table["kind"] == "test run").sum() == 1
    assert "20 of 20 runs" in captions(at)
    assert at.download_button(key="history_csv").label == "Download CSV"


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("history_kind", ["preview"], ["crm"]),
    ("history_status", ["failed"], ["crm", "crm"]),
    ("history_source", ["hr"], ["hr", "hr"]),
])
def test_history_filters(history: Path, key: str, value: list[str], expected: list[str]) -> None:
    at = render("history")
    at.multiselect(key=key).set_value(value).run()

    assert at.dataframe[0].value["source"].tolist() == expected


def test_history_search_finds_error_text(history: Path) -> None:
    at = render("history")
    at.text_input(key="history_search").input("CONNECTION REFUSED").run()

    assert at.dataframe[0].value["run"].tolist() == ["crm-failed-today"]


def test_history_csv_is_the_filtered_table(history: Path) -> None:
    from portal.dashboards.dashboard_widgets import history_table

    at = render("history")
    at.multiselect(key="history_source").set_value(["crm"]).run()

    shown = at.dataframe[0].value
    exported = history_table(dashboard_data.run_data().runs[lambda r: r["source"] == "crm"]).to_csv(index=False)
    assert exported.splitlines()[0] == ",".join(shown.columns)
    assert [line.split(",")[1] for line in exported.splitlines()[1:]] == shown["run"].tolist()


def test_history_drill_down_shows_everything_about_a_run(history: Path) -> None:
    at = render("history")
    at.selectbox(key="history_run").select("crm-failed-today").run()

    assert {k: metrics(at)[k] for k in ("Status", "Duration", "Records", "Extract", "Load")} == {
        "Status": "failed", "Duration": "10 s", "Records": "0", "Extract": "6 s", "Load": "3 s"}
    error = at.error[0].value.replace("\\", "")
    assert "OperationalError: connection refused by db.crm.internal:5432" in error
    assert "What to do:** the server cannot be reached: check host and port" in error
    assert "running it again may be enough" in error
    provenance = next(m.value for m in at.markdown if m.value.startswith("Triggered by"))
    assert "**schedule** as **ana**" in provenance
    assert " ago (" in provenance and ":%S." not in provenance  # relative, exact time alongside
    tables = at.dataframe[1].value
    assert tables[["table", "status", "records"]].values.tolist() == [["orders", "failed", 0]]
    code = {c.language: c.value for c in at.code}
    assert "OperationalError: connection refused" in code["log"]
    assert code["yaml"] == "name: crm\nmode: append"
    preview = f"crm-preview-{days_ago(1):%Y%m%dT%H%M%S}"
    assert "-mode: full" in code["diff"] and "+mode: append" in code["diff"]
    assert f"previous run `{preview}`" in captions(at)
    assert at.query_params["run"] == "crm-failed-today"  # the address of this view, to share


def test_history_opens_the_run_of_a_link(history: Path) -> None:
    at = AppTest.from_file(str(PAGES["history"]), default_timeout=30)
    at.query_params["run"] = "crm-failed-today"
    at.run()

    assert at.selectbox(key="history_run").value == "crm-failed-today"
    assert metrics(at)["Status"] == "failed"


def test_history_first_run_and_unchanged_config(history: Path) -> None:
    first = f"shop-run-{days_ago(12):%Y%m%dT%H%M%S}"
    at = render("history", history_run=first)
    assert "first recorded run of this source" in captions(at)

    at.selectbox(key="history_run").select(f"shop-run-{days_ago(11):%Y%m%dT%H%M%S}").run()
    assert f"Same config as the previous run `{first}`" in captions(at)


def test_history_abandoned_run_says_what_to_do(history: Path) -> None:
    at = render("history", history_run=f"erp-run-{days_ago(3):%Y%m%dT%H%M%S}")

    assert metrics(at)["Status"] == "abandoned"
    assert "Abandoned" in at.warning[-1].value and "run the source again" in at.warning[-1].value


def test_history_unknown_link(history: Path) -> None:
    at = AppTest.from_file(str(PAGES["history"]), default_timeout=30)
    at.query_params["run"] = "no-such-run"
    at.run()

    assert not at.exception
    assert any("no-such-run" in w.value.replace("\\", "") for w in at.warning)


# --- quality -------------------------------------------------------------------------------

def test_quality_lists_failing_checks_first_with_observed_and_threshold(history: Path) -> None:
    at = render("quality")

    assert metrics(at) == {"Checks": "4", "Failing now": "1", "Warning now": "1", "Passing now": "2"}
    latest = at.dataframe[0].value
    assert latest[["status", "source", "check", "observed", "threshold"]].values.tolist() == [
        ["fail", "hr", "not_null(order_id)", "3", "0"],
        ["warn", "billing", "unique(order_id)", "2", "0"],
        ["pass", "shop", "not_null(order_id)", "0", "0"],
        ["pass", "shop", "row_count", "1,000", "min 1"],
    ]


def test_quality_heatmap_puts_failing_checks_on_top(history: Path) -> None:
    at = render("quality")

    heatmap = figure(at, "quality_heatmap")[0]
    assert heatmap["y"][:2] == ["hr.orders · not_null(order_id)", "billing.orders · unique(order_id)"]
    days = [datetime.strptime(x, "%d %b %Y").date() for x in heatmap["x"]]
    hr = dict(zip(days, heatmap["z"][0], strict=True))
    assert hr[days_ago(2).date()] == 2 and hr[days_ago(4).date()] == 0  # fail, then pass two days before
    assert heatmap["z"][1][days.index(days_ago(5).date())] == 1  # billing warned


def test_quality_previews_only_when_asked(history: Path) -> None:
    at = render("quality")
    at.toggle(key="quality_previews").set_value(True).run()

    assert metrics(at)["Failing now"] == "2"
    assert at.dataframe[0].value["source"].tolist()[:2] == ["crm", "hr"]


def test_quality_trend_of_the_chosen_check(history: Path) -> None:
    at = render("quality")
    assert at.selectbox(key="quality_check").value == "hr.orders · not_null(order_id)"

    at.selectbox(key="quality_check").select("shop.orders · row_count").run()
    traces = {t["name"]: t for t in figure(at, "quality_trend")}
    assert traces["observed"]["y"] == [1000] * 12
    assert traces["threshold min"]["y"] == [1] * 12
    assert "fail" not in traces


def test_quality_without_checks_says_how_to_add_them(ingest_env: Path) -> None:
    dashboard_data.clear()
    write_record(record("shop", today(0.5)))

    at = render("quality")

    assert "No quality check has run yet" in at.info[0].value and "checks:" in at.info[0].value


def test_a_new_record_shows_without_waiting_for_the_cache(history: Path) -> None:
    at = render("history")
    assert len(at.dataframe[0].value) == 20

    write_record(record("shop", today(0.9), run_id="shop-just-now"))
    at.run()

    assert at.dataframe[0].value["run"].iloc[0] == "shop-just-now"


def test_operations_guide_alert_example_is_valid() -> None:
    from ingestion_core.config.store import parse_yaml
    from ingestion_core.observe.alerts import NotificationConfig

    guide = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    example = guide.split("```yaml\n", 1)[1].split("```", 1)[0]
    data, issues = parse_yaml(example)
    assert not issues

    config = NotificationConfig.model_validate(data)

    assert [c.type for c in config.channels] == ["email", "webhook"]
    assert config.channels[1].headers["Authorization"] == "Bearer ${secrets.ops_webhook.token}"
    for name in ("overview", "metrics", "history", "quality"):
        assert f"images/dashboard_{name}.png" in guide


def test_a_choice_filtered_away_falls_back_to_the_default(history: Path) -> None:
    at = render("metrics")
    at.selectbox(key="metrics_scope").select("shop / orders").run()
    at.multiselect(key="metrics_source").set_value(["crm"]).run()
    assert not at.exception
    assert at.selectbox(key="metrics_scope").value == "All sources: daily totals"

    at = render("quality")
    at.selectbox(key="quality_check").select("shop.orders · row_count").run()
    at.multiselect(key="quality_source").set_value(["hr"]).run()
    assert not at.exception
    assert at.selectbox(key="quality_check").value == "hr.orders · not_null(order_id)"


def test_refresh_clears_what_the_fingerprint_cannot_see(history: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashboard_data, "records_fingerprint", lambda runs_dir: ())  # as for an object store
    at = render("history")
    write_record(record("shop", today(0.9), run_id="shop-just-now"))

    at.run()
    assert "shop-just-now" not in at.dataframe[0].value["run"].tolist()  # cached for up to TTL_SECONDS

    at.button(key="history_refresh").click().run()
    assert at.dataframe[0].value["run"].iloc[0] == "shop-just-now"
