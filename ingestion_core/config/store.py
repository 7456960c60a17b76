"""YAML config files: list, load, validate, save and delete.

Layout under the config dir (``INGEST_CONFIG_DIR``, default ``configs/``)::

    sources/<name>.yaml        one file per source
    destinations/<name>.yaml   one file per destination
    templates/*.yaml           commented starting points

Every load returns a *revision* (a hash of the file's bytes). A save names the revision it
was based on and is refused with :class:`ConflictError` when the file changed since, so two
people editing one source never overwrite each other. Writes are atomic (temp file, fsync,
rename) under a lock on the folder, and each change is appended to the audit log with its
actor. Deleted files go to a bin under ``INGEST_DATA_DIR`` and can be restored.

Every change is checked against the access rules first (:mod:`ingestion_core.config.access`): the
``actor`` is a user name (resolved through ``teams.yaml``) or an ``access.Principal``; a refused
change raises ``AccessDeniedError`` and is recorded. Every saved content is kept, one file per
revision, under ``INGEST_DATA_DIR/history/<kind>/<name>/`` (see :meth:`ConfigStore.history`).
When the config dir is itself a git repository (``<config dir>/.git``), each change is also
committed there, with the actor as author.

Example::

    store = ConfigStore()
    loaded = store.load_source("demo_shop")
    store.save_source(loaded.config, actor="ana", expected_revision=loaded.revision)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ingestion_core.common import settings
from ingestion_core.common.atomic import atomic_write, folder_lock
from ingestion_core.config import access
from ingestion_core.config.access import Principal
from ingestion_core.config.dependencies import dependency_issues
from ingestion_core.config.migrations import NewerVersionError, migrate
from ingestion_core.config.models.base import NAME_PATTERN
from ingestion_core.config.models.destinations import DESTINATION_ADAPTER, parse_destination
from ingestion_core.config.models.source_file import SourceFileBase, parse_source_file, source_file_adapter
from ingestion_core.config.secrets import mask
from ingestion_core.config.validation import ConfigError, ConfigIssue, issues_from_error
from ingestion_core.config.yaml_text import MAX_FILE_BYTES, dump_yaml, parse_yaml  # noqa: F401  (named here too)

KINDS = ("sources", "destinations")
SCHEMA_COMMENT = "# yaml-language-server: $schema=../source.schema.json\n"
DESTINATION_SCHEMA_COMMENT = "# yaml-language-server: $schema=../destination.schema.json\n"


class ConflictError(RuntimeError):
    """The file changed since it was loaded (or exists already); reload and apply again."""


class ConfigNotFoundError(FileNotFoundError):
    pass


@dataclass
class Loaded:
    """A config as read from disk: the validated model, its revision and the raw text."""

    kind: str
    name: str
    path: Path
    revision: str
    text: str
    config: Any = None
    issues: list[ConfigIssue] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.config is not None and not any(i.severity == "error" for i in self.issues)


@dataclass(frozen=True)
class SourceSummary:
    name: str
    type: str | None
    owner: str | None
    destination: str | None
    tables: int
    enabled: bool
    valid: bool
    issues: list[ConfigIssue]
    description: str = ""
    schedule: str | None = None
    timezone: str = "UTC"  # the schedule's time zone


def revision_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


# --- validation ----------------------------------------------------------------------------

def validate_source_data(
    data: Any, destinations: dict[str, Any] | None = None, file_name: str | None = None
) -> tuple[SourceFileBase | None, list[ConfigIssue]]:
    """Migrate and validate loaded YAML data. ``destinations``: name -> destination model."""
    if not isinstance(data, dict):
        return None, [ConfigIssue("", "a source file must be a mapping (name:, owner:, source:, tables: ...)")]
    try:
        data, warnings = migrate(data)
    except NewerVersionError as exc:
        return None, [ConfigIssue("version", str(exc))]
    try:
        config = parse_source_file(data, destinations)
    except ValidationError as exc:
        return None, warnings + issues_from_error(exc, data, source_file_adapter()._type)
    issues = warnings + _name_matches_file(config.name, file_name)
    return (None if any(i.severity == "error" for i in issues) else config), issues


def validate_destination_data(data: Any, file_name: str | None = None) -> tuple[Any, list[ConfigIssue]]:
    if not isinstance(data, dict):
        return None, [ConfigIssue("", "a destination file must be a mapping "
                                      "(type: duckdb | filesystem | databricks ...)")]
    try:
        return parse_destination(data), []
    except ValidationError as exc:
        return None, issues_from_error(exc, data, DESTINATION_ADAPTER._type)


def _name_matches_file(name: str, file_name: str | None) -> list[ConfigIssue]:
    if file_name and name != file_name:
        return [ConfigIssue("name", f"name '{name}' differs from the file name '{file_name}.yaml'; "
                                    "make them the same")]
    return []


# --- the store -----------------------------------------------------------------------------

class ConfigStore:
    """Config files under one config dir (default: ``settings.config_dir()``)."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else settings.config_dir()

    # paths and names
    def path(self, kind: str, name: str) -> Path:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not '{kind}'")
        check_name(name)
        return self.root / kind / f"{name}.yaml"

    def names(self, kind: str) -> list[str]:
        """Names of the configs of a kind; files whose name is not a valid config name are left
        out (see :meth:`misnamed`)."""
        return [n for n in self._stems(kind) if is_valid_name(n)]

    def misnamed(self, kind: str) -> list[str]:
        """YAML files in the folder that no name can address (``Sales DE.yaml``)."""
        return [n for n in self._stems(kind) if not is_valid_name(n)]

    def _stems(self, kind: str) -> list[str]:
        folder = self.root / kind
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("*.yaml") if not p.name.startswith("."))

    # reading
    def read(self, kind: str, name: str) -> tuple[str, str]:
        path = self.path(kind, name)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            have = ", ".join(self.names(kind)) or "none"
            raise ConfigNotFoundError(
                f"no {kind[:-1]} named '{name}' in {self.root / kind} (there are: {have})"
            ) from None
        return raw.decode("utf-8"), revision_of(raw)

    def destinations(self) -> dict[str, Any]:
        """Every destination name with its model (None when that file is invalid)."""
        found: dict[str, Any] = {}
        for name in self.names("destinations"):
            try:
                text, _ = self.read("destinations", name)
            except ConfigNotFoundError:  # deleted while listing
                continue
            data, _issues = parse_yaml(text)
            found[name] = validate_destination_data(data, name)[0]
        return found

    def load(self, kind: str, name: str) -> Loaded:
        """Read and validate; an invalid file still loads, with ``issues`` and no ``config``."""
        text, revision = self.read(kind, name)
        config, issues = self.validate_text(kind, text, name)
        return Loaded(kind, name, self.path(kind, name), revision, text, config, issues)

    def load_source(self, name: str) -> Loaded:
        """Load a valid source or raise :class:`ConfigError` listing every problem."""
        loaded = self.load("sources", name)
        if not loaded.valid:
            raise ConfigError(loaded.issues, str(loaded.path))
        return loaded

    def load_destination(self, name: str) -> Loaded:
        loaded = self.load("destinations", name)
        if not loaded.valid:
            raise ConfigError(loaded.issues, str(loaded.path))
        return loaded

    def validate_text(self, kind: str, text: str, file_name: str | None = None) -> tuple[Any, list[ConfigIssue]]:
        data, issues = parse_yaml(text)
        if issues:
            return None, issues
        if kind == "destinations":
            return validate_destination_data(data, file_name)
        return self.with_dependency_issues(*validate_source_data(data, self.destinations(), file_name))

    def dependency_graph(self) -> dict[str, list[str]]:
        """Every source name -> its ``after`` list, read from the YAML as it is (an invalid file
        still counts as a source; a value that is not a list of names counts as no dependency)."""
        graph: dict[str, list[str]] = {}
        for name in self.names("sources"):
            try:
                text, _ = self.read("sources", name)
            except ConfigNotFoundError:  # deleted while listing
                continue
            data, _issues = parse_yaml(text)
            after = data.get("after") if isinstance(data, dict) else None
            graph[name] = [a for a in after if isinstance(a, str)] if isinstance(after, list) else []
        return graph

    def with_dependency_issues(self, config: SourceFileBase | None, issues: list[ConfigIssue],
                               graph: dict[str, list[str]] | None = None) -> tuple[SourceFileBase | None,
                                                                                   list[ConfigIssue]]:
        """Add the checks of ``after`` against the other sources (unknown name, cycle). Only a file
        with ``after`` entries can close a cycle, so the others cost nothing."""
        if config is None or not config.after:
            return config, issues
        issues = issues + dependency_issues(config.name, config.after, graph or self.dependency_graph())
        return (None if any(i.severity == "error" for i in issues) else config), issues

    def list_sources(self) -> list[SourceSummary]:
        """Every source file, valid or not; a misnamed file is listed as invalid."""
        destinations, graph = self.destinations(), self.dependency_graph()
        summaries = [s for s in (self._summary(n, destinations, graph) for n in self.names("sources")) if s]
        summaries += [_misnamed_summary(name) for name in self.misnamed("sources")]
        return sorted(summaries, key=lambda s: s.name)

    def _summary(self, name: str, destinations: dict[str, Any], graph: dict[str, list[str]]) -> SourceSummary | None:
        try:
            text, _ = self.read("sources", name)
        except ConfigNotFoundError:  # deleted while listing
            return None
        data, issues = parse_yaml(text)
        config = None
        if not issues:
            config, issues = self.with_dependency_issues(*validate_source_data(data, destinations, name), graph)
        raw = data if isinstance(data, dict) else {}
        source = raw.get("source") if isinstance(raw.get("source"), dict) else {}
        tables = raw.get("tables") if isinstance(raw.get("tables"), list) else []
        if config is not None:  # the validated values (old key names already migrated)
            return SourceSummary(
                name=name, type=config.source_type, owner=config.owner, destination=config.destination,
                tables=len(config.tables), enabled=config.enabled, valid=True, issues=issues,
                description=config.description, schedule=config.schedule, timezone=config.timezone,
            )
        return SourceSummary(
            name=name, type=_text(source.get("type")), owner=_text(raw.get("owner")),
            destination=_text(raw.get("destination", "local_duckdb")), tables=len(tables),
            enabled=raw.get("enabled", True) is not False, valid=False,
            issues=issues, description=_text(raw.get("description")) or "",
        )

    # writing
    def save_source(self, config: SourceFileBase | dict[str, Any], *, actor: str,
                    expected_revision: str | None) -> str:
        """Validate and write a source; returns the new revision."""
        if isinstance(config, dict):
            model, issues = validate_source_data(config, self.destinations())
            if model is None:
                raise ConfigError(issues)
            config = model
        return self.save_text("sources", config.name, dump_yaml(config, SCHEMA_COMMENT),
                              actor=actor, expected_revision=expected_revision)

    def save_destination(self, name: str, config: BaseModel, *, actor: str,
                         expected_revision: str | None) -> str:
        return self.save_text("destinations", name, dump_yaml(config, DESTINATION_SCHEMA_COMMENT), actor=actor,
                              expected_revision=expected_revision)

    def save_text(self, kind: str, name: str, text: str, *, actor: str | Principal,
                  expected_revision: str | None) -> str:
        """Write YAML text as it is (comments kept) after validating it.

        ``expected_revision`` is the revision the edit started from; None means the file must
        not exist yet. The actor must be allowed to edit the file as it is and as it will be.
        """
        return self._write(kind, name, text, actor=actor, expected_revision=expected_revision, action="save")

    def _write(self, kind: str, name: str, text: str, *, actor: str | Principal, expected_revision: str | None,
               action: str, **detail: Any) -> str:
        principal = _require_actor(actor)
        path = self.path(kind, name)
        config, issues = self.validate_text(kind, text, name)
        if config is None:
            raise ConfigError(issues, str(path))
        data = text.encode("utf-8")
        revision = revision_of(data)
        verb = "restore" if "restored_from" in detail else "edit"
        with folder_lock(path.parent):  # the audit line is written under the lock: the log keeps the order of changes
            before = _current_bytes(path)
            current = None if before is None else revision_of(before)
            _authorize(principal, verb, kind, name, before, getattr(config, "owner", None))
            if current != expected_revision:
                raise ConflictError(_conflict_message(name, current, expected_revision))
            if before is not None:
                _keep(kind, name, current, before, baseline=True)
            atomic_write(path, data)
            _keep(kind, name, revision, data)
            detail.update(_git_commit(self.root, path, principal.name, f"{action} {kind}/{name} ({revision})"))
            access.record(principal.name, action, kind, name, before=current, after=revision, **detail)
        return revision

    def authorize(self, kind: str, name: str, *, actor: str | Principal, new_owner: str | None,
                  action: str = "edit") -> Principal:
        """Check, before any side effect, that ``actor`` may write this config as it is now and
        with ``new_owner`` (e.g. before storing secrets typed into a form). Saves check again
        under the lock; a refusal raises ``AccessDeniedError`` and is recorded."""
        principal = _require_actor(actor)
        _authorize(principal, action, kind, name, _current_bytes(self.path(kind, name)), new_owner)
        return principal

    def delete(self, kind: str, name: str, *, actor: str | Principal, expected_revision: str | None = None) -> Path:
        """Move a config to the bin (``INGEST_DATA_DIR/bin``); returns where it went."""
        principal = _require_actor(actor)
        path = self.path(kind, name)
        with folder_lock(path.parent):
            before = _current_bytes(path)
            if before is None:
                raise ConfigNotFoundError(f"no {kind[:-1]} named '{name}' to delete")
            access.require(principal, "delete", _owner_of(kind, before), name=name, kind=kind)
            current = revision_of(before)
            if expected_revision is not None and current != expected_revision:
                raise ConflictError(_conflict_message(name, current, expected_revision))
            _keep(kind, name, current, before, baseline=True)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            target = settings.data_dir() / "bin" / kind / f"{name}.{stamp}.yaml"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target) if _same_device(path, target) else _move(path, target)
            git = _git_commit(self.root, path, principal.name, f"delete {kind}/{name}")
            access.record(principal.name, "delete", kind, name, before=current, after=None, **git)
        return target

    def deleted(self, kind: str = "sources") -> list[Path]:
        folder = settings.data_dir() / "bin" / kind
        return sorted(folder.glob("*.yaml")) if folder.is_dir() else []

    def restore(self, binned: Path, *, actor: str | Principal) -> str:
        """Put a deleted config back (refused if a file of that name exists again)."""
        kind = binned.parent.name
        name = binned.name.split(".", 1)[0]
        revision = self._write(kind, name, binned.read_text("utf-8"), actor=actor, expected_revision=None,
                               action="save", restored_from="bin")
        binned.unlink()
        return revision

    # history
    def history(self, kind: str, name: str) -> list[Change]:
        """Every recorded change of one config, newest first (refusals left out)."""
        self.path(kind, name)  # checks kind and name
        changes = [Change.from_entry(e) for e in access.audit_entries(kind, name) if e["outcome"] == "done"]
        return changes[::-1]

    def first_seen(self, kind: str = "sources") -> dict[str, datetime]:
        """When each config now present first existed: its first recorded save, else (a file
        written by hand) its modification time. Freshness counts scheduled runs from then on."""
        seen: dict[str, datetime] = {}
        for entry in access.audit_entries(kind):
            if entry["outcome"] == "done" and entry.get("name") and entry.get("name") not in seen:
                with contextlib.suppress(TypeError, ValueError):
                    seen[entry["name"]] = datetime.fromisoformat(entry["time"])
        return {name: seen.get(name) or datetime.fromtimestamp(self.path(kind, name).stat().st_mtime, UTC)
                for name in self.names(kind)}

    def names_with_history(self, kind: str) -> list[str]:
        """Configs with kept revisions or a file now (a deleted source keeps its history)."""
        folder = settings.data_dir() / "history" / kind
        kept = {p.name for p in folder.iterdir() if p.is_dir() and is_valid_name(p.name)} if folder.is_dir() else set()
        return sorted(kept | set(self.names(kind)))

    def revision_text(self, kind: str, name: str, revision: str) -> str | None:
        """The content of a revision of a config, None when it was not kept."""
        folder = _history_dir(kind, check_name(name))
        if not re.fullmatch(r"[0-9a-f]{16}", revision or "") or not folder.is_dir():
            return None
        found = sorted(folder.glob(f"*_{revision}.yaml"))
        return found[-1].read_text(encoding="utf-8") if found else None

    def restore_revision(self, kind: str, name: str, revision: str, *, actor: str | Principal,
                         expected_revision: str | None) -> str:
        """Save an earlier revision's content again (a new change in the history).

        ``expected_revision`` is the file's revision now (None when it was deleted), as for a save.
        """
        text = self.revision_text(kind, name, revision)
        if text is None:
            kept = ", ".join(c.revision_after for c in self.history(kind, name) if c.revision_after) or "none"
            raise ConfigNotFoundError(f"revision '{str(revision)[:40]}' of '{name}' was not kept; "
                                      f"pick one of the kept revisions: {kept}")
        return self._write(kind, name, text, actor=actor, expected_revision=expected_revision, action="restore",
                           restored_from=revision)


