"""Turns Pydantic's errors into messages a market-team user can act on.

Each :class:`ConfigIssue` names the YAML path (``tables[0].cursor``), what is wrong, the valid
values where there is a list of them, and how to fix it. Values of secret-bearing fields are
never repeated.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Any

import annotated_types
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from ingestion_core.config.secrets import mask


@dataclass(frozen=True)
class ConfigIssue:
    path: str
    message: str
    severity: str = "error"  # or "warning" (deprecated keys migrated on load)

    def __post_init__(self) -> None:  # a value quoted in a message never breaks a line or hides text
        object.__setattr__(self, "path", printable(self.path))
        object.__setattr__(self, "message", printable(self.message))

    def line(self, file: str) -> str:
        file = printable(file)
        where = f"{file}:{self.path}" if self.path else file
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{where}: {prefix}{self.message}"


class ConfigError(ValueError):
    """A config that cannot be used; ``issues`` holds every problem found."""

    def __init__(self, issues: list[ConfigIssue], file: str = ""):
        self.issues = issues
        self.file = file
        super().__init__("\n".join(i.line(file or "config") for i in issues))


def printable(text: str) -> str:
    """``text`` with control and format characters (newline, NUL, U+202E, zero-width space...)
    written as escapes, so that one issue stays one line and shows what was really typed."""
    if text.isprintable():
        return text
    return "".join(c.encode("unicode_escape").decode("ascii") if unicodedata.category(c) in ("Cc", "Cf") else c
                   for c in text)


def format_path(parts: list[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def issues_from_error(exc: ValidationError, data: Any, root: Any) -> list[ConfigIssue]:
    """One issue per error, located in ``data`` (the YAML as loaded) and explained."""
    issues: dict[str, ConfigIssue] = {}
    alternatives: dict[str, list[str]] = {}
    for error in exc.errors():
        where = _locate(list(error["loc"]), data, root, error["type"])
        ctx = error.get("ctx") or {}
        if error["type"] in TAG_ERRORS and where.path == "" and _is_source_file(root):
            issue = _source_issue(data)
            issues.setdefault(issue.path, issue)
            continue
        path = where.path
        if "at" in ctx:
            path = f"{path}.{ctx['at']}" if path else str(ctx["at"])
        if where.member:  # one error per member of a union like str | int: say it once
            alternatives.setdefault(path, []).append(where.member)
            message = (f"expected {' or '.join(alternatives[path])}; "
                       f"got {_shown(error.get('input'), where.field)}")
            issues[path] = ConfigIssue(path, message)
            continue
        if error["type"] in TAG_ERRORS:
            path = f"{path}.type" if path else "type"
        message = _in_table(path, data, error["type"]) + _explain(error, where)
        issues.setdefault(f"{path}\0{error['msg']}", ConfigIssue(path, message))
    return list(issues.values())


# --- the source's type, which picks the file model -----------------------------------------

def _is_source_file(root: Any) -> bool:
    return any(isinstance(m, type) and issubclass(m, BaseModel) and "tables" in m.model_fields
               for m in type_members(root))


def _source_issue(data: Any) -> ConfigIssue:
    """Why the file model could not be chosen: ``source`` or its ``type`` is missing or wrong."""
    types_ = _source_types()
    source = data.get("source") if isinstance(data, dict) else None
    if source is None:
        keys = [k for k in data if isinstance(k, str)] if isinstance(data, dict) else []
        close = difflib.get_close_matches("source", keys, n=1)
        hint = f" (is '{close[0]}' meant to be 'source'?)" if close else ""
        return ConfigIssue("source", f"'source' is required{hint}: add source: with type: (one of "
                                     f"{', '.join(types_)}) and the connection fields")
    if not isinstance(source, dict):
        return ConfigIssue("source", f"must be a mapping with type: (one of {', '.join(types_)}) and the "
                                     f"connection fields; got {_shown(source, None)}")
    return ConfigIssue("source.type", _unknown_tag(source.get("type"), types_))


def _unknown_tag(tag: Any, valid: list[str]) -> str:
    choices = ", ".join(valid)
    if tag is None:
        return f"type is missing; set it to one of {choices}"
    if not isinstance(tag, str):
        return f"type must be one of {choices}; got {_shown(tag, None)}"
    close = difflib.get_close_matches(tag, valid, n=1)
    hint = f"; did you mean '{close[0]}'? Choose" if close else "; choose"
    return f"'{mask(tag)[:80]}' is not a known type{hint} one of {choices}"


def _tags(kind: Any) -> list[str]:
    """The ``type`` values a discriminated union accepts."""
    literals = [m.model_fields["type"].annotation for m in _models(kind) if "type" in m.model_fields]
    return [str(tag) for literal in literals for tag in typing.get_args(literal)]


def _source_types() -> list[str]:
    from ingestion_core.config.models.sources import SOURCE_MODELS

    return list(SOURCE_MODELS)


# --- locating an error in the data and in the models ---------------------------------------

@dataclass(frozen=True)
class _Location:
    path: str
    key: str  # the last key of the path ("" at the top), as the YAML spells it
    field: FieldInfo | None  # the field the error is about
    owner: Any  # the model holding that key
    member: str | None  # the union member ("text", "a number"...) the error is about
    expected: Any  # the type expected at the error


def _locate(loc: list[Any], data: Any, root: Any, error_type: str) -> _Location:
    """Walks ``loc`` through the data and the models together; parts of ``loc`` that are not
    keys of the data (union tags, member markers like ``str``) only pick the model."""
    if error_type == "invalid_key" and loc:
        loc = loc[:-1]  # the bad key is reported on its mapping
    parts: list[str | int] = []
    node, kind, field, owner, member = data, root, None, None, None
    for index, elem in enumerate(loc):
        last = index == len(loc) - 1
        present = not _is_tag(kind, elem, node) and (
            (isinstance(node, dict) and elem in node)
            or (isinstance(node, list) and isinstance(elem, int) and 0 <= elem < len(node))
        )
        if not present and not (last and error_type == "missing"):
            kind = _pick_member(kind, elem, node)
            member = MEMBER_NAMES.get(str(elem)) if last else None
            continue
        model = _model_of(kind, node)
        parts.append(elem)
        if model is not None and isinstance(elem, str):
            owner, field = model, _field(model, elem)
            kind = field.annotation if field else None
        elif isinstance(elem, int):
            kind = _item_type(kind)
        node = node[elem] if present else None
    key = next((str(p) for p in reversed(parts) if isinstance(p, str)), "")
    return _Location(format_path(parts), key, field, owner, member, kind)


def type_members(kind: Any) -> list[Any]:
    """The types a value may have: Annotated and unions unwrapped (``None`` included)."""
    origin = typing.get_origin(kind)
    if origin is typing.Annotated:
        return type_members(typing.get_args(kind)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(kind) for m in type_members(a)]
    return [kind]


def _models(kind: Any) -> list[type[BaseModel]]:
    return [m for m in type_members(kind) if isinstance(m, type) and issubclass(m, BaseModel)]


def _is_tag(kind: Any, elem: Any, node: Any) -> bool:
    """``elem`` names the union member chosen for ``node`` (auth type ``api_key``), even when
    the data also has a key of that name (the ``api_key`` field)."""
    if len(_models(kind)) < 2 or not isinstance(node, dict) or not isinstance(elem, str):
        return False
    source = node.get("source")
    tag = source.get("type") if isinstance(source, dict) and "tables" in node else node.get("type")
    return tag == elem and _pick_member(kind, elem, node) is not kind


def _pick_member(kind: Any, tag: Any, node: Any) -> Any:
    for member in _models(kind):
        literal = member.model_fields.get("type")
        if literal is not None and tag in typing.get_args(literal.annotation):
            return member
        if isinstance(node, dict) and tag in _file_tag(member):
            return member
    return kind


def _file_tag(model: type[BaseModel]) -> tuple[str, ...]:
    source = model.model_fields.get("source")
    if source is None:
        return ()
    literal = getattr(source.annotation, "model_fields", {}).get("type")
    return typing.get_args(literal.annotation) if literal else ()


def _model_of(kind: Any, node: Any) -> type[BaseModel] | None:
    members = _models(kind)
    if len(members) == 1:
        return members[0]
    if isinstance(node, dict):
        for member in members:
            literal = member.model_fields.get("type")
            if literal is not None and node.get("type") in typing.get_args(literal.annotation):
                return member
            if isinstance(node.get("source"), dict) and node["source"].get("type") in _file_tag(member):
                return member
    return None


def _item_type(kind: Any) -> Any:
    for member in type_members(kind):
        if typing.get_origin(member) in (list, dict):
            return typing.get_args(member)[-1]
    return None


def _field(model: type[BaseModel], key: str) -> FieldInfo | None:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info
    return None


def _keys(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def is_secret_field(field: FieldInfo | None) -> bool:
    """True for fields marked ``x-secret`` (passwords, tokens, URLs that may hold a password),
    also when the mark sits inside the annotation (``SecretRef | None``)."""
    if field is None:
        return False
    return _marked_secret([field, *field.metadata]) or _secret_annotation(field.annotation)


def _marked_secret(metadata: list[Any]) -> bool:
    return any(isinstance(getattr(m, "json_schema_extra", None), dict)
               and m.json_schema_extra.get("x-secret") for m in metadata)


def _secret_annotation(annotation: Any) -> bool:
    if typing.get_origin(annotation) is typing.Annotated:
        return _marked_secret(list(annotation.__metadata__)) or _secret_annotation(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_secret_annotation(a) for a in typing.get_args(annotation))
    return False


_is_secret = is_secret_field


def _holds_secrets(field: FieldInfo | None) -> bool:
    """A field expecting a model with secret fields (auth, credentials): a bare value given
    in its place may well be the secret itself."""
    models = _models(field.annotation) if field else []
    return any(is_secret_field(f) for m in models for f in m.model_fields.values())


# --- explaining ----------------------------------------------------------------------------

def _shown(value: Any, field: FieldInfo | None) -> str:
    if _is_secret(field) or _holds_secrets(field):
        return "(value hidden)"
    text = f"'{value}'" if isinstance(value, str) else value.isoformat() if isinstance(value, date) else repr(value)
    return mask(text if len(text) <= 80 else text[:77] + "...")


def _explain(error: dict[str, Any], where: _Location) -> str:
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "extra_forbidden":
        return _unknown_key(where)
    if kind == "invalid_key":
        return (f"key {_shown(value, None)} is not text; keys are names such as "
                f"{_example_keys(where)}: fix the key or put it in quotes")
    if kind == "missing":
        field = _field(where.owner, where.key) if where.owner else where.field
        about = f" ({field.description.rstrip('.')})" if field and field.description else ""
        choices = _literal_choices(field)
        return f"'{where.key}' is required{about}; " + (f"set it to one of {', '.join(choices)}" if choices
                                                         else "add it")
    if kind in TAG_ERRORS:
        tag = value.get("type") if isinstance(value, dict) else ctx.get("tag")
        return _unknown_tag(tag, _choices(ctx.get("expected_tags", "")) or _tags(where.expected))
    if kind == "literal_error":
        choices = _choices(ctx.get("expected", ""))
        return f"{_shown(value, where.field)} is not allowed; choose one of {', '.join(choices)}"
    if kind in BOUND_ERRORS:
        return _out_of_range(where, ctx, value)
    plain = _plain(kind, ctx, where)
    if plain:
        hint = "" if _is_secret(where.field) else _quote_hint(kind, value)
        return f"{plain}; got {_shown(value, where.field)}{hint}{_too_short_fix(kind, ctx, where)}"
    if error["msg"].startswith(PYDANTIC_PHRASES):
        return f"{error['msg'].rstrip('.')}; got {_shown(value, where.field)}"
    return error["msg"]


def _literal_choices(field: FieldInfo | None) -> list[str]:
    """The values a field of a Literal type accepts (``format``: csv, jsonl, parquet)."""
    members = type_members(field.annotation) if field else []
    return [str(v) for m in members if typing.get_origin(m) is typing.Literal for v in typing.get_args(m)]


def _unknown_key(where: _Location) -> str:
    owner = where.owner if isinstance(where.owner, type) else None
    label = getattr(owner, "unknown_key_label", "key")
    if owner is None:
        return f"unknown {label} '{where.key}'; remove it or fix its spelling"
    valid = _keys(owner)
    close = difflib.get_close_matches(where.key, valid, n=1)
    if close:
        return f"unknown {label} '{where.key}'; did you mean '{close[0]}'? Valid here: {', '.join(valid)}"
    return f"unknown {label} '{where.key}'; remove it or use one of: {', '.join(valid)}"


def _example_keys(where: _Location) -> str:
    models = _models(where.expected) or ([where.owner] if isinstance(where.owner, type) else [])
    keys = _keys(models[0])[:3] if models else []
    return ", ".join(f"'{k}'" for k in keys) or "'name'"


def _plain(kind: str, ctx: dict[str, Any], where: _Location) -> str | None:
    """Pydantic's common complaints in plain words ("must be at least 1")."""
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        models = _models(where.expected)
        example = getattr(models[0], "yaml_example", None) if len(models) == 1 else None
        return "must be a mapping of keys to values" + (f", e.g. {example}" if example else "")
    template = PLAIN_MESSAGES.get(kind)
    if template is None:
        return None
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    one = ctx.get("min_length", ctx.get("max_length")) == 1
    try:
        return template.format(**ctx, s="" if one else "s", entries="entry" if one else "entries")
    except (KeyError, IndexError, ValueError):
        return template.split("{", 1)[0].rstrip(" ,;") or None


