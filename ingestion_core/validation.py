"""Turns Pydantic's errors into messages a market-team user can act on.

Each :class:`ConfigIssue` names the YAML path (``tables[0].cursor``), what is wrong, the valid
values where there is a list of them, and how to fix it. Values of secret-bearing fields are
never repeated.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from ingestion_core.secrets import mask


@dataclass(frozen=True)
class ConfigIssue:
    path: str
    message: str
    severity: str = "error"  # or "warning" (deprecated keys migrated on load)

    def line(self, file: str) -> str:
        where = f"{file}:{self.path}" if self.path else file
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{where}: {prefix}{self.message}"


class ConfigError(ValueError):
    """A config that cannot be used; ``issues`` holds every problem found."""

    def __init__(self, issues: list[ConfigIssue], file: str = ""):
        self.issues = issues
        self.file = file
        super().__init__("\n".join(i.line(file or "config") for i in issues))


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
        path, field, owner, member = _locate(list(error["loc"]), data, root, error["type"])
        ctx = error.get("ctx") or {}
        if error["type"] in TAG_ERRORS and path in ("", "source"):
            path, error = "source.type", {**error, "ctx": {**ctx, "tag": _source_tag(data)}}
        if "at" in ctx:
            path = f"{path}.{ctx['at']}" if path else str(ctx["at"])
        if member:  # one error per member of a union like str | int: say it once
            alternatives.setdefault(path, []).append(member)
            message = (f"expected {' or '.join(alternatives[path])}; "
                       f"got {_shown(error.get('input'), field)}")
            issues[path] = ConfigIssue(path, message)
            continue
        issues.setdefault(f"{path}\0{error['msg']}", ConfigIssue(path, _explain(error, field, owner, path)))
    return list(issues.values())


def _source_tag(data: Any) -> str | None:
    source = data.get("source") if isinstance(data, dict) else None
    tag = source.get("type") if isinstance(source, dict) else None
    return tag if isinstance(tag, str) else None


# --- locating an error in the data and in the models ---------------------------------------

def _locate(
    loc: list[Any], data: Any, root: Any, error_type: str
) -> tuple[str, FieldInfo | None, Any, str | None]:
    """The YAML path of an error, its field, the model owning it, and the union member
    (``str``, ``int``...) the error is about when the last element of ``loc`` names one."""
    parts: list[str | int] = []
    node, kind, field, owner, member = data, root, None, None, None
    for index, elem in enumerate(loc):
        last = index == len(loc) - 1
        present = (isinstance(node, dict) and elem in node) or (
            isinstance(node, list) and isinstance(elem, int) and elem < len(node)
        )
        if not present and not (last and error_type == "missing"):
            kind = _pick_member(kind, elem, node)  # a union tag or member marker, not a key
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
    return format_path(parts), field, owner, member


def _members(kind: Any) -> list[Any]:
    origin = typing.get_origin(kind)
    if origin is typing.Annotated:
        return _members(typing.get_args(kind)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(kind) for m in _members(a)]
    return [kind]


def _pick_member(kind: Any, tag: Any, node: Any) -> Any:
    members = [m for m in _members(kind) if isinstance(m, type) and issubclass(m, BaseModel)]
    for member in members:
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
    members = [m for m in _members(kind) if isinstance(m, type) and issubclass(m, BaseModel)]
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
    for member in _members(kind):
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


def _is_secret(field: FieldInfo | None) -> bool:
    extra = field.json_schema_extra if field else None
    if isinstance(extra, dict) and extra.get("x-secret"):
        return True
    metadata = field.metadata if field else []
    return any(isinstance(getattr(m, "json_schema_extra", None), dict)
               and m.json_schema_extra.get("x-secret") for m in metadata)


# --- explaining ----------------------------------------------------------------------------

def _shown(value: Any, field: FieldInfo | None) -> str:
    if _is_secret(field):
        return "(value hidden)"
    text = repr(value) if not isinstance(value, str) else f"'{value}'"
    return mask(text if len(text) <= 80 else text[:77] + "...'")


def _explain(error: dict[str, Any], field: FieldInfo | None, owner: Any, path: str) -> str:
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    key = path.rsplit(".", 1)[-1] if path else ""
    if kind == "extra_forbidden" and owner is not None:
        valid = _keys(owner)
        close = difflib.get_close_matches(key.split("[")[0], valid, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"unknown key '{key}'{hint} Valid keys here: {', '.join(valid)}"
    if kind == "extra_forbidden":
        return f"unknown key '{key}'; remove it or fix its spelling"
    if kind == "missing":
        about = f" ({field.description.rstrip('.')})" if field and field.description else ""
        return f"'{key}' is required{about}; add it"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length', 1)} entry; add one"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"must be a mapping of keys to values; got {_shown(value, field)}"
    if kind == "literal_error":
        return f"{_shown(value, field)} is not allowed; choose one of {_choices(ctx.get('expected', ''))}"
    if kind in TAG_ERRORS:
        tags = _choices(ctx.get("expected_tags") or _source_types())
        if ctx.get("tag"):
            return f"'{ctx['tag']}' is not a known type; choose one of {tags}"
        return f"type is missing; set it to one of {tags}"
    if error["msg"].startswith(PYDANTIC_PHRASES):
        return f"{error['msg'].rstrip('.')}; got {_shown(value, field)}"
    return error["msg"]


MEMBER_NAMES = {"str": "text", "int": "a whole number", "float": "a number", "bool": "true or false",
                "list[...]": "a list", "dict[str,...]": "a mapping", "none": "nothing"}
TAG_ERRORS = ("union_tag_invalid", "unknown_source_type", "union_tag_not_found")
PYDANTIC_PHRASES = ("Input should", "String should", "List should", "Dictionary should",
                    "Value error", "Object has", "Tuple should")


def _choices(expected: Any) -> str:
    if isinstance(expected, str):
        return expected.replace("'", "").replace(" or ", ", ")
    return ", ".join(str(e) for e in expected)


def _source_types() -> str:
    from ingestion_core.models.sources import SOURCE_MODELS

    return ", ".join(SOURCE_MODELS)
