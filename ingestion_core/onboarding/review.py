"""What the onboarding form says back to the user: a failed connection test attached to the field
to fix, the schedule in words with its next runs, a plain-language summary of the source, and
the tables the database does not have (with the closest names it does have).

Example::

    summary(model)   # "2 tables from crm; customers incremental on updated_at; orders merged on id;
                     #  daily at 06:00 UTC, next run Tue 06:00"
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ingestion_core.config.validation import ConfigIssue
from ingestion_core.engine.errors import for_typed_secrets
from ingestion_core.engine.sources import ConnectionReport

# --- a failed connection test, attached to the field to fix -----------------------------------

CONNECTION_FIELDS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p, re.I), path) for p, path in (
        (r"password authentication failed|no password supplied|fe_sendauth|access denied for user|login failed|"
         r"ORA-01017|invalid username/password|the password", "source.password"),
        (r"role \S+ does not exist|user \S+ does not exist", "source.username"),
        (r"database \S+ does not exist|unknown database|cannot open database", "source.database"),
        (r"could not translate host name|name or service not known|temporary failure in name resolution|"
         r"getaddrinfo failed", "source.host"),
        (r"connection refused|could not connect|can't connect to|did not answer|timed? ?out", "source.port"),
    )
]


def connection_issues(report: ConnectionReport | None, typed_secrets: dict[str, str]) -> list[ConfigIssue]:
    """A failed test as an error at the field it is about (``source.password`` for a refused
    login, ``source.port`` for a refused connection), in the words of someone who typed the
    password rather than wrote a reference."""
    if report is None or report.ok:
        return []
    path = next((p for text in (report.reason, report.mitigation) for pattern, p in CONNECTION_FIELDS
                 if pattern.search(text or "")), "source")  # what the server said first, then the hint
    hint = for_typed_secrets(report.mitigation or "check the connection settings", typed_secrets)
    return [ConfigIssue(path, f"the connection test failed: {report.reason}. {hint[:1].upper()}{hint[1:]}")]


# --- the schedule -----------------------------------------------------------------------------

WEEKDAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")


@dataclass(frozen=True)
class Schedule:
    """What the schedule picker shows: ``kind`` hourly / daily / weekly / custom / none."""

    kind: str
    minute: int = 0
    hour: int = 6
    weekday: int = 1  # 0 = Sunday, as in cron

    def cron(self, custom: str = "") -> str | None:
        return {"none": None, "custom": custom.strip() or None, "hourly": f"{self.minute} * * * *",
                "daily": f"{self.minute} {self.hour} * * *",
                "weekly": f"{self.minute} {self.hour} * * {self.weekday}"}[self.kind]


_PRESET = re.compile(r"^(\d{1,2}) (\*|\d{1,2}) \* \* (\*|[0-6])$")


def schedule_of(cron: str | None) -> Schedule:
    """The picker's view of a cron: a preset when it is one, else custom."""
    if not cron:
        return Schedule("none")
    match = _PRESET.match(cron.strip())
    if not match:
        return Schedule("custom")
    minute, hour, weekday = match.groups()
    if int(minute) > 59 or (hour != "*" and int(hour) > 23):
        return Schedule("custom")
    if hour == "*":
        return Schedule("hourly", int(minute)) if weekday == "*" else Schedule("custom")
    if weekday == "*":
        return Schedule("daily", int(minute), int(hour))
    return Schedule("weekly", int(minute), int(hour), int(weekday))


def next_runs(cron: str, timezone: str = "UTC", count: int = 3, after: datetime | None = None) -> list[datetime]:
    """The next ``count`` run times of a cron read in ``timezone`` (aware datetimes in that zone)."""
    from croniter import croniter

    zone = ZoneInfo(timezone)
    start = (after or datetime.now(UTC)).astimezone(zone)
    runs = croniter(cron, start)
    return [runs.get_next(datetime) for _ in range(count)]


