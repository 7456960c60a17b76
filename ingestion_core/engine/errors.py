"""What went wrong, in words a market-team user can act on.

:func:`explain` digs the root cause out of dlt's wrappers (PipelineStepFailed ->
ResourceExtractionError -> driver error), masks secrets, and adds a hint; :func:`error_class`
names the root cause's class; :func:`is_transient` tells whether a retry can help, and
:func:`retry_table` whether the runner should try the table again now (not when the layer
that raised has already used up its own retries, see :func:`retries_spent`).
"""

from __future__ import annotations

import contextlib
import logging
import re
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ingestion_core.config.secrets import mask

LOGGER = logging.getLogger("ingestion_core.errors")
_TRAIL_LOGGED = "_ingest_trail_logged"


class MissingDriverError(ImportError):
    """A database driver or system library is not installed; the message says what to install."""


class HintedError(RuntimeError):
    """An error of ours that knows what the user should do: :func:`explain` gives its message
    (which names the cause below it) and its ``hint``, wherever it is in the chain."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str]
    hint: str
    transient: bool = False
    typed_hint: str = ""  # the hint when the secret was typed into a form, not given as a reference


def _rule(pattern: str, hint: str, transient: bool = False, typed_hint: str = "") -> Rule:
    return Rule(re.compile(pattern, re.I | re.S), hint, transient, typed_hint)


REFERENCE = "(the secrets file or environment variable it points to)"
ODBC_DRIVER_HINT = ("the ODBC driver for SQL Server is not installed on the machine that runs the portal and the "
                    "loads: ask your platform team to install Microsoft's \"ODBC Driver 18 for SQL Server\" there "
                    "(Debian / Ubuntu packages msodbcsql18 and unixodbc; docs/operations.md, Database drivers). If "
                    "another version is installed, set driver (More connection settings) to its name, e.g. "
                    "ODBC Driver 17 for SQL Server")
MISSING_DRIVER_HINT = ("a database driver is missing on the machine that runs the portal and the loads: ask your "
                       "platform team to install what the message names there (docs/operations.md, Database "
                       "drivers)")


RULES: list[Rule] = [
    # object stores: S3 (botocore's "(403) when calling the X operation"), Azure Blob / ADLS
    _rule(r"SignatureDoesNotMatch|InvalidAccessKeyId|request signature we calculated|\(403\) when calling the|"
          r"AuthenticationFailed|AuthorizationFailure|Server failed to authenticate|InvalidAuthenticationInfo",
          "the object store refused the credentials: check the access key id or account name, and the secret "
          f"key, account key, SAS token or connection string reference {REFERENCE}",
          typed_hint="the object store refused the credentials: check the access key id or account name, and "
                     "the secret key, account key, SAS token or connection string you typed"),
    # object stores with Credentials off (the machine's own are used) and none found on the machine
    _rule(r"NoCredentialsError|Unable to locate credentials|connection_string or account_name|"
          r"DefaultAzureCredential failed|DefaultCredentialsError|Could not automatically determine credentials",
          "the source's Credentials are off, so this machine's own credentials are used, and it has none for "
          "this store: give the machine access (environment variables such as AWS_ACCESS_KEY_ID or "
          "AZURE_STORAGE_CONNECTION_STRING, an instance role or managed identity, az login, "
          "GOOGLE_APPLICATION_CREDENTIALS), or turn Credentials on in the source and give them there"),
    # REST APIs (ingestion_core.engine.sources.rest): before the generic rules, whose words they contain
    _rule(r"PagingStoppedError",
          "the API kept offering pages it had already sent (or more than the page cap): nothing of the table "
          "was loaded; the message names the paginator setting to check"),
    _rule(r"\b40[13] Client Error",
          f"the API refused the credentials: check the token, key or password reference in source.auth "
          f"{REFERENCE} and that it may read this endpoint",
          typed_hint="the API refused the credentials: check the token, key or password you typed (source.auth) "
                     "and that it may read this endpoint"),
    _rule(r"\b404 Client Error",
          "the API has no such endpoint: check base_url and the table's path; for a child resource whose "
          "parent records may have none, add response_actions: [{status_code: 404, action: ignore}]"),
    _rule(r"JSONDecodeError|Expecting value|Unterminated string",
          "the API answered something that is not valid JSON (a web page, or a body cut off): check base_url "
          "and path, and try again if the API was overloaded"),
    # SQL Server's ODBC driver (or unixODBC) missing: before the login rule, whose words a message of the
    # installed driver contains ("[ODBC Driver 18 for SQL Server]...Login failed")
    _rule(r"Can't open lib|\[IM002\]|Data source name not found|libodbc|\bpyodbc\b.*cannot be loaded",
          ODBC_DRIVER_HINT),
    _rule(r"password authentication failed|no password supplied|access denied for user|login failed|ORA-01017|"
          r"invalid username/password|\b401\b|\b403\b|unauthori[sz]ed|forbidden",
          f"the server refused the credentials: check username and the password reference {REFERENCE}",
          typed_hint="the server refused the credentials: check username and the password you typed"),
    # TLS set up wrong (a dropped SSL connection is not: it is a server restart or a network cut)
    _rule(r"SSL negotiation|SSL handshake|certificate verify failed|server does not support SSL|"
          r"SSL is not enabled|TLS handshake",
          "the TLS (SSL) handshake with the server failed: check that host and port point at the database "
          "server itself (not another service on that port) and the TLS settings (e.g. sslmode in options)"),
    _rule(r"database \S+ does not exist|unknown database|cannot open database",
          "the database does not exist on that server: check the database field"),
    _rule(r"could not translate host name|name or service not known|nodename nor servname|"
          r"getaddrinfo failed|temporary failure in name resolution",
          "the host name cannot be resolved: check host for typos", transient=True),
    _rule(r"connection refused|could not connect|can't connect to|server closed the connection|"
          r"connection reset|broken pipe|lost connection",
          "the server cannot be reached: check host and port, and that the server is running and "
          "reachable from this machine", transient=True),
    _rule(r"timed? ?out|timeout", "the server did not answer in time: try again later, or raise the timeout",
          transient=True),
    _rule(r"\b(429|500|502|503|504)\b|too many requests|service unavailable",
          "the server is overloaded or rate limiting: the run retries with backoff", transient=True),
    _rule(r"NoSuchTableError|relation \S+ does not exist|table \S+ doesn't exist|no such table|"
          r"Table .* not found",
          "the table was not found: check the table name and schema (discovery lists what exists)"),
    _rule(r"cursor|IncrementalCursorPathMissing",
          "the incremental cursor column is missing or empty in the data: check cursor (it must "
          "be a column of the table)"),
    _rule(r"contract|DataValidationError|frozen",
          "the data no longer fits the table's schema and its schema_evolution policy forbids "
          "the change: set schema_evolution to evolve, or fix the source"),
    _rule(r"NOT NULL constraint failed|violates not-null constraint|cannot be null|cannot insert the value null",
          "rows have an empty value in a column the destination table was created with as NOT NULL (the source "
          "has allowed empty values since): a full refresh of the table (`ingest run <source> --refresh "
          "<table>`, or Full refresh on the source's home, Settings tab) creates it again with the column "
          "nullable"),
    _rule(r"duplicate key|primary key|unique constraint",
          "rows share the same primary key: check primary_key, or deduplicate in the source"),
    _rule(r"no module named|driver", MISSING_DRIVER_HINT),
]
_TYPED_HINTS = {rule.hint: rule.typed_hint for rule in RULES if rule.typed_hint}


def root_cause(exc: BaseException) -> BaseException:
    """The innermost error below dlt's wrappers."""
    seen = set()
    current = exc
    while id(current) not in seen:
        seen.add(id(current))
        inner = getattr(current, "exception", None) or current.__cause__
        if not isinstance(inner, BaseException):
            break
        current = inner
    return current


