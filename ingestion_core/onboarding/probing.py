"""Talking to the source before it is saved: the connection test and discovery with the typed
secrets, bounded by a timeout, and the hook to the REST library's endpoint test."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ingestion_core.common import preload
from ingestion_core.config.models.source_file import SourceFileBase
from ingestion_core.config.models.sources import SOURCE_MODELS
from ingestion_core.config.secrets import register_secret
from ingestion_core.config.store import ConfigStore
from ingestion_core.config.validation import ConfigIssue, issues_from_error
from ingestion_core.engine.errors import explain, for_typed_secrets
from ingestion_core.engine.sources import ConnectionReport
from ingestion_core.onboarding.drafts import PLACEHOLDER_NAME, Draft, masked, parse_path, with_secret_references
from ingestion_core.onboarding.saving import validate_draft

DEFAULT_TIMEOUT_S = 20.0
T = TypeVar("T")

# --- connection test and discovery ---------------------------------------------------------

@dataclass(frozen=True)
class ConnectionOnly:
    """A source file without tables: what connection code needs before tables are chosen."""

    source: Any
    name: str = PLACEHOLDER_NAME

    @property
    def source_type(self) -> str:
        return self.source.type


def connection_model(draft: Draft) -> tuple[Any, list[ConfigIssue]]:
    """The ``source:`` part of the draft as a model, the typed secret values in place of their
    references (held in memory only, for a test or discovery)."""
    kind = draft.source_type
    if kind not in SOURCE_MODELS:
        return None, [ConfigIssue("source.type", f"choose a source type: one of {', '.join(SOURCE_MODELS)}")]
    data = with_secret_references(draft.data, draft.secrets).get("source") or {}
    try:
        model = SOURCE_MODELS[kind].model_validate(data)
    except ValidationError as exc:
        issues = issues_from_error(exc, data, SOURCE_MODELS[kind])
        return None, [ConfigIssue(f"source.{i.path}" if i.path else "source", masked(i.message, draft.secrets))
                      for i in issues]
    for path, value in draft.secrets.items():
        parts = parse_path(path)
        if value and parts[:1] == ["source"] and len(parts) > 1:
            model = _substitute(model, parts[1:], value)
    return model, []


def _substitute(model: BaseModel, parts: list[str | int], value: str) -> BaseModel:
    head, rest = parts[0], parts[1:]
    if not isinstance(head, str) or not hasattr(model, head):
        return model
    attr = next((n for n, i in type(model).model_fields.items() if head in (n, i.alias)), head)
    current = getattr(model, attr)
    if rest:
        if not isinstance(current, BaseModel):
            return model
        return model.model_copy(update={attr: _substitute(current, rest, value)})
    register_secret(value)
    return model.model_copy(update={attr: value})


def _for_connection(draft: Draft, store: ConfigStore | None) -> tuple[Any, list[ConfigIssue]]:
    """The whole file when the draft is valid (a REST test needs its first resource), else only
    the connection."""
    source, issues = connection_model(draft)
    if source is None:
        return None, issues
    model, _ = validate_draft(draft, store)
    if model is not None:
        return model.model_copy(update={"source": source}), []
    return ConnectionOnly(source, draft.data.get("name") or PLACEHOLDER_NAME), []


def run_with_timeout(func: Callable[[], T], timeout: float) -> T:
    """``func()`` in a daemon thread; TimeoutError when it takes longer (the thread is left to
    finish on its own: a hanging connect must not hold the page). The heavy modules are
    imported first, here: never by this thread while another one imports them."""
    preload.load_heavy_modules()
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = func()
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True, name="onboarding-call")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def test_connection(draft: Draft, timeout: float = DEFAULT_TIMEOUT_S,
                    store: ConfigStore | None = None) -> ConnectionReport:
    """The source's connection test with the typed secrets, bounded by ``timeout``."""
    from ingestion_core.engine import sources

    target, issues = _for_connection(draft, store)
    if target is None:
        fields = ", ".join(i.path for i in issues if i.path) or "the connection"
        return ConnectionReport(False, "the connection settings are not complete: "
                                + "; ".join(f"{i.path}: {i.message}" for i in issues),
                                f"fix {fields} in the Connection step")
    try:
        report = run_with_timeout(lambda: sources.test_connection(target), timeout)
    except TimeoutError:
        return ConnectionReport(False, f"the source did not answer within {timeout:g} seconds",
                                "check host and port, and that the source is reachable from this machine "
                                "(firewall, VPN); then try again", duration_s=timeout)
    return ConnectionReport(report.ok, masked(report.reason, draft.secrets),
                            masked(report.mitigation, draft.secrets), report.duration_s,
                            report.details)


@dataclass
class Discovered:
    """A discovery answer for the form: ``items`` or ``error`` with ``hint``."""

    items: list[Any] = field(default_factory=list)
    error: str = ""
    hint: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


