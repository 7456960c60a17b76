"""What a form shows for each field of a config model, read from the model itself: label, help
text (the field's description), default, choices, required-ness and a *kind* that picks the
widget (see :mod:`portal.onboarding.widgets`). A field added to a model shows up in the forms with no
page code. No Streamlit here: the fuzz tests call these functions directly.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import annotated_types
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from ingestion_core.config.models.tables import TableDefaults
from ingestion_core.config.validation import is_secret_field, type_members

MISSING = object()
SCALARS = (str, int, float, bool)
# Optional fields that most people leave alone: shown under "More settings". A new field is
# advanced when it has a default other than empty; these are advanced whatever their default.
ADVANCED_KEYS = {"url", "options", "source_table", "include_columns", "exclude_columns", "filter", "headers",
                 "params", "json", "response_actions", "include_from_parent", "parent", "description",
                 "column_types", "type_mapping"}
BASIC_KEYS = {"destination"}  # has a default, but every source should choose it knowingly
# Table settings that inherit from defaults: (default) is right for most tables.
INHERITED = set(TableDefaults.model_fields) - {"mode"}
ACRONYMS = {"url": "URL", "id": "ID", "sql": "SQL", "sid": "SID", "api": "API", "csv": "CSV", "json": "JSON",
            "http": "HTTP", "ssl": "SSL", "gcp": "GCP", "aws": "AWS", "sas": "SAS"}


@dataclass(frozen=True)
class FieldSpec:
    key: str  # the YAML key (the alias when the field has one)
    label: str
    help: str
    kind: str  # picks the widget: text, int, float, bool, choice, secret, scalar, text_list, model, union, yaml
    required: bool
    default: Any  # MISSING when required
    optional: bool  # None is accepted
    choices: tuple[Any, ...] = ()
    models: tuple[type[BaseModel], ...] = ()  # the nested model(s) of kinds model and union
    item_types: tuple[type, ...] = ()  # what text_list items (and scalar values) are parsed into
    advanced: bool = False
    minimum: float | None = None
    maximum: float | None = None


# --- annotations ---------------------------------------------------------------------------

members = type_members  # one unwrapping of Annotated / unions, shared with the validation messages


def _non_none(annotation: Any) -> list[Any]:
    return [m for m in members(annotation) if m is not type(None)]


def _is_literal(member: Any) -> bool:
    return typing.get_origin(member) is typing.Literal


def _models(annotation: Any) -> list[type[BaseModel]]:
    return [m for m in _non_none(annotation) if isinstance(m, type) and issubclass(m, BaseModel)]


def _list_items(annotation: Any) -> list[Any] | None:
    found = _non_none(annotation)
    if len(found) == 1 and typing.get_origin(found[0]) is list:
        return _non_none(typing.get_args(found[0])[0])
    return None


# --- kinds: a registry of (kind, test) pairs, first match wins -------------------------------

KindTest = Callable[[FieldInfo, list[Any]], bool]
KIND_RULES: list[tuple[str, KindTest]] = []


def kind_rule(kind: str) -> Callable[[KindTest], KindTest]:
    def register(test: KindTest) -> KindTest:
        KIND_RULES.append((kind, test))
        return test
    return register


@kind_rule("secret")
def _secret(info: FieldInfo, found: list[Any]) -> bool:
    return is_secret_field(info)


@kind_rule("choice")
def _choice(info: FieldInfo, found: list[Any]) -> bool:
    return bool(found) and all(_is_literal(m) for m in found)


@kind_rule("bool")
def _bool(info: FieldInfo, found: list[Any]) -> bool:
    return found == [bool]


@kind_rule("int")
def _int(info: FieldInfo, found: list[Any]) -> bool:
    return found == [int]


@kind_rule("float")
def _float(info: FieldInfo, found: list[Any]) -> bool:
    return found in ([float], [int, float], [float, int])


@kind_rule("text")
def _text(info: FieldInfo, found: list[Any]) -> bool:
    return found == [str]


@kind_rule("scalar")
def _scalar(info: FieldInfo, found: list[Any]) -> bool:
    return bool(found) and all(m in SCALARS for m in found)


@kind_rule("text_list")
def _text_list(info: FieldInfo, found: list[Any]) -> bool:
    items = _list_items(info.annotation)
    return bool(items) and all(m in SCALARS for m in items)


@kind_rule("model")
def _model(info: FieldInfo, found: list[Any]) -> bool:
    return len(found) == 1 and len(_models(info.annotation)) == 1


@kind_rule("union")
def _union(info: FieldInfo, found: list[Any]) -> bool:
    models = _models(info.annotation)
    return len(models) >= 2 and len(models) == len(found) and all("type" in m.model_fields for m in models)


def kind_of(info: FieldInfo) -> str:
    found = _non_none(info.annotation)
    for kind, test in KIND_RULES:
        if test(info, found):
            return kind
    return "yaml"  # anything else is edited as a small YAML value


# --- specs ---------------------------------------------------------------------------------

def label_for(key: str) -> str:
    words = [ACRONYMS.get(w, w) for w in key.split("_") if w]
    text = " ".join(words) or key
    return text[:1].upper() + text[1:]


def _default(info: FieldInfo) -> Any:
    if info.is_required():
        return MISSING
    if info.default_factory is not None:
        return info.default_factory()  # type: ignore[call-arg]
    return None if info.default is PydanticUndefined else info.default


def _bounds(info: FieldInfo) -> tuple[float | None, float | None]:
    low = high = None
    for meta in info.metadata:
        if isinstance(meta, annotated_types.Ge):
            low = meta.ge
        elif isinstance(meta, annotated_types.Le):
            high = meta.le
    return low, high  # type: ignore[return-value]


def spec_for(name: str, info: FieldInfo) -> FieldSpec:
    kind = kind_of(info)
    key = info.alias or name
    default = _default(info)
    found = _non_none(info.annotation)
    choices: tuple[Any, ...] = ()
    if kind == "choice":
        choices = tuple(dict.fromkeys(c for m in found for c in typing.get_args(m)))
    models = tuple(_models(info.annotation)) if kind in ("model", "union") else ()
    items: tuple[Any, ...] = ()
    if kind == "text_list":
        items = tuple(_list_items(info.annotation) or ())
    elif kind == "scalar":
        items = tuple(found)
    low, high = _bounds(info)
    advanced = key not in BASIC_KEYS and (key in ADVANCED_KEYS or key in INHERITED
                                          or (default is not MISSING and default not in (None, [], {})))
    return FieldSpec(
        key=key, label=label_for(key), help=info.description or "", kind=kind, required=info.is_required(),
        default=default, optional=type(None) in members(info.annotation), choices=choices, models=models,
        item_types=items, advanced=advanced, minimum=low, maximum=high,
    )


@cache
def field_specs(model: type[BaseModel]) -> tuple[FieldSpec, ...]:
    """Every field of a model, in the model's order."""
    return tuple(spec_for(name, info) for name, info in model.model_fields.items())