def _bounds_text(field: FieldInfo | None, ctx: dict[str, Any]) -> str:
    """'must be between 1 and 10' when the field has both inclusive bounds, 'must be more than 0
    and at most 3600' for others, else the bound broken."""
    low = high = None
    for meta in field.metadata if field else []:
        if isinstance(meta, (annotated_types.Ge, annotated_types.Gt)):
            low = ("at least", meta.ge) if isinstance(meta, annotated_types.Ge) else ("more than", meta.gt)
        if isinstance(meta, (annotated_types.Le, annotated_types.Lt)):
            high = ("at most", meta.le) if isinstance(meta, annotated_types.Le) else ("less than", meta.lt)
    if low and high and low[0] == "at least" and high[0] == "at most":
        return f"must be between {_number(low[1])} and {_number(high[1])}"
    if low and high:
        return f"must be {low[0]} {_number(low[1])} and {high[0]} {_number(high[1])}"
    for key, words in (("ge", "at least"), ("gt", "more than"), ("le", "at most"), ("lt", "less than")):
        if key in ctx:
            return f"must be {words} {_number(ctx[key])}"
    return "is out of range"


def _number(value: Any) -> Any:
    """0.0 -> 0, 2.5 -> 2.5: a bound as a person writes it."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _out_of_range(where: _Location, ctx: dict[str, Any], value: Any) -> str:
    """'retry_attempts' must be between 0 and 20; got -3: set a value in that range, or leave it
    empty for the default (5)."""
    default = where.field.default if where.field else PydanticUndefined
    keep = ("" if default is PydanticUndefined or callable(default)
            else ", or leave it empty (not set)" if default is None
            else f", or leave it empty for the default ({_number(default)})")
    name = f"'{where.key}' " if where.key else ""
    return f"{name}{_bounds_text(where.field, ctx)}; got {_shown(value, where.field)}: set a value in that range{keep}"


# A list that may not be empty: how to fill it, by its key (else: add one)
EMPTY_LIST_FIXES = {
    "tables": "Choose at least one table: tick one in the form's Tables step, or add one by name (in YAML: "
              "an entry under tables:, e.g. - name: orders)",
}


def _too_short_fix(kind: str, ctx: dict[str, Any], where: _Location) -> str:
    if kind != "too_short":
        return ""
    fix = EMPTY_LIST_FIXES.get(where.path) or f"Add at least {ctx.get('min_length', 1)}"
    return f". {fix}"


def _in_table(path: str, data: Any, kind: str) -> str:
    """'table 'orders' (files 'orders/*'): ' for a missing or out-of-range value inside an entry of
    ``tables:``, so the message says which table (or file set) it is about wherever it is shown
    (others quote what is wrong, which tells the entry)."""
    match = _TABLE_ENTRY.match(path) if kind in ("missing", *BOUND_ERRORS) else None
    tables = data.get("tables") if isinstance(data, dict) else None
    if not match or not isinstance(tables, list) or int(match[1]) >= len(tables):
        return ""
    entry = tables[int(match[1])]
    name, glob = (entry.get("name"), entry.get("glob")) if isinstance(entry, dict) else (None, None)
    if not isinstance(name, str) or not name:
        return ""
    files = f" (files {_shown(glob, None)})" if isinstance(glob, str) and glob else ""
    return f"table {_shown(name, None)}{files}: "


def _quote_hint(kind: str, value: Any) -> str:
    if kind != "string_type" or isinstance(value, (list, dict)) or value is None:
        return ""
    if isinstance(value, bool):
        return ". YAML reads yes / no / on / off / true / false as true or false: put the value in quotes"
    return ". Put the value in quotes to make it text"


MEMBER_NAMES = {"str": "text", "int": "a whole number", "float": "a number", "bool": "true or false",
                "list[...]": "a list", "dict[str,...]": "a mapping", "none": "nothing"}
TAG_ERRORS = ("union_tag_invalid", "unknown_source_type", "union_tag_not_found")
_TABLE_ENTRY = re.compile(r"^tables\[(\d+)\]\.")
BOUND_ERRORS = ("greater_than_equal", "greater_than", "less_than_equal", "less_than")
PLAIN_MESSAGES = {
    "string_type": "must be text",
    "int_type": "must be a whole number", "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number", "float_parsing": "must be a number",
    "finite_number": "must be a finite number (not .nan or .inf)",
    "bool_type": "must be true or false", "bool_parsing": "must be true or false",
    "list_type": "must be a list, e.g. [a, b]",
    "string_too_short": "must have at least {min_length} character{s}",
    "string_too_long": "must have at most {max_length} character{s}",
    "too_short": "needs at least {min_length} {entries}",
    "too_long": "may have at most {max_length} {entries}",
}
PYDANTIC_PHRASES = ("Input should", "String should", "List should", "Dictionary should",
                    "Value error", "Object has", "Tuple should")


def _choices(expected: Any) -> list[str]:
    if isinstance(expected, str):
        return [c.strip() for c in expected.replace("'", "").replace(" or ", ", ").split(",") if c.strip()]
    return [str(e) for e in expected]
