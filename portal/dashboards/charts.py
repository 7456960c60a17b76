"""Plotly figures for the dashboards: pure functions from the DataFrames of
``ingestion_core.observe.run_metrics`` to figures. No Streamlit here, so the data each chart shows is
unit-tested by reading the figure's traces.

Example::

    figure = rows_per_day_chart(rows_per_day(data, days=30))
    [trace.name for trace in figure.data]   # one stacked bar trace per source
"""

from __future__ import annotations

import math
from datetime import date

import pandas as pd
import plotly.graph_objects as go

from ingestion_core.observe.run_metrics import PHASES

STATUS_COLORS = {"success": "#2da44e", "failed": "#cf222e", "partial": "#d4760a", "quality_failed": "#8250df",
                 "cancelled": "#8c959f", "abandoned": "#57606a", "running": "#1f6feb"}
OUTCOME_COLORS = {"pass": "#2da44e", "warn": "#d4a72c", "fail": "#cf222e"}
PHASE_COLORS = {"extract": "#1f6feb", "normalize": "#8250df", "load": "#2da44e"}
ANOMALY_COLOR = "#cf222e"
MAX_STACKED = 10  # more sources than this: the smallest are summed into one "other" bar
DAY_MS = 86_400_000  # plotly date axes count in milliseconds
MIN_DAYS_SHOWN = 7  # a day axis shows at least a week, so one day of data is one bar, not a wall
SINGLE_TIME_PAD = pd.Timedelta(hours=1)  # around a single run on a time axis
METRICS = {  # column -> (axis title, hover format)
    "duration_s": ("seconds", ",.1f"), "records": ("records", ",.0f"), "throughput": ("records per second", ",.0f"),
    "bytes": ("bytes", ",.0f"),
}
AXIS_FORMATS = {"bytes": {"tickformat": ".2~s", "ticksuffix": "B"}}  # 5 MB, as human_bytes and the tables say


def _values(column: pd.Series):
    """A column as a plain numpy array (times as naive UTC): plotly inspects a pandas column's
    dtype row by row for object and tz-aware data, which costs more than the chart."""
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return column.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
    first = column.dropna().iloc[0] if column.dtype == object and column.notna().any() else None
    if isinstance(first, date):  # datetime.date (and datetime) objects
        return pd.to_datetime(column).to_numpy()
    return column.to_numpy()


def _plain_times(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """``frame`` with its time ``columns`` as naive UTC, converted once for all its traces."""
    return frame.assign(**{c: _values(frame[c]) for c in columns if c in frame})


def _layout(figure: go.Figure, height: int = 320, **extra) -> go.Figure:
    figure.update_layout(height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10}, hovermode="closest",
                         legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0}, **extra)
    return figure


def _time_axis(figure: go.Figure, values, *, days: bool) -> go.Figure:
    """An x axis that suits the data. A day axis ticks in whole days (``05 Dec``) over at least
    MIN_DAYS_SHOWN days; a time axis with a single moment gets an hour either side. Left alone,
    plotly zooms onto one value until its ticks read ``23:59:59.9996``."""
    times = pd.to_datetime(pd.Series(values), utc=True).dropna().dt.tz_localize(None)
    if times.empty:
        return figure
    low, high = times.min(), times.max()
    if days:
        span = max((high.normalize() - low.normalize()).days + 1, MIN_DAYS_SHOWN)
        end = high.normalize() + pd.Timedelta(hours=12)
        figure.update_xaxes(type="date", range=[end - pd.Timedelta(days=span), end], tickformat="%d %b",
                            dtick=DAY_MS * math.ceil(span / 10), tick0="2000-01-01")
    elif high - low < pd.Timedelta(minutes=1):
        figure.update_xaxes(type="date", range=[low - SINGLE_TIME_PAD, high + SINGLE_TIME_PAD])
    return figure


def _counts_axis(figure: go.Figure) -> go.Figure:
    """Counts, seconds and bytes start at zero: one value (or equal values) is a bar or a point
    at its height, not an axis from 249.999k to 250.001k."""
    return figure.update_yaxes(rangemode="tozero")