SYSTEM_SCHEMAS = {"information_schema", "pg_catalog", "pg_toast", "mysql", "performance_schema", "sys",
                  "INFORMATION_SCHEMA", "guest", "db_owner", "db_accessadmin", "db_securityadmin",
                  "db_ddladmin", "db_backupoperator", "db_datareader", "db_datawriter", "db_denydatareader",
                  "db_denydatawriter"}


def _discover(draft: Draft, call: Callable[[Any], list[Any]], timeout: float) -> Discovered:
    source, issues = connection_model(draft)
    if source is None:
        return Discovered(error="the connection settings are not complete: "
                          + "; ".join(f"{i.path}: {i.message}" for i in issues),
                          hint="fix them in the Connection step")
    try:
        return Discovered(run_with_timeout(lambda: call(source), timeout))
    except TimeoutError as exc:
        return Discovered(error=f"the source did not answer: {exc}", hint="try again, or type the names yourself")
    except Exception as exc:  # a discovery failure is shown, never raised into the page
        reason, hint = explain(exc)
        return Discovered(error=masked(reason, draft.secrets), hint=for_typed_secrets(hint, draft.secrets))


def discover_schemas(draft: Draft, timeout: float = DEFAULT_TIMEOUT_S) -> Discovered:
    """User schemas of a database source (system schemas left out)."""
    from ingestion_core.onboarding.discovery import list_schemas

    found = _discover(draft, list_schemas, timeout)
    found.items = [s for s in found.items if s not in SYSTEM_SCHEMAS and not str(s).startswith("pg_")]
    return found


def discover_tables(draft: Draft, schema: str | None, timeout: float = DEFAULT_TIMEOUT_S) -> Discovered:
    """Tables of one schema with columns, declared keys, row estimates and cursor candidates."""
    from ingestion_core.onboarding.discovery import discover_tables as tables_of

    return _discover(draft, lambda source: tables_of(source, schema=schema), timeout)


def discover_files(draft: Draft, glob: str, timeout: float = DEFAULT_TIMEOUT_S, limit: int = 200) -> Discovered:
    """Files matching a glob under the source's folder, newest first, with size and date."""
    from ingestion_core.onboarding.discovery import list_files

    glob = (glob or "").strip()
    if not glob:
        return Discovered(error="type a glob first, e.g. orders/*.csv", hint="* matches any name, ** any folder")
    return _discover(draft, lambda source: list_files(source, glob, limit=limit), timeout)


DEFAULT_SCHEMAS = {"postgres": "public", "mssql": "dbo", "azure_sql": "dbo", "sqlite": "main"}


def default_schema(draft: Draft, schemas: list[str]) -> str | None:
    """The schema to show first: the usual one of the database kind when it exists."""
    source = draft.data.get("source") or {}
    wanted = {"mysql": source.get("database"), "oracle": str(source.get("username") or "").upper()}.get(
        draft.source_type or "", DEFAULT_SCHEMAS.get(draft.source_type or ""))
    if wanted in schemas:
        return wanted
    return schemas[0] if schemas else None


# --- REST "test endpoint" (library side built in the REST issue) ---------------------------

class EndpointTestUnavailable(LookupError):
    """The REST library does not offer an endpoint test yet."""


ENDPOINT_TESTS = (("ingestion_core.engine.sources.rest_preview", "probe_endpoint"),
                  ("ingestion_core.engine.sources.rest", "test_endpoint"))


def _endpoint_test_function() -> Callable[..., Any]:
    import importlib

    for module_name, function in ENDPOINT_TESTS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if callable(getattr(module, function, None)):
            return getattr(module, function)
    raise EndpointTestUnavailable("the REST library has no endpoint test yet")


def test_endpoint(draft: Draft, resource: str, timeout: float = DEFAULT_TIMEOUT_S) -> Any:
    """The REST issue's endpoint test for one resource of the draft, with the typed secrets:
    the first raw response (secrets masked), the paginator and the data selector
    (``ingestion_core.engine.sources.rest_preview.probe_endpoint``). Raises :class:`EndpointTestUnavailable`
    when the library does not offer it, ValueError when the draft is not valid yet."""
    func = _endpoint_test_function()
    target, issues = _for_connection(draft, None)
    if target is None or not isinstance(target, SourceFileBase):
        _, issues = validate_draft(draft)
        problems = "; ".join(f"{i.path}: {i.message}" for i in issues if i.severity == "error")
        raise ValueError(f"fix the form first: {problems or 'the draft is not valid yet'}")
    return run_with_timeout(lambda: func(target, resource), timeout)


def call_timeout() -> float:
    """Seconds a connection test or a discovery may take (``INGEST_PORTAL_TIMEOUT_S``)."""
    import os

    try:
        return max(1.0, float(os.environ.get("INGEST_PORTAL_TIMEOUT_S", DEFAULT_TIMEOUT_S)))
    except ValueError:
        return DEFAULT_TIMEOUT_S


def connection_fingerprint(draft: Draft) -> str:
    """Changes whenever the connection (or a typed secret) changes: a test or a discovery of an
    older connection is stale."""
    import hashlib
    import json

    payload = json.dumps([draft.data.get("source"), sorted(draft.secrets.items())], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