def describe_schedule(cron: str | None, timezone: str = "UTC") -> str:
    """``daily at 06:00 UTC`` / ``every hour at :15`` / ``weekly on Mon at 06:00 Europe/Berlin`` /
    ``cron 0 6 1 * * (UTC)`` / ``not scheduled``."""
    picked = schedule_of(cron)
    at = f"{picked.hour:02d}:{picked.minute:02d} {timezone}"
    return {"none": "not scheduled", "hourly": f"every hour at :{picked.minute:02d}",
            "daily": f"daily at {at}", "weekly": f"weekly on {WEEKDAYS[picked.weekday]} at {at}",
            "custom": f"cron {cron} ({timezone})"}[picked.kind]


def when(moment: datetime) -> str:
    return moment.strftime("%a %d %b %H:%M")


# --- the summary ------------------------------------------------------------------------------

def _table_phrase(table: Any, default_mode: str) -> str:
    mode = getattr(table, "mode", None) or default_mode
    name = table.name
    if mode == "incremental":
        return f"{name} incremental on {table.cursor}" if getattr(table, "cursor", None) else f"{name} incremental"
    if mode in ("merge", "scd2"):
        key = ", ".join(getattr(table, "primary_key", None) or []) or "its key"
        return f"{name} {'merged' if mode == 'merge' else 'kept as history (scd2)'} on {key}"
    return f"{name} {'fully reloaded' if mode == 'full' else 'appended'}"


def summary(model: Any, after: datetime | None = None) -> str:
    """The source in one sentence: tables and where from, how each loads, when it runs."""
    tables = list(model.tables)
    schemas = sorted({s for t in tables if (s := getattr(t, "schema_", None) or getattr(t, "schema", None))
                      and isinstance(s, str)})
    where = f" from {', '.join(schemas)}" if schemas else ""
    count = f"{len(tables)} table{'s' if len(tables) != 1 else ''}{where}"
    phrases = [_table_phrase(t, model.defaults.mode) for t in tables]
    timezone = getattr(model, "timezone", "UTC") or "UTC"
    schedule = describe_schedule(model.schedule, timezone)
    if model.schedule:
        schedule += f", next run {next_runs(model.schedule, timezone, 1, after)[0].strftime('%a %H:%M')}"
    return "; ".join([count, *phrases, schedule])


def cursor_warning(info: Any, cursor: str | None) -> str | None:
    """Why a cursor column that is not orderable (text, boolean...) is a risk, or None."""
    if info is None or not cursor or cursor in info.cursor_candidates:
        return None
    types = {c.name: c.type for c in info.columns}
    if cursor not in types:
        return f"cursor '{cursor}' is not a column of {info.name}: choose one of {', '.join(types)}"
    return (f"cursor '{cursor}' is {types[cursor]}, not a timestamp, date or number: its values are compared as "
            "text ('10' comes before '9'), so changed rows can be missed. Prefer "
            + (", ".join(info.cursor_candidates[:3]) or "a timestamp or number column") + ".")


# --- tables the database does not have --------------------------------------------------------

def missing_tables(entries: list[Any], found: dict[str | None, list[str]]) -> list[ConfigIssue]:
    """An error for each ``tables:`` entry whose schema was listed and lacks the table, naming
    the closest names there. ``found``: schema -> table names discovery listed."""
    issues = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        schema = entry.get("schema")
        name = entry.get("source_table") or entry.get("name")
        if schema not in found or not isinstance(name, str) or name in found[schema]:
            continue
        close = difflib.get_close_matches(name, found[schema], n=3, cutoff=0.5)
        where = f"schema {schema}" if schema else "the database"
        hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else \
            f"it has {', '.join(found[schema][:8]) or 'no tables'}"
        path = f"tables[{index}].{'source_table' if entry.get('source_table') else 'name'}"
        issues.append(ConfigIssue(path, f"table '{name}' is not in {where}: {hint}"))
    return issues
