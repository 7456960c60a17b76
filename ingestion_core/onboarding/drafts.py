"""Drafts: the source file as plain data a form edits, paths into it, typed secrets and the
references that replace them, and the helpers that fill tables from discovery."""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from ingestion_core.config.models.source_file import SOURCE_FILE_MODELS, TABLE_MODELS
from ingestion_core.config.models.sources import SOURCE_MODELS, SQL_SOURCE_TYPES
from ingestion_core.config.secrets import SecretReference, is_reference, locate_secret, mask, parse_reference
from ingestion_core.config.store import ConfigStore, is_valid_name, parse_yaml
from ingestion_core.config.validation import ConfigIssue, format_path, is_secret_field

PLACEHOLDER_NAME = "new_source"  # secret references of a draft whose name is not valid yet


# --- drafts --------------------------------------------------------------------------------

@dataclass
class Draft:
    """What a form edits. ``revision`` is the revision of the file it was opened from (None:
    a new source); ``original_name`` the name it was opened under."""

    data: dict[str, Any]
    secrets: dict[str, str] = field(default_factory=dict)
    revision: str | None = None
    original_name: str | None = None
    text: str = ""  # the file as it was opened (for the diff)

    @property
    def is_new(self) -> bool:
        return self.original_name is None

    @property
    def source_type(self) -> str | None:
        source = self.data.get("source")
        kind = source.get("type") if isinstance(source, dict) else None
        return kind if isinstance(kind, str) else None


def source_types() -> dict[str, str]:
    """Every source type with what it is, for a picker (``postgres: PostgreSQL.``)."""
    return {kind: model.model_fields["type"].description or kind for kind, model in SOURCE_MODELS.items()}


def new_draft(source_type: str) -> Draft:
    if source_type not in SOURCE_MODELS:
        raise ValueError(f"unknown source type '{source_type}'; choose one of {', '.join(SOURCE_MODELS)}")
    return Draft({"source": {"type": source_type}, "tables": []})


def source_templates(store: ConfigStore | None = None) -> dict[str, str]:
    """Source templates under ``templates/``: name -> source type (destination templates and
    unreadable files left out)."""
    store = store or ConfigStore()
    found: dict[str, str] = {}
    for path in sorted((store.root / "templates").glob("*.yaml")):
        data, issues = parse_yaml(path.read_text(encoding="utf-8"))
        source = data.get("source") if isinstance(data, dict) and not issues else None
        if isinstance(source, dict) and source.get("type") in SOURCE_MODELS:
            found[path.stem] = source["type"]
    return found


def draft_from_template(template: str, store: ConfigStore | None = None) -> Draft:
    """A new draft filled from a template; name and secret references are cleared so that the
    user names the source and types its secrets."""
    store = store or ConfigStore()
    path = store.root / "templates" / f"{template}.yaml"
    if not is_valid_name(template) or not path.is_file():
        raise ValueError(f"no template named '{template}'; there are: {', '.join(source_templates(store))}")
    data, issues = parse_yaml(path.read_text(encoding="utf-8"))
    if issues or not isinstance(data, dict):
        raise ValueError(f"template '{template}' is not readable: {issues[0].message if issues else 'not a mapping'}")
    data = _drop_references(data)
    data.pop("name", None)
    data.pop("dataset", None)  # derived from the name by default
    return Draft(data)


def _drop_references(value: Any) -> Any:
    """Remove values that are whole secret references (the template's, not the user's)."""
    if isinstance(value, dict):
        return {k: _drop_references(v) for k, v in value.items() if not (isinstance(v, str) and is_reference(v))}
    if isinstance(value, list):
        return [_drop_references(v) for v in value]
    return value


def load_draft(name: str, store: ConfigStore | None = None) -> tuple[Draft, list[ConfigIssue]]:
    """A saved source as a draft, with its revision; an invalid file loads with its issues
    (open it in YAML mode when it cannot be read as a mapping)."""
    store = store or ConfigStore()
    text, revision = store.read("sources", name)
    data, issues = parse_yaml(text)
    if not issues:
        _, issues = store.validate_text("sources", text, name)
    return Draft(data if isinstance(data, dict) else {}, {}, revision, name, text), issues