@dataclass(frozen=True)
class Change:
    """One line of a config's history: who did what, when, from which revision to which."""

    time: str
    actor: str
    action: str
    revision_before: str | None
    revision_after: str | None
    restored_from: str | None = None

    @classmethod
    def from_entry(cls, entry: dict[str, Any]) -> Change:
        return cls(str(entry.get("time", "")), str(entry.get("actor", "")), str(entry.get("action", "")),
                   entry.get("revision_before"), entry.get("revision_after"), entry.get("restored_from"))


def is_valid_name(name: Any) -> bool:
    return isinstance(name, str) and re.fullmatch(NAME_PATTERN, name) is not None


def check_name(name: str) -> str:
    if not is_valid_name(name):
        raise ValueError(
            f"'{str(name)[:80]}' is not a valid config name: use lower-case letters, digits and "
            "'_', starting with a letter, at most 63 characters (no paths, dots, '.yaml' or hidden names)"
        )
    return name


def _misnamed_summary(stem: str) -> SourceSummary:
    issue = ConfigIssue("", f"file name '{stem}.yaml' is not a valid source name: rename the file to lower-case "
                            "letters, digits and '_' (e.g. sales_de.yaml) and set name: to the same")
    return SourceSummary(name=stem, type=None, owner=None, destination=None, tables=0, enabled=False,
                         valid=False, issues=[issue])


