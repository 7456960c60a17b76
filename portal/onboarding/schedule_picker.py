"""The schedule picker of the source form: hourly / daily / weekly / custom cron, a time zone,
and the next three runs. It writes ``schedule`` and ``timezone`` into the draft on every change."""

from __future__ import annotations

from datetime import time
from functools import cache
from typing import Any

import streamlit as st

from ingestion_core.onboarding import remove_path, review
from portal.onboarding.widgets import FormContext, seed, show_issues
from portal.shared.markdown import md_escape

KINDS = {"none": "Not scheduled", "hourly": "Hourly", "daily": "Daily", "weekly": "Weekly", "custom": "Custom cron"}
KEYS = ("wiz-sched-kind", "wiz-sched-time", "wiz-sched-minute", "wiz-sched-day", "wiz-sched-cron", "wiz-sched-tz")
STATE_KEY = "editor"
DEFAULT = review.Schedule("daily")


@cache
def time_zones() -> list[str]:
    from zoneinfo import available_timezones

    return ["UTC", *sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))]


def render(ctx: FormContext) -> None:
    """The picker; what it chose is in ``ctx.data`` (``schedule``, ``timezone``)."""
    data = ctx.data
    cron = data.get("schedule") if isinstance(data.get("schedule"), str) else None
    zone = data.get("timezone") if isinstance(data.get("timezone"), str) else "UTC"
    picked = review.schedule_of(cron)
    shown = picked if picked.kind not in ("none", "custom") else DEFAULT
    # each widget is seeded in the run that draws it: a key seeded while its widget is not drawn
    # stays a plain session value, which comes back over the widget's value when it is hidden again
    seed("wiz-sched-kind", picked.kind)
    st.radio("When should it run?", list(KINDS), key="wiz-sched-kind", format_func=KINDS.get, horizontal=True,
             on_change=_changed, help="Real runs on a schedule. Test runs are never scheduled.")
    kind = st.session_state.get("wiz-sched-kind")
    left, right = st.columns(2)
    if kind in ("daily", "weekly"):
        seed("wiz-sched-time", time(shown.hour, shown.minute))
        left.time_input("At", key="wiz-sched-time", step=900, on_change=_changed)
    if kind == "weekly":
        seed("wiz-sched-day", shown.weekday)
        right.selectbox("On", range(7), key="wiz-sched-day", format_func=lambda d: review.WEEKDAYS[d],
                        on_change=_changed)
    if kind == "hourly":
        seed("wiz-sched-minute", shown.minute)
        left.number_input("Minute past the hour", 0, 59, key="wiz-sched-minute", on_change=_changed)
    if kind == "custom":
        seed("wiz-sched-cron", cron or "")
        left.text_input("Cron (minute hour day-of-month month day-of-week)", key="wiz-sched-cron",
                        placeholder="0 6 * * 1-5", on_change=_changed, live="300ms",
                        help="Five fields, e.g. '30 7 * * 1-5' for 07:30 on working days.")
    if kind != "none":
        seed("wiz-sched-tz", zone if zone in time_zones() else "UTC")
        (right if kind in ("hourly", "custom") else st).selectbox(
            "Time zone", time_zones(), key="wiz-sched-tz", on_change=_changed,
            help="The schedule is read in this zone (daylight saving included).")
    show_issues(ctx, "schedule")
    show_issues(ctx, "timezone")
    _next_runs(cron, zone, ctx)


def _next_runs(cron: str | None, zone: str, ctx: FormContext) -> None:
    if not cron or any(i.path in ("schedule", "timezone") and i.severity == "error" for i in ctx.issues):
        return
    runs = review.next_runs(cron, zone, 3)
    st.caption(f":material/event: {md_escape(review.describe_schedule(cron, zone))}. Next runs: "
               + ", ".join(md_escape(review.when(r)) for r in runs) + f" ({md_escape(zone)}).")


def _changed() -> None:
    state: Any = st.session_state[STATE_KEY]
    get = st.session_state.get
    at: time = get("wiz-sched-time") or time(6)
    kind = get("wiz-sched-kind") or "none"
    minute = int(get("wiz-sched-minute") or 0) if kind == "hourly" else at.minute
    picked = review.Schedule(kind, minute, at.hour, int(get("wiz-sched-day") or 0))
    cron = picked.cron(get("wiz-sched-cron") or "")
    data = state.draft.data
    if cron is None:
        remove_path(data, "schedule")
    else:
        data["schedule"] = cron
    zone = get("wiz-sched-tz") or "UTC"
    if cron is None or zone == "UTC":
        remove_path(data, "timezone")
    else:
        data["timezone"] = zone


def forget() -> None:
    """Draw the picker again from the draft (after the draft changed by other means)."""
    for key in KEYS:
        st.session_state.pop(key, None)