def duplicate_draft(name: str, new_name: str | None = None, store: ConfigStore | None = None) -> Draft:
    """A new draft copied from a saved source. Secret references keep pointing to the
    original's secrets until the user replaces them."""
    draft, _ = load_draft(name, store)
    data = copy.deepcopy(draft.data)
    data["name"] = new_name if new_name is not None else free_name(f"{name}_copy", store)
    if data.get("dataset") in (None, name):
        data.pop("dataset", None)
    return Draft(data)


def free_name(wanted: str, store: ConfigStore | None = None) -> str:
    store = store or ConfigStore()
    taken = set(store.names("sources"))
    base = wanted[:60]
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


# --- paths into the data -------------------------------------------------------------------

_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def parse_path(path: str) -> list[str | int]:
    """``tables[0].cursor`` -> ``["tables", 0, "cursor"]`` (the format of ConfigIssue.path)."""
    return [int(index) if index else key for key, index in _PART.findall(path)]


def get_path(data: Any, path: str, default: Any = None) -> Any:
    node = data
    for part in parse_path(path):
        in_list = isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node)
        if not (in_list or (isinstance(part, str) and isinstance(node, dict) and part in node)):
            return default
        node = node[part]
    return node


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set a value, creating mappings on the way; lists must exist up to the index."""
    parts = parse_path(path)
    node: Any = data
    for part, following in itertools.pairwise(parts):
        if isinstance(part, int):
            node = node[part]
            continue
        if not isinstance(node.get(part), (dict, list)):
            node[part] = [] if isinstance(following, int) else {}
        node = node[part]
    node[parts[-1]] = value


def remove_path(data: dict[str, Any], path: str) -> None:
    parts = parse_path(path)
    parent = get_path(data, format_path(parts[:-1])) if len(parts) > 1 else data
    if isinstance(parent, dict):
        parent.pop(parts[-1], None)


# --- secrets -------------------------------------------------------------------------------

def secret_key(path: str) -> str:
    """The key a typed secret gets in the source's section: the field name (``password``)."""
    return str(parse_path(path)[-1])


def reference_for(source_name: str, path: str) -> str:
    section = source_name if is_valid_name(source_name) else PLACEHOLDER_NAME
    return f"${{secrets.{section}.{secret_key(path)}}}"


def with_secret_references(data: dict[str, Any], secrets: dict[str, str]) -> dict[str, Any]:
    """A copy of ``data`` with a reference in the place of every typed (non-empty) secret."""
    result = copy.deepcopy(data)
    name = result.get("name") if isinstance(result.get("name"), str) else ""
    for path, value in secrets.items():
        if value:
            try:
                set_path(result, path, reference_for(name, path))
            except (TypeError, IndexError, AttributeError, KeyError):
                continue  # the field's parent went away (auth type changed): the secret is not used
    return result


@dataclass(frozen=True)
class SecretStatus:
    is_set: bool
    where: str  # the place it was found, or every place looked


def secret_status(reference: str) -> SecretStatus:
    """Whether a reference resolves, and where; never returns the value."""
    try:
        ref = parse_reference(reference)
    except ValueError:
        return SecretStatus(False, "not a reference")
    where, looked = locate_secret(ref)
    return SecretStatus(True, where) if where else SecretStatus(False, "; ".join(looked))


def is_secret_path(source_type: str | None, path: str) -> bool:
    """True when ``path`` (``source.password``, ``source.auth.token``) is a secret field of
    the file model of ``source_type``."""
    model: Any = SOURCE_FILE_MODELS.get(source_type or "")
    info = None
    for part in parse_path(path):
        if isinstance(part, int) or model is None:
            return False
        info = _field_by_key(model, part)
        if info is None:
            return False
        model = _single_model(info.annotation)
    return is_secret_field(info)


