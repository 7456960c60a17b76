"""The dashboard figures (portal/dashboards/charts.py): what each chart plots, read back from its traces."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from portal.dashboards import charts

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def days(n: int) -> list[datetime]:
    return [T0 + timedelta(days=i) for i in range(n)]


def test_rows_per_day_stacks_one_trace_per_source() -> None:
    frame = pd.DataFrame({"day": days(2) * 2, "source": ["a", "a", "b", "b"], "records": [1, 2, 30, 40]})

    figure = charts.rows_per_day_chart(frame)

    assert [(t.name, list(t.y)) for t in figure.data] == [("b", [30, 40]), ("a", [1, 2])]
    assert figure.layout.barmode == "stack"


def test_rows_per_day_sums_the_smallest_sources_into_other() -> None:
    sources = [f"s{i:02d}" for i in range(charts.MAX_STACKED + 3)]
    frame = pd.DataFrame({"day": [T0] * len(sources), "source": sources, "records": range(100, 100 + len(sources))})

    figure = charts.rows_per_day_chart(frame)

    names = [t.name for t in figure.data]
    assert len(names) == charts.MAX_STACKED + 1 and names[-1] == "other (3 sources)"
    assert list(figure.data[-1].y) == [100 + 101 + 102]  # the three smallest
    assert sum(sum(t.y) for t in figure.data) == frame["records"].sum()


def test_success_rates_in_percent_worst_on_top() -> None:
    rates = pd.DataFrame({"source": ["good", "bad", "idle"], "runs_7d": [4, 2, 0], "success_7d": [1.0, 0.5, None],
                          "runs_30d": [10, 8, 3], "success_30d": [1.0, 0.75, 1 / 3]})

    figure = charts.success_rate_chart(rates)

    seven = next(t for t in figure.data if t.name == "last 7 days")
    assert list(seven.y)[-1] == "bad"  # plotly draws the last category at the top
    assert dict(zip(seven.y, seven.x, strict=True))["bad"] == 50.0
    thirty = next(t for t in figure.data if t.name == "last 30 days")
    assert dict(zip(thirty.y, thirty.customdata, strict=True)) == {"idle": 3, "good": 10, "bad": 8}


@pytest.fixture
def runs() -> pd.DataFrame:
    return pd.DataFrame({"started_at": days(4) * 2, "table": ["a"] * 4 + ["b"] * 4,
                         "run_id": [f"r{i}" for i in range(8)], "records": [10, 10, 500, 10, 1, 1, 1, 1],
                         "duration_s": [2.0] * 8, "throughput": [5.0] * 8, "bytes": [100] * 8,
                         "extract_s": [1.0] * 8, "normalize_s": [0.5] * 8, "load_s": [0.5] * 8})


def test_metric_chart_one_line_per_table_and_anomalies_crossed(runs: pd.DataFrame) -> None:
    flagged = pd.DataFrame({"run_id": ["r2"], "metric": ["rows"]})

    rows = charts.metric_chart(runs, "records", "table", flagged)

    assert [t.name for t in rows.data] == ["a", "b", "anomaly"]
    assert list(rows.data[0].y) == [10, 10, 500, 10]
    assert list(rows.data[2].y) == [500] and list(rows.data[2].customdata) == ["r2"]
    assert rows.data[2].marker.symbol == "x"
    assert [t.name for t in charts.metric_chart(runs, "duration_s", "table", flagged).data] == ["a", "b"]
    assert [t.name for t in charts.metric_chart(runs, "throughput", "table", flagged).data] == ["a", "b"]
    assert [t.name for t in charts.metric_chart(runs, "bytes", "table", None).data] == ["a", "b"]


def test_phase_chart_stacks_phases_summed_per_run_time(runs: pd.DataFrame) -> None:
    figure = charts.phase_chart(runs)

    assert [t.name for t in figure.data] == ["extract", "normalize", "load"]
    assert list(figure.data[0].y) == [2.0] * 4  # two tables per moment
    assert figure.layout.barmode == "stack"


def test_quality_heatmap_levels_and_gaps() -> None:
    matrix = pd.DataFrame([[2.0, float("nan")], [0.0, 1.0]], index=["x · not_null(id)", "y · unique(id)"],
                          columns=days(2))

    heatmap = charts.quality_heatmap(matrix).data[0]

    assert list(heatmap.y) == ["x · not_null(id)", "y · unique(id)"]
    assert heatmap.z[0][0] == 2 and math.isnan(heatmap.z[0][1])
    assert heatmap.text.tolist() == [["fail", "not run"], ["pass", "warn"]]
    assert (heatmap.zmin, heatmap.zmax) == (-0.5, 2.5)
    colours = dict((round(stop, 3), colour) for stop, colour in heatmap.colorscale)
    assert colours[0.0] == charts.OUTCOME_COLORS["pass"] and colours[1.0] == charts.OUTCOME_COLORS["fail"]


def test_check_trend_colours_each_outcome_and_draws_the_bounds() -> None:
    trend = pd.DataFrame({"started_at": days(3), "run_id": ["a", "b", "c"], "kind": ["run"] * 3,
                          "status": ["pass", "fail", "pass"], "observed": [0.0, 4.0, 0.0],
                          "minimum": [None] * 3, "maximum": [0.0] * 3})

    figure = charts.check_trend_chart(trend)

    traces = {t.name: t for t in figure.data}
    assert list(traces) == ["observed", "pass", "fail", "threshold max"]
    assert list(traces["fail"].y) == [4.0] and list(traces["fail"].customdata) == ["b"]
    assert list(traces["threshold max"].y) == [0.0] * 3


def test_check_trend_bounds_that_appear_later() -> None:
    trend = pd.DataFrame({"started_at": days(3), "run_id": ["a", "b", "c"], "kind": ["run"] * 3,
                          "status": ["pass"] * 3, "observed": [5.0, 6.0, 7.0],
                          "minimum": [float("nan"), 1.0, 1.0], "maximum": [float("nan")] * 3})

    traces = {t.name: t for t in charts.check_trend_chart(trend).data}

    assert "threshold max" not in traces
    assert math.isnan(traces["threshold min"].y[0]) and list(traces["threshold min"].y[1:]) == [1.0, 1.0]


def test_largest_keeps_the_biggest_series() -> None:
    frame = pd.DataFrame({"source": [f"s{i}" for i in range(12)] * 2, "records": list(range(12)) * 2})

    kept, hidden = charts.largest(frame, "source", limit=10)

    assert hidden == 2 and sorted(kept["source"].unique()) == sorted(f"s{i}" for i in range(2, 12))
    assert charts.largest(frame, "source", limit=12) == (frame, 0)


# --- one day, one run: axes that read right -----------------------------------------------------

def _ms(value) -> float:
    return pd.Timestamp(value).value / 1e6


def test_one_day_of_data_ticks_in_days_over_a_week_with_a_bar_not_a_wall() -> None:
    frame = pd.DataFrame({"day": [T0], "source": ["shop"], "records": [250_000]})

    figure = charts.rows_per_day_chart(frame)

    low, high = (_ms(v) for v in figure.layout.xaxis.range)
    assert high - low >= charts.MIN_DAYS_SHOWN * charts.DAY_MS  # not a sub-millisecond zoom on one moment
    assert figure.layout.xaxis.dtick % charts.DAY_MS == 0 and figure.layout.xaxis.tickformat == "%d %b"
    assert figure.data[0].width < charts.DAY_MS  # one bar a day wide, not the whole plot
    assert figure.layout.yaxis.rangemode == "tozero"  # 0..250k, not 249.999k..250.001k


@pytest.mark.parametrize("metric", list(charts.METRICS))
def test_a_single_run_gets_an_hour_either_side_and_a_y_axis_from_zero(metric: str) -> None:
    frame = pd.DataFrame({"started_at": [T0], "table": ["orders"], "run_id": ["r1"], "duration_s": [19.6],
                          "records": [250_000], "throughput": [12_770.0], "bytes": [5_015_700]})

    figure = charts.metric_chart(frame, metric, "table")

    low, high = (_ms(v) for v in figure.layout.xaxis.range)
    assert high - low == 2 * charts.SINGLE_TIME_PAD.total_seconds() * 1000
    assert figure.layout.yaxis.rangemode == "tozero"


def test_daily_totals_of_one_day_tick_in_days() -> None:
    frame = pd.DataFrame({"day": [T0.date()], "source": ["shop"], "duration_s": [3.0], "records": [5],
                          "throughput": [1.0], "bytes": [9]})
    figure = charts.metric_chart(frame, "records", "source", x="day")
    assert figure.layout.xaxis.dtick % charts.DAY_MS == 0
    low, high = (_ms(v) for v in figure.layout.xaxis.range)
    assert high - low >= charts.MIN_DAYS_SHOWN * charts.DAY_MS


def test_a_single_run_in_the_phase_chart_is_a_narrow_bar() -> None:
    frame = pd.DataFrame({"started_at": [T0], "extract_s": [1.0], "normalize_s": [0.5], "load_s": [2.0]})
    figure = charts.phase_chart(frame)
    assert all(t.width and t.width <= 3_600_000 for t in figure.data)
    assert figure.layout.xaxis.range is not None


def test_a_heatmap_of_one_day_has_one_labelled_column() -> None:
    matrix = pd.DataFrame([[0.0]], index=["x · not_null(id)"], columns=[T0])
    figure = charts.quality_heatmap(matrix)
    assert list(figure.data[0].x) == ["01 Nov 2026"] and figure.layout.xaxis.type == "category"