def rows_per_day_chart(frame: pd.DataFrame) -> go.Figure:
    """Records loaded per day (columns day, source, records), one stacked bar trace per source;
    past MAX_STACKED sources the smallest share one "other" trace."""
    totals = frame.groupby("source")["records"].sum().sort_values(ascending=False)
    shown = list(totals.index[:MAX_STACKED]) if len(totals) > MAX_STACKED + 1 else list(totals.index)
    frame = frame.assign(series=frame["source"].where(frame["source"].isin(shown),
                                                      f"other ({len(totals) - len(shown)} sources)"))
    daily = frame.groupby(["series", "day"], as_index=False)["records"].sum()
    figure = go.Figure()
    for series in [*shown, *sorted(set(daily["series"]) - set(shown))]:
        part = daily[daily["series"] == series]
        figure.add_bar(x=_values(part["day"]), y=_values(part["records"]), name=series, width=DAY_MS * 0.8,
                       hovertemplate="%{x|%d %b}: %{y:,.0f} records")
    _time_axis(_counts_axis(figure), frame["day"], days=True)
    return _layout(figure, barmode="stack", yaxis_title="records", xaxis_title=None)


def success_rate_chart(rates: pd.DataFrame) -> go.Figure:
    """Share of successful real runs per source over 7 and 30 days (from ``success_rates``),
    worst 7-day rate at the top."""
    rates = rates.sort_values(["success_7d", "source"], ascending=[False, False], na_position="first")
    figure = go.Figure()
    for days, color in ((30, "#8c959f"), (7, "#1f6feb")):
        figure.add_bar(y=_values(rates["source"]), x=_values(rates[f"success_{days}d"] * 100),
                       name=f"last {days} days", orientation="h", marker_color=color,
                       customdata=_values(rates[f"runs_{days}d"]),
                       hovertemplate="%{y}: %{x:.0f}% of %{customdata} runs")
    return _layout(figure, height=max(220, 60 + 22 * len(rates)), barmode="group",
                   xaxis={"title": "successful runs (%)", "range": [0, 100]})


def largest(frame: pd.DataFrame, series: str, by: str = "records",
            limit: int = MAX_STACKED) -> tuple[pd.DataFrame, int]:
    """The rows of the ``limit`` values of ``series`` with the largest total ``by`` (more lines
    than that make a chart unreadable), and how many values were left out."""
    totals = frame.groupby(series)[by].sum()
    if len(totals) <= limit:
        return frame, 0
    return frame[frame[series].isin(totals.nlargest(limit).index)], len(totals) - limit


def metric_chart(frame: pd.DataFrame, metric: str, series: str, anomalies: pd.DataFrame | None = None,
                 x: str = "started_at") -> go.Figure:
    """One line per ``series`` value (a source, or a table) of ``metric`` over ``x``; runs in
    ``anomalies`` (run_id, metric) marked with a red cross."""
    title, number = METRICS[metric]
    frame = _plain_times(frame, x)
    figure = go.Figure()
    for name, part in frame.sort_values(x).groupby(series, sort=True):
        figure.add_scatter(x=_values(part[x]), y=_values(part[metric]), name=str(name), mode="lines+markers",
                           marker_size=5, hovertemplate=f"{name}<br>%{{x}}<br>%{{y:{number}}} {title}<extra></extra>")
    if anomalies is not None and not anomalies.empty and "run_id" in frame:
        flagged = frame[frame["run_id"].isin(anomalies.loc[_metric_rows(anomalies, metric), "run_id"])]
        if not flagged.empty:
            figure.add_scatter(x=_values(flagged[x]), y=_values(flagged[metric]), name="anomaly", mode="markers",
                               marker={"symbol": "x", "size": 13, "color": ANOMALY_COLOR},
                               customdata=_values(flagged["run_id"]),
                               hovertemplate=f"anomaly: %{{y:{number}}} {title}<br>run %{{customdata}}<extra></extra>")
    _time_axis(_counts_axis(figure), frame[x], days=x == "day")
    figure.update_yaxes(**AXIS_FORMATS.get(metric, {}))
    return _layout(figure, yaxis_title=title, showlegend=len(figure.data) <= 12)