def _field_by_key(model: type[BaseModel], key: str) -> Any:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info
    return None


def _single_model(annotation: Any) -> type[BaseModel] | None:
    from ingestion_core.config.validation import _models

    models = _models(annotation)
    return models[0] if len(models) == 1 else None


def masked(message: str, secrets: dict[str, str]) -> str:
    for value in sorted((v for v in secrets.values() if v), key=len, reverse=True):
        message = message.replace(value, "***")
    return mask(message)


def table_entry(source_type: str, table: Any) -> dict[str, Any]:
    """A ``tables:`` entry for a discovered table: name, schema and the declared key."""
    entry: dict[str, Any] = {"name": table.name}
    if table.schema and source_type != "sqlite":
        entry["schema"] = table.schema
    return entry


FILE_FORMATS = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
                ".parquet": "parquet", ".pq": "parquet"}


def file_table_entry(glob: str, name: str = "") -> dict[str, Any]:
    """A ``tables:`` entry for a filesystem glob: name and format guessed from the glob."""
    stem = glob.rstrip("/").rsplit("/", 1)[-1]
    suffix = "." + stem.rsplit(".", 1)[-1].lower() if "." in stem else ""
    folder = glob.split("/")[0] if "/" in glob else ""
    base = folder if folder and "*" not in folder else stem.split(".")[0].replace("*", "")
    guessed = re.sub(r"[^a-z0-9_]+", "_", base.lower())
    entry: dict[str, Any] = {"name": name or guessed.strip("_") or "files", "glob": glob}
    if suffix in FILE_FORMATS:
        entry["format"] = FILE_FORMATS[suffix]
    return entry


def table_model(source_type: str | None) -> type[BaseModel] | None:
    return TABLE_MODELS.get(source_type or "")


def is_sql(source_type: str | None) -> bool:
    return source_type in SQL_SOURCE_TYPES


def describe_reference(reference: str) -> str:
    """Where a reference points, in words (never the value)."""
    try:
        ref: SecretReference = parse_reference(reference)
    except ValueError:
        return reference
    if ref.kind == "env":
        return f"environment variable {ref.path}"
    *section, key = ref.parts
    return f"secrets file, section [{'.'.join(section)}], key {key}"


def expand_check(entry: Any) -> Any:
    """A check in its long form, for the form: ``{not_null: id}`` -> ``{not_null: {column: id}}``.
    Saving writes the short form back where it fits."""
    from ingestion_core.config.models.checks import CHECKS

    if not isinstance(entry, dict) or len(entry) != 1:
        return entry
    kind, value = next(iter(entry.items()))
    spec = CHECKS.get(kind)
    if spec is None or spec.shorthand is None or isinstance(value, dict) or value is None:
        return entry
    if spec.shorthand == "columns" and not isinstance(value, list):
        value = [value]
    return {kind: {spec.shorthand: value}}


def autofill_table(entry: dict[str, Any], info: Any, default_mode: str) -> list[str]:
    """Fill what discovery knows and the mode needs: the first cursor candidate for
    incremental, the declared primary key for merge / scd2. Returns the keys it set."""
    if not isinstance(entry, dict) or info is None:
        return []
    mode = entry.get("mode") or default_mode
    filled = []
    if mode == "incremental" and not entry.get("cursor") and info.cursor_candidates:
        entry["cursor"] = info.cursor_candidates[0]
        filled.append("cursor")
    if mode in ("merge", "scd2") and not entry.get("primary_key") and info.primary_key:
        entry["primary_key"] = list(info.primary_key)
        filled.append("primary_key")
    return filled


def parse_yaml_text(text: str) -> tuple[dict[str, Any], list[ConfigIssue]]:
    """YAML text as the mapping a form can edit, or the reason it cannot be one."""
    data, issues = parse_yaml(text)
    if issues:
        return {}, issues
    if not isinstance(data, dict):
        return {}, [ConfigIssue("", "a source file must be a mapping (name:, owner:, source:, tables: ...)")]
    return data, []
