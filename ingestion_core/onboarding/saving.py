"""Checking and saving drafts (form or YAML mode): validation with the form's name rules, the
exact YAML, the diff, the save with its revision check and typed secrets, and the file actions
of the sources list (enable / disable, delete to the bin, restore)."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ingestion_core.config.access import Principal
from ingestion_core.config.models.source_file import SourceFileBase
from ingestion_core.config.secrets import find_references, register_secret, store_secret
from ingestion_core.config.store import (
    SCHEMA_COMMENT,
    ConfigStore,
    ConflictError,
    dump_yaml,
    is_valid_name,
    parse_yaml,
    revision_of,
    validate_source_data,
)
from ingestion_core.config.validation import ConfigError, ConfigIssue
from ingestion_core.engine.errors import explain
from ingestion_core.onboarding.drafts import Draft, masked, reference_for, with_secret_references

# --- validation ----------------------------------------------------------------------------

def validate_draft(draft: Draft, store: ConfigStore | None = None) -> tuple[SourceFileBase | None, list[ConfigIssue]]:
    """The draft with references in place of typed secrets, validated as it will be saved.

    A new draft whose name is taken gets an issue at ``name``. Messages never hold a typed
    secret."""
    store = store or ConfigStore()
    for value in draft.secrets.values():
        register_secret(value)
    data = with_secret_references(draft.data, draft.secrets)
    try:
        # as the save will check it: the file alone, then `after` against the other sources
        model, issues = store.with_dependency_issues(*validate_source_data(data, store.destinations()))
    except Exception as exc:  # a validator tripping over odd input must not take the form down
        model, issues = None, [ConfigIssue("", f"the form could not be checked: {explain(exc)[0]}")]
    issues = [*issues, *_name_issues(draft, store)]
    issues = [ConfigIssue(i.path, masked(i.message, draft.secrets), i.severity) for i in issues]
    if any(i.severity == "error" for i in issues):
        model = None
    return model, issues


def _name_issues(draft: Draft, store: ConfigStore) -> list[ConfigIssue]:
    name = draft.data.get("name")
    if not isinstance(name, str) or not is_valid_name(name):
        return []
    if draft.original_name is not None and name != draft.original_name:
        return [ConfigIssue("name", f"a saved source cannot be renamed here; keep '{draft.original_name}', "
                                    "or duplicate it under the new name and delete the old one")]
    if draft.is_new and store.path("sources", name).exists():
        return [ConfigIssue("name", f"a source named '{name}' already exists; choose another name, or open "
                                    "it from the Sources page to edit it")]
    return []


def issues_under(issues: list[ConfigIssue], prefixes: tuple[str, ...]) -> list[ConfigIssue]:
    """Issues at one of the paths or below it (``tables`` covers ``tables[2].cursor``)."""
    return [i for i in issues if any(is_under(i.path, p) for p in prefixes)]


def is_under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith((prefix + ".", prefix + "["))


LEADING_KEYS = ("type", "name", "schema", "source_table")  # read first in a mapping


def draft_yaml(model: SourceFileBase, like: Any = None) -> str:
    """The exact text :func:`save_draft` writes for a valid draft: the file as
    :func:`dump_yaml` writes it, with ``type`` and the table names leading their mappings, or,
    when editing a saved file (``like``: its data), the keys in that file's order so that the
    diff shows only what changed."""
    import yaml

    text = dump_yaml(model, SCHEMA_COMMENT)
    data = yaml.safe_load(text)
    data = _ordered_like(data, like) if isinstance(like, dict) else {
        key: _leading_keys_first(value) for key, value in data.items()}
    return SCHEMA_COMMENT + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False,
                                           width=100)


def _ordered_like(value: Any, like: Any) -> Any:
    if isinstance(value, dict):
        known = like if isinstance(like, dict) else {}
        keys = [k for k in known if k in value] + [k for k in value if k not in known]
        return {k: _ordered_like(value[k], known.get(k)) for k in keys}
    if isinstance(value, list):
        others = like if isinstance(like, list) else []
        return [_ordered_like(v, others[i] if i < len(others) else None) for i, v in enumerate(value)]
    return value


def _leading_keys_first(value: Any) -> Any:
    if isinstance(value, list):
        return [_leading_keys_first(v) for v in value]
    if not isinstance(value, dict):
        return value
    ordered = {k: value[k] for k in LEADING_KEYS if k in value}
    ordered.update((k, v) for k, v in value.items() if k not in ordered)
    return {k: _leading_keys_first(v) for k, v in ordered.items()}


def saved_data(draft: Draft) -> Any:
    """The data of the file the draft was opened from (None for a new source)."""
    return parse_yaml(draft.text)[0] if draft.text else None


def yaml_of_draft(draft: Draft) -> str:
    """The draft as YAML even when it is not valid yet (for switching to YAML mode)."""
    import yaml

    model, _ = validate_draft(draft)
    if model is not None:
        return draft_yaml(model, saved_data(draft))
    data = with_secret_references(draft.data, draft.secrets)
    return SCHEMA_COMMENT + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def diff_text(old: str, new: str, name: str) -> str:
    """A unified diff of the saved file and the text about to be saved ('' when equal)."""
    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                 f"saved/{name}.yaml", f"new/{name}.yaml")
    return "".join(lines)


# --- saving --------------------------------------------------------------------------------

@dataclass(frozen=True)
class SaveResult:
    name: str
    path: Path
    revision: str
    stored_secrets: list[str]  # the references written to the provider (never the values)


def save_draft(draft: Draft, *, actor: str | Principal, store: ConfigStore | None = None) -> SaveResult:
    """Validate, write the typed secrets into the provider and the YAML into the config dir.

    Raises :class:`ConfigError` (every issue) or :class:`ConflictError` (the file changed since
    it was opened, or a new source's name is taken); in both cases nothing is written.
    """
    store = store or ConfigStore()
    model, issues = validate_draft(draft, store)
    if model is None:
        raise ConfigError([i for i in issues if i.severity == "error"])
    text = draft_yaml(model, saved_data(draft))
    store.authorize("sources", model.name, actor=actor, new_owner=model.owner)  # before any secret is stored
    return _write(model.name, text, draft, actor=actor, store=store)


def save_yaml(text: str, draft: Draft, *, actor: str | Principal, store: ConfigStore | None = None) -> SaveResult:
    """YAML mode: save text as typed (comments kept), under the same rules as the form.

    Secrets typed in the form before switching are stored when the text still holds their
    references."""
    store = store or ConfigStore()
    model, issues = validate_yaml(text, draft, store)
    if model is None:
        raise ConfigError([i for i in issues if i.severity == "error"])
    store.authorize("sources", model.name, actor=actor, new_owner=model.owner)  # before any secret is stored
    return _write(model.name, text, draft, actor=actor, store=store)


def validate_yaml(text: str, draft: Draft, store: ConfigStore | None = None) -> tuple[Any, list[ConfigIssue]]:
    """YAML mode's check on every change: syntax, the models, the name rules of the form."""
    store = store or ConfigStore()
    data, issues = parse_yaml(text)
    if issues:
        return None, issues
    try:
        model, issues = validate_source_data(data, store.destinations())
    except Exception as exc:  # never let odd input take the page down
        return None, [ConfigIssue("", f"the YAML could not be checked: {explain(exc)[0]}")]
    shadow = Draft(data if isinstance(data, dict) else {}, {}, draft.revision, draft.original_name)
    issues = [*issues, *_name_issues(shadow, store)]
    return (None if any(i.severity == "error" for i in issues) else model), issues


def _write(name: str, text: str, draft: Draft, *, actor: str | Principal, store: ConfigStore) -> SaveResult:
    path = store.path("sources", name)
    _refuse_conflict(path, name, draft.revision)
    stored = _store_typed_secrets(text, draft, name)
    revision = store.save_text("sources", name, text, actor=actor, expected_revision=draft.revision)
    return SaveResult(name, path, revision, stored)


def _refuse_conflict(path: Path, name: str, expected: str | None) -> None:
    """Checked before the secrets are written; ConfigStore checks again under its lock."""
    try:
        current = revision_of(path.read_bytes())
    except FileNotFoundError:
        current = None
    if current != expected:
        if expected is None:
            raise ConflictError(f"'{name}' already exists; open it and edit it, or choose another name")
        if current is None:
            raise ConflictError(f"'{name}' was deleted since you opened it; save it under a name again "
                                "to recreate it")
        raise ConflictError(f"'{name}' was changed by someone else since you opened it; your changes are "
                            "not saved. Copy them, reload the source, apply them again and save")


def _store_typed_secrets(text: str, draft: Draft, name: str) -> list[str]:
    """Each typed secret whose reference the text holds goes into the provider."""
    present = {ref.text for ref in find_references(parse_yaml(text)[0])}
    stored = []
    for path, value in draft.secrets.items():
        reference = reference_for(name, path)
        if value and reference in present:
            store_secret(reference, value)
            stored.append(reference)
    return stored


def set_enabled(name: str, enabled: bool, *, actor: str | Principal, expected_revision: str | None = None,
                store: ConfigStore | None = None) -> str:
    """Turn a source on or off, keeping the file's comments; returns the new revision."""
    store = store or ConfigStore()
    text, revision = store.read("sources", name)
    if expected_revision is not None and expected_revision != revision:
        raise ConflictError(f"'{name}' was changed by someone else since you opened it; reload and try again")
    new_text = _with_enabled(text, enabled)
    return store.save_text("sources", name, new_text, actor=actor, expected_revision=revision)


_ENABLED_LINE = re.compile(r"^enabled:[^\n#]*", re.M)
_NAME_LINE = re.compile(r"^name:[^\n]*\n", re.M)


def _with_enabled(text: str, enabled: bool) -> str:
    data, issues = parse_yaml(text)
    if issues or not isinstance(data, dict):
        raise ConfigError(issues or [ConfigIssue("", "the file is not a mapping")])
    value = "true" if enabled else "false"
    if _ENABLED_LINE.search(text):
        candidate = _ENABLED_LINE.sub(f"enabled: {value}", text, count=1)
    elif _NAME_LINE.search(text):
        candidate = _NAME_LINE.sub(lambda m: m.group(0) + f"enabled: {value}\n", text, count=1)
    else:
        candidate = ""
    if candidate and parse_yaml(candidate)[0] == {**data, "enabled": enabled}:
        return candidate
    model, issues = validate_source_data(data)
    if model is None:
        raise ConfigError(issues)
    return dump_yaml(model.model_copy(update={"enabled": enabled}), SCHEMA_COMMENT)


def delete_source(name: str, *, actor: str | Principal, expected_revision: str | None = None,
                  store: ConfigStore | None = None) -> Path:
    """Move a source file to the bin (recoverable with :func:`restore_source`)."""
    return (store or ConfigStore()).delete("sources", name, actor=actor, expected_revision=expected_revision)


def deleted_sources(store: ConfigStore | None = None) -> list[Path]:
    return (store or ConfigStore()).deleted("sources")


def restore_source(binned: Path, *, actor: str | Principal, store: ConfigStore | None = None) -> str:
    return (store or ConfigStore()).restore(binned, actor=actor)


def bin_folder() -> Path:
    """Where deleted sources go (``INGEST_DATA_DIR/bin/sources``)."""
    from ingestion_core.common import settings

    return settings.data_dir() / "bin" / "sources"


def bin_entry_label(binned: Path) -> str:
    """``sales_de (deleted 2024-05-01 10:30 UTC)`` for a file in the bin."""
    name, _, rest = binned.name.partition(".")
    stamp = rest.split(".", 1)[0]
    try:
        when = datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ").strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        when = stamp
    return f"{name} (deleted {when})"