def _text(value: Any) -> str | None:
    """A YAML value shown in a listing: text as is, anything else as its text (never a crash)."""
    return value if isinstance(value, str) or value is None else str(value)


def _require_actor(actor: str | Principal) -> Principal:
    name = actor.name if isinstance(actor, Principal) else actor
    if not isinstance(name, str) or not name.strip():
        raise ValueError("every change needs an actor (who makes it): pass actor=<user or service>")
    return access.as_principal(actor)


def _current_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _authorize(principal: Principal, action: str, kind: str, name: str, before: bytes | None,
               new_owner: str | None) -> None:
    """The actor may act on the file as it is (when it exists) and as it will be."""
    if before is not None:
        access.require(principal, action, _owner_of(kind, before), name=name, kind=kind)
    if before is None or new_owner != _owner_of(kind, before):
        access.require(principal, action, new_owner if kind == "sources" else None, name=name, kind=kind)


def _owner_of(kind: str, data: bytes) -> str | None:
    """The owner team of a file as it is on disk (None for destinations and unreadable files)."""
    if kind != "sources":
        return None
    parsed, _issues = parse_yaml(data.decode("utf-8", errors="replace"))
    owner = parsed.get("owner", parsed.get("team")) if isinstance(parsed, dict) else None
    return owner if isinstance(owner, str) else None