def describe(exc: BaseException) -> str:
    cause = root_cause(exc)
    text = str(cause).strip().splitlines()
    first = " ".join(line.strip() for line in text[:3])[:600]
    return mask(f"{type(cause).__name__}: {first}" if first else type(cause).__name__)


def _match(exc: BaseException) -> Rule | None:
    cause = root_cause(exc)
    text = f"{type(cause).__name__} {cause} {type(exc).__name__}"
    for rule in RULES:
        if rule.pattern.search(text):
            return rule
    return None


def explain(exc: BaseException, log_path: str | None = None) -> tuple[str, str]:
    """(masked message, hint) for an error. An error no rule knows points at ``log_path`` when
    that log exists (the hint never names a log that was not written), else gets a plain generic
    fix: never a code trail (see :func:`unknown_error_hint`)."""
    from ingestion_core.config.secrets import SecretNotFoundError

    hinted = _hinted(exc)
    if hinted is not None:
        return mask(str(hinted)), hinted.hint
    cause = root_cause(exc)
    if isinstance(cause, MissingDriverError):
        rule = _match(exc)
        return mask(str(cause)), rule.hint if rule else MISSING_DRIVER_HINT
    if isinstance(cause, SecretNotFoundError):
        return mask(str(cause)), "see the message: it says what to install or set"
    if type(cause).__name__ == "ColumnTypeError":
        return describe(exc), ("the message names the column and the choices: land it as another type with "
                               "column_types, or leave it out with exclude_columns (docs/type-mappings.md)")
    if type(cause).__name__ == "PanicException":
        return describe(exc), "the reading backend crashed on a column type: set backend: pyarrow for this table"
    rule = _match(exc)
    return describe(exc), (rule.hint if rule else unknown_error_hint(exc, log_path))