def tag_of(model: type[BaseModel]) -> str:
    """The ``type`` literal of a union member (``bearer``)."""
    return str(typing.get_args(model.model_fields["type"].annotation)[0])


def tag_help(model: type[BaseModel]) -> str:
    return model.model_fields["type"].description or tag_of(model)


def member_for(spec: FieldSpec, tag: Any) -> type[BaseModel] | None:
    return next((m for m in spec.models if tag_of(m) == tag), None)


# --- turning widget values into YAML values -------------------------------------------------

def parse_scalar(text: str, allowed: tuple[type, ...] = SCALARS) -> Any:
    """'12' -> 12, '1.5' -> 1.5, 'true' -> True (when the field takes them), else the text."""
    text = text.strip()
    if int in allowed:
        try:
            return int(text)
        except ValueError:
            pass
    if float in allowed:
        try:
            return float(text)
        except ValueError:
            pass
    if bool in allowed and text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def parse_list(text: str, item_types: tuple[type, ...] = (str,)) -> list[Any]:
    """'a, b,c' -> ['a', 'b', 'c'] (items parsed as the field's item type)."""
    return [parse_scalar(part, item_types) for part in (text or "").split(",") if part.strip()]


def list_text(value: Any) -> str:
    return ", ".join(str(v) for v in value) if isinstance(value, list) else ("" if value is None else str(value))


def parse_yaml_value(text: str) -> tuple[Any, str | None]:
    """A small YAML value typed into a form field: (value, problem in plain words)."""
    from ingestion_core.config.store import parse_yaml

    if not (text or "").strip():
        return None, None
    value, issues = parse_yaml(text)
    if issues:
        where = f" ({issues[0].path})" if issues[0].path else ""
        return None, f"this is not valid YAML{where}: {issues[0].message}"
    return value, None


def yaml_text(value: Any) -> str:
    if value is None or value == {} or value == []:
        return ""
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=None, width=80).strip()


def is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, dict)) and not value)
