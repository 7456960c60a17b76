"""The base of every config model and the small value types they share.

Every model forbids unknown keys and describes every field: descriptions become the form's
help text and the JSON Schema's descriptions. Validation messages say what is wrong and how
to fix it; they never echo the value of a secret-bearing field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, time, timedelta
from typing import Annotated, Any, ClassVar
from urllib.parse import parse_qsl

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError

from ingestion_core.config.secrets import REFERENCE_PATTERN, find_references, is_reference


class ConfigModel(BaseModel):
    """Base of all config models: unknown keys are errors; inputs never appear in str(error)."""

    model_config = ConfigDict(
        extra="forbid",
        hide_input_in_errors=True,
        validate_assignment=True,
        populate_by_name=True,
        allow_inf_nan=False,  # .nan / .inf in YAML are typos, and NaN != NaN breaks round trips
        # validators are built on first use: a process builds only the models it validates
        # (every `ingest` command paid ~0.1-0.2 s at import for all of them; tests/unit/test_import_cost.py).
        # First uses may come from table threads at once: safe since pydantic 2.14 locks the build.
        defer_build=True,
    )

    unknown_key_label: ClassVar[str] = "key"
    """What an unknown key is called in messages ("unknown check kind 'x'")."""
    yaml_example: ClassVar[str | None] = None
    """A short YAML example shown when a value is not a mapping."""


def _date_as_text(value: Any) -> Any:
    # YAML reads 2024-01-01 as a date; keep it as ISO text so a saved file reads back equal.
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return [_date_as_text(v) for v in value]
    return value


DateAsText = BeforeValidator(_date_as_text)
"""Annotate a field taking text or numbers so that unquoted YAML dates are read as ISO text."""


def _fail(kind: str, message: str, **context: Any) -> PydanticCustomError:
    return PydanticCustomError(kind, message, context or None)


# --- secrets -------------------------------------------------------------------------------

def _require_reference(value: str, info: ValidationInfo) -> str:
    if is_reference(value):
        return value
    field = info.field_name or "value"
    raise _fail(
        "secret_literal",
        "'{field}' holds a literal secret; YAML may only hold a reference. Put the value in the "
        "secrets file (section [<source name>], key {field}) or an environment variable, and "
        "write {ref} or {env} here",
        field=field,
        ref="${secrets.<source name>." + field + "}",
        env="${env:NAME}",
    )


SECRET_SCHEMA = {"format": "secret-reference", "pattern": REFERENCE_PATTERN, "x-secret": True}

SecretRef = Annotated[
    str,
    AfterValidator(_require_reference),
    Field(json_schema_extra=SECRET_SCHEMA),
]
"""A secret-bearing field: only ``${secrets.a.b}`` or ``${env:NAME}`` is accepted."""


def _check_url(value: str, info: ValidationInfo) -> str:
    """A SQLAlchemy URL: a whole reference, or a URL whose password part is a reference."""
    if is_reference(value):
        return value
    problem = url_credential_problem(value)
    if problem:
        raise _fail(
            "secret_literal",
            "the connection URL in '{field}' holds {problem}. Write the password as a reference "
            "inside the URL ({inline}) or reference the whole URL ({whole})",
            field=info.field_name or "url",
            problem=problem,
            inline="dialect://user:${secrets.<source>.password}@host/db",
            whole="${secrets.<source>.url}",
        )
    return value


# user:password@ as SQLAlchemy and urllib read it: the password runs up to the last '@'.
_URL_USERINFO = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://(?P<user>[^:/@]*)(?::(?P<password>[^@]*))?@")
SENSITIVE_PARAM = re.compile(
    r"(pass|pwd|secret|api[_-]?key|apikey|access[_-]?key|account[_-]?key|private[_-]?key|"
    r"access[_-]?token|auth[_-]?token|id[_-]?token|refresh[_-]?token|^token$|^key$|^sig$|signature|"
    r"credential)",
    re.I,
)
"""Names of query parameters, driver options and body fields that carry credentials."""


def url_credential_problem(url: str) -> str | None:
    """What literal credential a URL holds ('a literal password', ...), or None."""
    match = _URL_USERINFO.match(url)
    password = match["password"] if match else None
    if password and not is_reference(password):
        return "a literal password"
    query = url.split("?", 1)[1] if "?" in url else ""
    for name, value in parse_qsl(query.split("#", 1)[0], keep_blank_values=True):
        if SENSITIVE_PARAM.search(name) and value and not find_references(value):
            return f"a literal credential in the query parameter '{name}'"
    return None


def iso_dates(value: Any) -> Any:
    """Dates and times anywhere in a mapping or list as ISO text: what a query string or a JSON
    body carries. YAML reads an unquoted 2024-01-01 as a date; kept as one, it would be saved
    back quoted (a string) and the file would not read the same twice, and a JSON body could not
    be sent at all."""
    if isinstance(value, date | time):  # a datetime is a date
        return value.isoformat()
    if isinstance(value, dict):
        return {k: iso_dates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [iso_dates(v) for v in value]
    return value


def check_credential_keys(mapping: Any, label: str, pattern: re.Pattern[str] = SENSITIVE_PARAM) -> Any:
    """Values under credential-like keys (password, api_key, ...) must be references.

    Walks nested mappings; the error is located at the offending key and never shows the value.
    """
    for path, value in _keyed_values(mapping):
        key = path.rsplit(".", 1)[-1]
        if pattern.search(key) and value not in (None, "") and not find_references(value):
            raise _fail(
                "secret_literal",
                "'{key}' in {label} looks like a credential and holds a literal value; put the "
                "value in the secrets file and write a reference such as {example} here",
                key=key, label=label, at=path, example="${secrets.<source>." + _snake(key) + "}",
            )
    return mapping


def _keyed_values(mapping: Any, prefix: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for key, value in (mapping or {}).items() if isinstance(mapping, dict) else ():
        path = f"{prefix}.{key}" if prefix else str(key)
        found.extend(_keyed_values(value, path) if isinstance(value, dict) else [(path, value)])
    return found


def _snake(key: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", key.lower()).strip("_") or "value"


ConnectionUrl = Annotated[
    str,
    AfterValidator(_check_url),
    Field(json_schema_extra={"format": "sqlalchemy-url", "x-secret": True}),
]

SENSITIVE_HEADER = re.compile(r"(auth|token|key|secret|password|cookie|signature)", re.I)


def check_headers(headers: dict[str, str] | None) -> dict[str, str] | None:
    """Header values that carry credentials must be references (or contain one)."""
    for name, value in (headers or {}).items():
        if SENSITIVE_HEADER.search(name) and not find_references(value):
            raise _fail(
                "secret_literal",
                "header '{name}' looks like a credential and holds a literal value; write a "
                "reference such as '{example}' and put the value in the secrets file",
                name=name,
                at=name,
                example="Bearer ${secrets.<source>.token}" if name.lower() == "authorization"
                else "${secrets.<source>." + _snake(name) + "}",
            )
    return headers


# --- names and identifiers -----------------------------------------------------------------

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"


def matching(pattern: str, kind: str, message: str) -> Callable[[str], str]:
    """A validator that accepts text matching ``pattern`` whole, else fails with ``message``
    (which quotes the bad value as ``{value}``)."""
    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise _fail(kind, message, value=value[:80])
        return value
    return check


_check_name = matching(
    NAME_PATTERN, "invalid_name",
    "'{value}' is not a valid name: use lower-case letters, digits and '_', starting "
    "with a letter, at most 63 characters (e.g. 'sales_de')")

Name = Annotated[str, AfterValidator(_check_name), Field(json_schema_extra={"pattern": NAME_PATTERN})]
"""A source or destination name: it becomes a file name, a dlt pipeline name and a dataset."""

TEAM_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"


_check_team = matching(
    TEAM_PATTERN, "invalid_team",
    "'{value}' is not a valid team name: use lower-case letters, digits, '-' and '_', "
    "starting with a letter (e.g. 'market-de')")

Team = Annotated[str, AfterValidator(_check_team), Field(json_schema_extra={"pattern": TEAM_PATTERN})]

IDENTIFIER_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_$# -]{0,127}$"


def _check_identifier(value: str) -> str:
    if not re.fullmatch(IDENTIFIER_PATTERN, value) or "--" in value:
        raise _fail(
            "invalid_identifier",
            "'{value}' is not a plain SQL identifier: use letters, digits, '_', '$', '#', '-' or "
            "spaces (no quotes, dots, semicolons or comment markers; at most 128 characters). "
            "Give schema and table in separate fields",
            value=value[:80],
        )
    return value


Identifier = Annotated[
    str, AfterValidator(_check_identifier), Field(json_schema_extra={"pattern": IDENTIFIER_PATTERN})
]
"""A table, schema or column name. Always quoted by the dialect when used, never pasted."""


# --- durations and schedules ---------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DURATION_PATTERN = r"^\s*\d+(\.\d+)?\s*[smhdw]\s*$"


def parse_duration(value: str) -> timedelta:
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"'{value}' is not a duration")
    return timedelta(seconds=float(match[1]) * _UNIT_SECONDS[match[2]])


def _check_duration(value: str) -> str:
    if not _DURATION.match(value):
        raise _fail(
            "invalid_duration",
            "'{value}' is not a duration: write a number and a unit, s, m, h, d or w "
            "(e.g. '30m', '24h', '7d')",
            value=value[:80],
        )
    return value.strip()


Duration = Annotated[
    str, AfterValidator(_check_duration), Field(json_schema_extra={"pattern": DURATION_PATTERN})
]


CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day-of-month", 1, 31), ("month", 1, 12),
               ("day-of-week", 0, 7))
_CRON_NUMBER = re.compile(r"\d+")


def cron_problem(value: str) -> str | None:
    """What is wrong with a 5-field cron, in words naming the field (None: valid).

    Example: ``cron_problem("61 25 * * *")`` -> ``"minute 61 is out of range 0-59; hour 25 ..."``."""
    from croniter import croniter

    parts = value.split()
    if len(parts) != 5:
        return (f"'{value[:80]}' is not a 5-field cron expression (minute hour day-of-month month "
                f"day-of-week): it has {len(parts)} field(s); e.g. '0 6 * * *' for every day at 06:00")
    wrong = []
    for text, (name, low, high) in zip(parts, CRON_FIELDS, strict=True):
        steps = set(re.findall(r"/(\d+)", text))
        bad = [n for n in _CRON_NUMBER.findall(text) if n not in steps and not low <= int(n) <= high]
        if bad:
            wrong.append(f"{name} {bad[0]} is out of range {low}-{high}")
    if wrong:
        return f"'{value[:80]}': " + "; ".join(wrong)
    try:
        valid = croniter.is_valid(value)
    except Exception:  # croniter raises odd errors on odd input; all mean "not a cron"
        valid = False
    if valid:
        return None
    return (f"'{value[:80]}' is not a valid cron expression (minute hour day-of-month month day-of-week): "
            "each field takes a number, *, a range a-b, a list a,b or a step */n; e.g. '0 6 * * *'")


def _check_cron(value: str) -> str:
    problem = cron_problem(value)
    if problem:
        raise _fail("invalid_cron", "{problem}", problem=problem)
    return value


def _check_timezone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail("invalid_timezone", "'{value}' is not a time zone: use an IANA name such as 'UTC', "
                    "'Europe/Berlin' or 'America/New_York'", value=value[:80]) from None
    return value


TimeZone = Annotated[str, AfterValidator(_check_timezone)]


Cron = Annotated[str, AfterValidator(_check_cron), Field(json_schema_extra={"format": "cron"})]

