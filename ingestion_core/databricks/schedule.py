"""A source's 5-field cron (UTC) as the Quartz expression a Databricks job schedule takes.

Quartz has a seconds field, numbers days of the week 1-7 from Sunday (cron: 0-7, 0 and 7 are
Sunday) and wants ``?`` in one of the two day fields. Cron runs when *either* restricted day
field matches; Quartz cannot say that, so such a schedule is refused with the fix.

Example::

    >>> quartz_cron("0 6 * * *")
    '0 0 6 * * ?'
    >>> quartz_cron("30 7 * * 1-5")
    '0 30 7 ? * 2-6'
"""

from __future__ import annotations

import re

_MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
           "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}


def _weekday(value: str) -> str:
    if value.isdigit():
        return str(int(value) % 7 + 1)
    return value.upper()


def _day_of_week_part(part: str) -> str:
    """One comma-separated part of the day-of-week field: 5, 1-5, */2, 1-5/2, MON-FRI."""
    base, _, step = part.partition("/")
    if base == "*":
        converted = "1" if step else "*"
    elif "-" in base:
        low, high = base.split("-", 1)
        if high == "7" and low.isdigit() and low != "0":  # ...-Sunday: Quartz numbers Sunday first
            if step:
                raise ValueError(f"day-of-week '{part}' ends on Sunday (7) and has a step; write it without 7")
            converted = f"{_weekday(low)}-7,1"
        else:
            converted = f"{_weekday(low)}-{_weekday(high) if high != '7' else '7'}"
    else:
        converted = _weekday(base)
    return f"{converted}/{step}" if step else converted


def quartz_cron(cron: str) -> str:
    """The Quartz expression of a 5-field cron; ValueError (with the fix) when Quartz cannot say it."""
    fields = _MACROS.get(cron.strip().lower(), cron).split()
    if len(fields) != 5:
        raise ValueError(f"'{cron}' is not a 5-field cron expression (minute hour day-of-month month day-of-week)")
    minute, hour, day, month, weekday = fields
    if re.search(r"[LW#?]", day + weekday):
        raise ValueError(f"'{cron}': write the schedule with plain numbers, ranges, lists and steps")
    if day != "*" and weekday != "*":
        raise ValueError(
            f"'{cron}' restricts both the day of month and the day of week (cron runs on either); a Databricks "
            "schedule cannot express that: keep one of them '*', or make two sources")
    if weekday == "*":
        day_field, weekday_field = day, "?"
    else:
        day_field, weekday_field = "?", ",".join(_day_of_week_part(p) for p in weekday.split(","))
    return " ".join(["0", minute, hour, day_field, month.upper(), weekday_field])