def for_typed_secrets(hint: str, typed: Mapping[str, str]) -> str:
    """``hint`` in the words of someone who typed the secrets into a form (``typed``: YAML path ->
    value) rather than wrote references: "check ... the password you typed", not "the password
    reference (the secrets file ...)", which a form user does not have."""
    if not any(typed.values()):
        return hint
    return _TYPED_HINTS.get(hint, hint)


def _hinted(exc: BaseException) -> HintedError | None:
    """The outermost :class:`HintedError` in ``exc``'s chain (dlt's wrappers and causes)."""
    return next((link for link in chain(exc) if isinstance(link, HintedError)), None)


def chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then what it wraps (a dlt wrapper's ``exception``), else its cause, else the
    exception it was raised while handling (unless suppressed), outermost first."""
    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        yield current
        seen.add(id(current))
        inner = getattr(current, "exception", None)
        if isinstance(inner, BaseException):
            current = inner
        elif current.__cause__ is not None or current.__suppress_context__:
            current = current.__cause__
        else:
            current = current.__context__


UNKNOWN_ERROR_HINT = ("this error is not one the portal knows: check the connection settings (host, port, and "
                      "TLS/SSL options such as sslmode) and try again; if it persists, the portal's log has where "
                      "it failed (give it to your platform team)")


def unknown_error_hint(exc: BaseException, log_path: str | None = None) -> str:
    """What to do after an error no rule knows: the run log when it was written, else a plain
    generic fix. Where it failed (a code trail, of use to a developer, never a hint to an analyst)
    goes to the portal's log instead, masked, once per error."""
    if log_path and Path(log_path).is_file():
        return f"the run log has the details: {log_path}"
    if not getattr(exc, _TRAIL_LOGGED, False):
        LOGGER.warning("unrecognised error %s; where it failed: %s", describe(exc), traceback_excerpt(exc))
        with contextlib.suppress(AttributeError, TypeError):
            setattr(exc, _TRAIL_LOGGED, True)
    return UNKNOWN_ERROR_HINT


def traceback_excerpt(exc: BaseException, frames: int = 3) -> str:
    """The innermost ``frames`` frames of the error's traceback, masked, on one line."""
    cause = root_cause(exc)
    stack = traceback.extract_tb(cause.__traceback__ or exc.__traceback__)[-frames:]
    if not stack:
        return "(no traceback)"
    return mask(" -> ".join(f"{_short(f.filename)}:{f.lineno} in {f.name}" + (f" ({f.line.strip()})" if f.line else "")
                            for f in stack))


def _short(filename: str) -> str:
    """site-packages/dlt/common/json/__init__.py -> dlt/common/json/__init__.py"""
    parts = Path(filename).parts
    for marker in ("site-packages", "ingestion_core", "portal"):
        if marker in parts:
            index = parts.index(marker)
            return "/".join(parts[index + (marker == "site-packages"):])
    return Path(filename).name


def error_class(exc: BaseException) -> str:
    """The class name of the root cause, e.g. ``SecretNotFoundError`` or ``ReadTimeout``."""
    return type(root_cause(exc)).__name__


_RETRIES_SPENT = "_ingest_retries_spent"


def retries_spent(exc: BaseException) -> BaseException:
    """Marks an error raised after its own layer's retries (a REST request tried ``retry_attempts``
    + 1 times): those retries were the table's budget."""
    setattr(exc, _RETRIES_SPENT, True)
    return exc


def retry_table(exc: BaseException) -> bool:
    """Whether the runner tries a failed table again: a transient error whose retries were not
    already spent below it (one retry budget per table, never attempts x request retries)."""
    spent = getattr(root_cause(exc), _RETRIES_SPENT, False) or getattr(exc, _RETRIES_SPENT, False)
    return isinstance(exc, Exception) and not spent and is_transient(exc)


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: timeouts, resets, unreachable servers, 429 and 5xx."""
    from ingestion_core.config.secrets import SecretNotFoundError

    cause = root_cause(exc)
    if isinstance(cause, (MissingDriverError, SecretNotFoundError, KeyError, ValueError)):
        return False
    rule = _match(exc)
    return bool(rule and rule.transient)