def _metric_rows(anomalies: pd.DataFrame, metric: str) -> pd.Series:
    # anomalies are judged on rows and on duration only
    wanted = {"records": ["rows"], "duration_s": ["duration_s"]}.get(metric, [])
    return anomalies["metric"].isin(wanted)


def phase_chart(frame: pd.DataFrame, x: str = "started_at") -> go.Figure:
    """Seconds spent extracting, normalizing and loading (columns ``<phase>_s``) over ``x``,
    stacked."""
    sums = frame.groupby(x, as_index=False)[[f"{p}_s" for p in PHASES]].sum()
    days = x == "day"
    # a lone run's bar would fill the whole plot: give it the width of a few minutes
    width = DAY_MS * 0.8 if days else (20 * 60_000 if sums[x].nunique() == 1 else None)
    figure = go.Figure()
    for phase in PHASES:
        figure.add_bar(x=_values(sums[x]), y=_values(sums[f"{phase}_s"]), name=phase, width=width,
                       marker_color=PHASE_COLORS[phase],
                       hovertemplate=f"{phase}: %{{y:,.1f}} s<extra></extra>")
    _time_axis(_counts_axis(figure), sums[x], days=days)
    return _layout(figure, barmode="stack", yaxis_title="seconds", legend_traceorder="normal")


def quality_heatmap(matrix: pd.DataFrame) -> go.Figure:
    """Checks (rows) by day (columns) from ``check_matrix``: 0 pass, 1 warn, 2 fail; gaps
    where a check did not run. Failing checks are at the top."""
    levels = ["pass", "warn", "fail"]
    scale = []
    for level, name in enumerate(levels):  # discrete colours: each level owns a third of the scale
        scale += [[level / 3, OUTCOME_COLORS[name]], [(level + 1) / 3, OUTCOME_COLORS[name]]]
    text = matrix.map(lambda v: levels[int(v)] if pd.notna(v) else "not run")
    figure = go.Figure(go.Heatmap(
        # days as labels: one column per day whatever the count (a lone date column gets a zero-width axis)
        z=matrix.to_numpy(dtype=float), x=[f"{pd.Timestamp(d):%d %b %Y}" for d in matrix.columns],
        y=list(matrix.index), zmin=-0.5,
        zmax=2.5,
        colorscale=scale, showscale=False, xgap=2, ygap=2, text=text.to_numpy(),
        hovertemplate="%{y}<br>%{x}: %{text}<extra></extra>"))
    figure.update_yaxes(autorange="reversed", automargin=True)
    figure.update_xaxes(type="category")
    return _layout(figure, height=max(200, 60 + 24 * len(matrix)))


def check_trend_chart(trend: pd.DataFrame) -> go.Figure:
    """One check's observed value per run (from ``check_trend``), each point coloured by its
    outcome, with the threshold's bounds as dashed lines."""
    figure = go.Figure()
    figure.add_scatter(x=_values(trend["started_at"]), y=_values(trend["observed"]), mode="lines", name="observed",
                       line={"color": "#8c959f"}, hoverinfo="skip")
    for outcome, color in OUTCOME_COLORS.items():
        part = trend[trend["status"] == outcome]
        if not part.empty:
            figure.add_scatter(x=_values(part["started_at"]), y=_values(part["observed"]), mode="markers",
                               name=outcome, marker={"color": color, "size": 9}, customdata=_values(part["run_id"]),
                               hovertemplate=f"{outcome}: %{{y:,}}<br>run %{{customdata}}<extra></extra>")
    for bound, label in (("minimum", "min"), ("maximum", "max")):
        if trend[bound].notna().any():
            figure.add_scatter(x=_values(trend["started_at"]), y=_values(trend[bound]), mode="lines",
                               name=f"threshold {label}",
                               line={"dash": "dash", "color": "#57606a"})
    _time_axis(figure, trend["started_at"], days=False)
    return _layout(figure, yaxis_title="observed")