def _history_dir(kind: str, name: str) -> Path:
    return settings.data_dir() / "history" / kind / name


def _keep(kind: str, name: str, revision: str, data: bytes, *, baseline: bool = False) -> None:
    """Keep a revision's content: ``<UTC time>_<revision>.yaml``, written atomically.

    ``baseline``: the content a change started from, kept only when no earlier change kept it
    (a file written before history was kept, or copied into the folder by hand)."""
    folder = _history_dir(kind, name)
    if baseline and folder.is_dir() and any(folder.glob(f"*_{revision}.yaml")):
        return
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    atomic_write(folder / f"{stamp}_{revision}.yaml", data)


def _conflict_message(name: str, current: str | None, expected: str | None) -> str:
    if expected is None:
        return f"'{name}' already exists; open it and edit it, or choose another name"
    if current is None:
        return f"'{name}' was deleted since you opened it; save it under a name again to recreate it"
    return (f"'{name}' was changed by someone else since you opened it (revision {expected}, now "
            f"{current}); reload it, apply your change again and save")


def _same_device(a: Path, b: Path) -> bool:
    return a.stat().st_dev == b.parent.stat().st_dev


def _move(source: Path, target: Path) -> None:
    atomic_write(target, source.read_bytes())
    source.unlink()


def _git_commit(root: Path, path: Path, actor: str, message: str) -> dict[str, str]:
    """Commit one changed file when the config dir is a git repository; ``{"git": <commit or problem>}``.

    A failed commit never undoes the change (the file and the history folder hold it); the
    problem is recorded in the audit line instead."""
    if not (root / ".git").exists():
        return {}
    author = re.sub(r"[<>\n\r]", "", actor).strip() or "unknown"
    email = author if "@" in author else f"{author.replace(' ', '.')}@ingest.local"
    env = {**os.environ, "GIT_COMMITTER_NAME": "ingest portal", "GIT_COMMITTER_EMAIL": "ingest@ingest.local"}
    relative = str(path.relative_to(root))
    steps = (["add", "--all", "--", relative],
             ["commit", "--quiet", "--no-verify", f"--author={author} <{email}>", "-m", message, "--", relative],
             ["rev-parse", "--short", "HEAD"])
    try:
        for step in steps:
            done = subprocess.run(["git", "-C", str(root), *step], env=env, capture_output=True, text=True,
                                  timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        problem = getattr(exc, "stderr", None) or str(exc)
        return {"git": f"not committed: {mask(problem.strip())[:300]}"}
    return {"git": done.stdout.strip()}
