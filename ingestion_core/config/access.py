"""Who may do what to a source, and the audit log of every change and every refusal.

A *principal* is a user with their teams and whether they are an admin. A source's ``owner``
team may ``edit``, ``run``, ``delete`` and ``restore`` it; everyone may ``view`` it; admins may
do everything. Destinations have no owner: only admins change them.

Teams come from ``<config dir>/teams.yaml`` (:mod:`ingestion_core.config.models.teams`) and, for
signed-in portal users, from the ID-token claim that file names. Without a teams file the tool
is in *local single-user mode*: every actor is an admin.

The checks live here and are called by the library's service calls (``ConfigStore`` saves,
deletes and restores; starting and cancelling runs), so hiding a button is never the only
guard. A refused attempt raises :class:`AccessDeniedError` and is written to the audit log.

Example::

    principal = principal_for("ana@example.com")
    require(principal, "edit", "market-de", name="sales_de")  # raises AccessDeniedError if not allowed
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ingestion_core.common import settings
from ingestion_core.config.models.teams import TeamsFile
from ingestion_core.config.validation import ConfigError, ConfigIssue, issues_from_error
from ingestion_core.config.yaml_text import parse_yaml

ACTIONS = ("view", "edit", "run", "delete", "restore")
TEAMS_FILE = "teams.yaml"
LOCAL_MODE = "local"  # Principal.source when there is no teams file


def default_actor() -> str:
    """Who acts when nobody signed in (CLI, local portal): ``$INGEST_ACTOR``, else the OS user."""
    try:
        return os.environ.get("INGEST_ACTOR") or getpass.getuser()
    except (KeyError, OSError):
        return "cli"


class AccessDeniedError(PermissionError):
    """The actor may not do this to this source; the message says who may and whom to ask."""


@dataclass(frozen=True)
class Principal:
    """A user as the access rules see them."""

    name: str
    teams: frozenset[str] = frozenset()
    admin: bool = False
    source: str = TEAMS_FILE  # where the rights come from: "teams.yaml", "teams.yaml + claim" or "local"

    @property
    def local(self) -> bool:
        return self.source == LOCAL_MODE


# --- the teams file ------------------------------------------------------------------------

def teams_file() -> Path:
    return settings.config_dir() / TEAMS_FILE


def load_teams(path: Path | None = None) -> TeamsFile | None:
    """The validated teams file, or None when there is none (local single-user mode).

    An invalid file raises :class:`ConfigError` (YAML path, problem, fix): the rules fail closed.
    """
    path = path or teams_file()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    data, issues = parse_yaml(text)
    if issues:
        raise ConfigError(issues, str(path))
    if not isinstance(data, dict):
        raise ConfigError([ConfigIssue("", "the teams file must be a mapping (admins:, teams:, sign_in:)")], str(path))
    try:
        return TeamsFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(issues_from_error(exc, data, TeamsFile), str(path)) from None


def principal_for(actor: str, claims: Mapping[str, Any] | None = None, teams: TeamsFile | None = None) -> Principal:
    """The rights of ``actor`` (a user name or e-mail) from the teams file.

    ``claims`` are a signed-in user's ID-token claims (``st.user``): their ``email`` and
    ``preferred_username`` identify the user too, and the file's ``sign_in.teams_claim`` adds teams.
    """
    policy = teams if teams is not None else load_teams()
    if policy is None:
        return Principal(actor, frozenset(), admin=True, source=LOCAL_MODE)
    claims = claims or {}
    identities = {str(v).strip().lower() for v in (actor, claims.get("email"), claims.get("preferred_username")) if v}
    member_of = policy.teams_of(identities)
    values = _claim_values(claims, policy.sign_in.teams_claim)
    admin = policy.is_admin(identities) or bool(values & set(policy.sign_in.admin_groups))
    source = f"{TEAMS_FILE} + claim" if values else TEAMS_FILE
    return Principal(actor, frozenset(member_of | values), admin=admin, source=source)


def _claim_values(claims: Mapping[str, Any], claim: str | None) -> set[str]:
    if not claim or claim not in claims:
        return set()
    value = claims[claim]
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return {str(v) for v in value} if isinstance(value, (list, tuple, set)) else set()


def as_principal(actor: str | Principal) -> Principal:
    """A principal as is; a name resolved through the teams file (what the CLI and jobs pass)."""
    if isinstance(actor, Principal):
        return actor
    return principal_for(actor)


# --- the rules -----------------------------------------------------------------------------

def can(principal: Principal, action: str, source_owner: str | None) -> bool:
    """Whether ``principal`` may do ``action`` to a source owned by ``source_owner``.

    ``source_owner`` None (a destination, or a file without a readable owner): admins only.
    """
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, not '{action}'")
    if action == "view" or principal.admin:
        return True
    return source_owner is not None and source_owner in principal.teams


def require(actor: str | Principal, action: str, source_owner: str | None, *, name: str | None = None,
            kind: str = "sources") -> Principal:
    """Raise :class:`AccessDeniedError` (and record the refusal) unless the actor may do it.

    Returns the principal, so callers can record its name with the change.
    """
    principal = as_principal(actor)
    if can(principal, action, source_owner):
        return principal
    message = denial_message(principal, action, source_owner, name=name, kind=kind)
    record(principal.name, action, kind, name or "", outcome="denied", reason=message)
    raise AccessDeniedError(message)


def denial_message(principal: Principal, action: str, source_owner: str | None, *, name: str | None,
                   kind: str = "sources") -> str:
    what = f"{kind[:-1]} '{name}'" if name else f"this {kind[:-1]}"
    teams = ", ".join(sorted(principal.teams)) or "no team"
    admins = _admins_text()
    if source_owner is None:
        owned = "it has no owner team, so only admins may change it"
        ask = f"Ask an admin ({admins}) to make the change."
    else:
        owned = f"it is owned by team '{source_owner}' and you are in {teams}"
        ask = (f"Ask a member of '{source_owner}' or an admin ({admins}) to make the change, or to add you to "
               f"team '{source_owner}' in {teams_file().name}.")
    return f"{principal.name} may not {action} {what}: {owned}. {ask}"


def _admins_text() -> str:
    try:
        policy = load_teams()
    except ConfigError:
        return "see teams.yaml"
    names = list(policy.admins) if policy else []
    groups = [f"group {g}" for g in (policy.sign_in.admin_groups if policy else [])]
    return ", ".join(names + groups) or "see teams.yaml"


# --- the audit log -------------------------------------------------------------------------

def audit_log() -> Path:
    return settings.data_dir() / "audit" / "config_changes.jsonl"


def record(actor: str, action: str, kind: str, name: str, *, before: str | None = None,
           after: str | None = None, outcome: str = "done", **detail: Any) -> None:
    """Append one line to the audit log: a change (``outcome`` done) or a refusal (denied)."""
    entry = {"time": datetime.now(UTC).isoformat(), "actor": actor, "action": action, "kind": kind,
             "name": name, "revision_before": before, "revision_after": after, "outcome": outcome, **detail}
    log = audit_log()
    log.parent.mkdir(parents=True, exist_ok=True)
    # one write() of one line in append mode: concurrent writers never interleave inside a line
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, (json.dumps(entry) + "\n").encode("utf-8"))
    finally:
        os.close(fd)


def audit_entries(kind: str | None = None, name: str | None = None) -> Iterator[dict[str, Any]]:
    """Audit log lines in the order written, optionally of one config; unreadable lines skipped."""
    try:
        lines = audit_log().read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and (kind is None or entry.get("kind") == kind) and (
                name is None or entry.get("name") == name):
            entry.setdefault("outcome", "done")
            yield entry
