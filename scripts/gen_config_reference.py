"""Writes docs/config-reference.md from the Pydantic config models.

    .venv/bin/python scripts/gen_config_reference.py          # rewrite the file
    .venv/bin/python scripts/gen_config_reference.py --check  # exit 1 if it is out of date

Every model reachable from ``SOURCE_FILE_MODELS`` and the destination models gets a section
with one row per field (key, type, default, required, description). Descriptions come from
``Field(description=...)``, so the reference, the form help texts and the JSON Schema say the
same thing. tests/unit/test_docs.py fails when the committed file differs from this output.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import AfterValidator, BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script from anywhere, installed or not
    sys.path.insert(0, str(REPO))

from ingestion_core.config import secrets  # noqa: E402
from ingestion_core.config.models import base, checks, destinations, tables  # noqa: E402
from ingestion_core.config.models.source_file import SOURCE_FILE_MODELS, TABLE_MODELS  # noqa: E402

OUTPUT = REPO / "docs" / "config-reference.md"
REGENERATE = ".venv/bin/python scripts/gen_config_reference.py"
SOURCE_FILE_SECTION = "Source file"

# What the shared value types of models/base.py mean; an alias missing here is still listed,
# with its pattern, so a new one never breaks the generator.
VALUE_TYPE_NOTES = {
    "Name": "Lower-case letters, digits and `_`, starting with a letter, at most 63 characters. "
            "Becomes a file name, a dlt pipeline name or a dataset.",
    "Team": "Like a name, `-` allowed too (e.g. `market-de`).",
    "Identifier": "A plain table, schema or column name; always quoted by the SQL dialect, never pasted.",
    "Duration": "A number and a unit: `s`, `m`, `h`, `d` or `w` (e.g. `30m`, `24h`, `7d`).",
    "Cron": "A 5-field cron expression in UTC, e.g. `0 6 * * *`.",
    "SecretRef": "Only a reference, `${secrets.<section>.<key>}` or `${env:NAME}`; never the value.",
    "ConnectionUrl": "A SQLAlchemy URL; a password in it must be a reference (or reference the whole URL).",
}
VALUE_TYPE_LABELS = {"SecretRef": "secret reference", "ConnectionUrl": "connection URL"}
YAML_SPECIAL = ":#{}[],&*!|>'\"%@`"
SCALARS = {str: "text", int: "integer", float: "number", bool: "true/false", type(None): "null"}


# --- walking the models --------------------------------------------------------------------

def value_type_aliases() -> dict[str, Any]:
    """The Annotated aliases defined in the models' modules (Name, SecretRef...), by name."""
    found: dict[str, Any] = {}
    for module in _model_modules():
        for attr, value in vars(module).items():
            if typing.get_origin(value) is typing.Annotated and any(
                isinstance(meta, AfterValidator) for meta in typing.get_args(value)[1:]
            ):
                found.setdefault(attr, value)
    return found


def value_types() -> dict[Any, str]:
    """Alias name by its validator function: how a field's metadata is recognised."""
    found: dict[Any, str] = {}
    for attr, value in value_type_aliases().items():
        for meta in typing.get_args(value)[1:]:
            if isinstance(meta, AfterValidator):
                found.setdefault(meta.func, attr)
    return found


def _model_modules() -> list[types.ModuleType]:
    prefix = base.__name__.rsplit(".", 1)[0] + "."
    return [m for name, m in sorted(sys.modules.items()) if name.startswith(prefix) and m is not None]


def alias_of(metadata: Iterable[Any], aliases: dict[Any, str]) -> str | None:
    for meta in metadata:
        if isinstance(meta, AfterValidator) and meta.func in aliases:
            return aliases[meta.func]
    return None


def nested_models(annotation: Any) -> list[type[BaseModel]]:
    """Models used anywhere inside a field's annotation, in order."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in nested_models(arg)]


def reachable(roots: Iterable[type[BaseModel]], skip: set[type[BaseModel]]) -> list[type[BaseModel]]:
    """Depth-first, each model once, not entering the models in ``skip``."""
    order: list[type[BaseModel]] = []

    def visit(model: type[BaseModel]) -> None:
        if model in skip or model in order:
            return
        order.append(model)
        for info in model.model_fields.values():
            for inner in nested_models(info.annotation):
                visit(inner)

    for root in roots:
        visit(root)
    return order


def field_key(name: str, info: FieldInfo) -> str:
    return info.alias or name


def schema_extras(info: FieldInfo) -> dict[str, Any]:
    """json_schema_extra of the field and of any Annotated alias inside its annotation."""
    extras: dict[str, Any] = dict(info.json_schema_extra) if isinstance(info.json_schema_extra, dict) else {}

    def collect(annotation: Any) -> None:
        if typing.get_origin(annotation) is typing.Annotated:
            for meta in typing.get_args(annotation)[1:]:
                if isinstance(meta, FieldInfo) and isinstance(meta.json_schema_extra, dict):
                    extras.update(meta.json_schema_extra)
        for arg in typing.get_args(annotation):
            collect(arg)

    collect(info.annotation)
    return extras


# --- rendering types, defaults, cells ------------------------------------------------------

@dataclass
class Renderer:
    aliases: dict[Any, str]
    anchors: dict[type[BaseModel], str] = field(default_factory=dict)

    def type_text(self, annotation: Any, metadata: Iterable[Any] = ()) -> str:
        alias = alias_of(metadata, self.aliases)
        text = self._label(alias) if alias else self._type(annotation)
        bounds = _constraints(metadata)
        return f"{text} ({bounds})" if bounds else text

    def _type(self, annotation: Any) -> str:
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin is typing.Annotated:
            return self.type_text(args[0], args[1:])
        if origin is typing.Literal and len(args) == 1:
            return f"`{_yaml(args[0])}`"
        if origin is typing.Literal:
            return "one of " + ", ".join(f"`{_yaml(a)}`" for a in args)
        if origin in (typing.Union, types.UnionType):
            members = [a for a in args if a is not type(None)]
            texts = [self._type(m) for m in members]
            if all(isinstance(m, type) and issubclass(m, BaseModel) for m in members) and len(members) > 1:
                return "one of " + ", ".join(texts) + " (by `type`)"
            return _or(texts)
        if origin is list:
            return f"list of {self._type(args[0])}" if args else "list"
        if origin is dict:
            return f"mapping of {self._type(args[0])} to {self._type(args[1])}" if args else "mapping"
        if annotation is Any:
            return "any value"
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return self.link(annotation)
        return SCALARS.get(annotation, getattr(annotation, "__name__", str(annotation)))

    def _label(self, alias: str) -> str:
        return f"[{VALUE_TYPE_LABELS.get(alias, alias.lower())}](#value-types)"

    def link(self, model: type[BaseModel]) -> str:
        anchor = self.anchors.get(model)
        return f"[{model.__name__}](#{anchor})" if anchor else model.__name__

    def default_text(self, info: FieldInfo) -> str:
        if info.is_required():
            return ""
        if info.default_factory is not None:
            value = info.default_factory()  # type: ignore[call-arg]
            if isinstance(value, BaseModel):
                return f"see {self.link(type(value))}"
        else:
            value = info.default
        if value is None or value is PydanticUndefined:
            return "not set"
        return f"`{_yaml(value)}`"

    def rows(self, model: type[BaseModel], types_override: dict[str, str] | None = None) -> list[str]:
        lines = ["| key | type | default | required | description |", "|---|---|---|---|---|"]
        for name, info in _type_first(model.model_fields).items():
            kind = (types_override or {}).get(name) or self.type_text(info.annotation, info.metadata)
            lines.append(_row(f"`{field_key(name, info)}`", kind, self.default_text(info),
                              "yes" if info.is_required() else "no", info.description or ""))
        return lines

    def section(self, model: type[BaseModel], level: str = "###") -> list[str]:
        doc = inspect.cleandoc(model.__doc__) if model.__doc__ else ""
        head = [f"{level} {model.__name__}", ""]
        return head + ([_one_line(doc), ""] if doc else []) + self.rows(model) + [""]


def _type_first(fields: dict[str, FieldInfo]) -> dict[str, FieldInfo]:
    """The discriminating ``type`` key leads, as it does in the YAML files."""
    return dict(sorted(fields.items(), key=lambda item: item[0] != "type"))


def _constraints(metadata: Iterable[Any]) -> str:
    parts = []
    names = {annotated_types.Ge: ("ge", "≥"), annotated_types.Gt: ("gt", ">"),
             annotated_types.Le: ("le", "≤"), annotated_types.Lt: ("lt", "<")}
    for meta in metadata:
        if type(meta) in names:
            attr, sign = names[type(meta)]
            parts.append(f"{sign} {getattr(meta, attr)}")
        elif isinstance(meta, annotated_types.MinLen):
            parts.append(f"length ≥ {meta.min_length}")
        elif isinstance(meta, annotated_types.MaxLen):
            parts.append(f"length ≤ {meta.max_length}")
    return ", ".join(parts)


def _yaml(value: Any) -> str:
    """A value as it is written in YAML: plain words bare, anything else as JSON (valid YAML)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True)
    if isinstance(value, str) and value and value.strip() == value and not set(value) & set(YAML_SPECIAL):
        return value
    return json.dumps(value, ensure_ascii=False)


def _or(texts: list[str]) -> str:
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " or " + texts[-1]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _cell(text: str) -> str:
    return _one_line(text).replace("|", "\\|")


def _row(*cells: str) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


# --- the chapters --------------------------------------------------------------------------

def source_models() -> dict[str, type[BaseModel]]:
    return {t: m.model_fields["source"].annotation for t, m in SOURCE_FILE_MODELS.items()}


def table_models() -> dict[str, type[BaseModel]]:
    return {t: TABLE_MODELS[t] for t in SOURCE_FILE_MODELS}


def destination_models() -> list[type[BaseModel]]:
    return nested_models(destinations.DestinationConfig)


def check_models() -> list[type[BaseModel]]:
    return [checks.Check, *checks.CHECKS.values()]


@dataclass
class Chapters:
    """Which models each chapter documents: every model exactly once, claimed in this order."""

    checks: list[type[BaseModel]]
    connections: list[type[BaseModel]]
    tables: list[type[BaseModel]]
    source_file: list[type[BaseModel]]
    destinations: list[type[BaseModel]]

    @classmethod
    def build(cls) -> Chapters:
        claimed: set[type[BaseModel]] = set()

        def claim(roots: Iterable[type[BaseModel]]) -> list[type[BaseModel]]:
            models = reachable(roots, claimed)
            claimed.update(models)
            return models

        return cls(
            checks=claim(check_models()),
            connections=claim(dict.fromkeys(source_models().values())),
            tables=claim(dict.fromkeys(table_models().values())),
            source_file=claim(SOURCE_FILE_MODELS.values()),
            destinations=claim(destination_models()),
        )

    def documented(self) -> list[type[BaseModel]]:
        """Models with a section of their own (the per-type file models share one)."""
        file_models = set(SOURCE_FILE_MODELS.values())
        every = self.connections + self.tables + self.source_file + self.checks + self.destinations
        return [m for m in every if m not in file_models]


def render() -> str:
    chapters = Chapters.build()
    r = Renderer(value_types())
    r.anchors = {m: m.__name__.lower() for m in chapters.documented()}
    parts = [
        _intro(), _value_types(r), _source_file(r, chapters), _connections(r, chapters),
        _tables(r, chapters), _modes(), _checks(r, chapters), _secrets(r, chapters), _destinations(r, chapters),
    ]
    return "\n".join(line for part in parts for line in part).rstrip("\n") + "\n"


def _intro() -> list[str]:
    return [
        "# Config reference",
        "",
        f"<!-- Generated by scripts/gen_config_reference.py from ingestion_core.config.models. Do not edit: "
        f"run `{REGENERATE}`. -->",
        "",
        "Every key of a source file (`configs/sources/<name>.yaml`) and a destination file "
        "(`configs/destinations/<name>.yaml`). Unknown keys are errors. The same descriptions are "
        "the portal's help texts and the JSON Schema's (`ingest schema`, `configs/source.schema.json`).",
        "",
        "Contents: [value types](#value-types) · [source file](#source-file) · "
        "[connections](#connections-source) · [tables](#tables-tables) · [modes](#modes) · "
        "[quality checks](#quality-checks) · [secret references](#secret-references) · "
        "[destination files](#destination-files)",
        "",
    ]


def _value_types(r: Renderer) -> list[str]:
    lines = ["## Value types", "", "Text fields with a rule of their own.", "",
             "| type | rule | pattern |", "|---|---|---|"]
    for attr, value in value_type_aliases().items():
        extra: dict[str, Any] = {}
        for meta in typing.get_args(value)[1:]:
            if isinstance(meta, FieldInfo) and isinstance(meta.json_schema_extra, dict):
                extra.update(meta.json_schema_extra)
        pattern = f"`{extra['pattern']}`" if "pattern" in extra else ""
        lines.append(_row(VALUE_TYPE_LABELS.get(attr, attr.lower()), VALUE_TYPE_NOTES.get(attr, ""), pattern))
    return [*lines, ""]


def _source_file(r: Renderer, chapters: Chapters) -> list[str]:
    models = list(SOURCE_FILE_MODELS.values())
    keys = [list(m.model_fields) for m in models]
    if any(k != keys[0] for k in keys):
        raise SystemExit("the per-type source file models no longer share their keys; document them apart")
    overrides = {"source": "depends on `source.type`: see below", "tables": "list; entry kind depends on `source.type`"}
    lines = [
        f"## {SOURCE_FILE_SECTION}", "",
        "`configs/sources/<name>.yaml`: one source, its connection and its tables.", "",
        *r.rows(models[0], types_override=overrides), "",
        "`source.type` chooses the connection model and the kind of the `tables:` entries:", "",
        "| `source.type` | `source:` | `tables:` entries | tables |", "|---|---|---|---|",
    ]
    sources, table_kinds = source_models(), table_models()
    for kind, model in SOURCE_FILE_MODELS.items():
        tables_help = model.model_fields["tables"].description or ""
        lines.append(_row(f"`{kind}`", r.link(sources[kind]), r.link(table_kinds[kind]), tables_help))
    lines.append("")
    for model in chapters.source_file:
        if model not in SOURCE_FILE_MODELS.values():
            lines += r.section(model)
    return lines


def _connections(r: Renderer, chapters: Chapters) -> list[str]:
    lines = ["## Connections (`source:`)", "",
             "The `source:` mapping; its `type` picks the model. Auth and paginator models belong to REST APIs.", ""]
    for model in chapters.connections:
        lines += r.section(model)
    return lines


def _tables(r: Renderer, chapters: Chapters) -> list[str]:
    common = ", ".join(f"`{field_key(n, i)}`" for n, i in tables.TableBase.model_fields.items())
    lines = ["## Tables (`tables:`)", "",
             f"Every kind of table has {common}; settings left out inherit `defaults:` "
             f"(see {r.link(tables.TableDefaults)}).", ""]
    for model in chapters.tables:
        lines += r.section(model)
    return lines


def _modes() -> list[str]:
    return [
        "## Modes", "",
        "`mode` of a table (or of `defaults:`): " + ", ".join(f"`{m}`" for m in tables.MODES) + ".", "",
        *_meanings(tables.MODES, tables.MODE_HELP, "mode"), "",
        "`schema_evolution` (what happens when the source schema changes):", "",
        *_meanings(typing.get_args(tables.SchemaEvolution), tables.EVOLUTION_HELP, "schema_evolution"), "",
    ]


def _meanings(values: Iterable[str], help_text: str, title: str) -> list[str]:
    """A help text written as 'a: meaning; b: meaning.' as a table; as it is otherwise."""
    found: dict[str, str] = {}
    for part in _one_line(help_text).rstrip(".").split("; "):
        value, _, meaning = part.rpartition(". ")[2].partition(": ")
        found[value] = meaning
    if not set(values) <= set(found):
        return [_one_line(help_text)]
    return [f"| {title} | meaning |", "|---|---|", *(_row(f"`{v}`", found[v]) for v in values)]


def _checks(r: Renderer, chapters: Chapters) -> list[str]:
    lines = [
        "## Quality checks", "",
        "`checks:` of a table is a list; each check is a mapping with exactly one key, the kind. "
        "A kind with a shorthand takes a bare value for that field: `{not_null: order_id}` means "
        "`{not_null: {column: order_id, severity: error}}`.", "",
        "| kind | shorthand | example | fields |", "|---|---|---|---|",
    ]
    for kind, model in checks.CHECKS.items():
        short = f"`{model.shorthand}`" if model.shorthand else ""
        example = f"`{{{kind}: order_id}}`" if model.shorthand else ""
        fields = ", ".join(f"`{field_key(n, i)}`" for n, i in model.model_fields.items())
        lines.append(_row(f"[`{kind}`](#{r.anchors[model]})", short, example, fields))
    lines.append("")
    for model in chapters.checks:
        lines += r.section(model)
    return lines


def _secrets(r: Renderer, chapters: Chapters) -> list[str]:
    example = secrets.SecretReference("secrets", "sales_de.password")
    providers = [f"{i}. `{type(p).__name__}`: {_one_line((type(p).__doc__ or '').splitlines()[0])}"
                 for i, p in enumerate(secrets.default_providers(), 1)]
    lines = [
        "## Secret references", "",
        "A YAML file never holds a secret value, only a reference, resolved when a run starts:", "",
        "- `${secrets.<section>.<key>}`: key `<key>` of section `[<section>]` in the local secrets file "
        "(`${secrets.a.b.c}`: key `c` of `[a.b]`).",
        "- `${env:NAME}`: the environment variable `NAME`.", "",
        f"A whole value must match `{secrets.REFERENCE_PATTERN}`. The environment can also supply "
        f"a `secrets` reference: `{example.text}` is read from "
        f"{' or '.join(f'`{v}`' for v in secrets.EnvironmentProvider().variables(example))}. Providers are "
        "asked in order, first match wins:", "",
        *providers, "",
        "Each provider looks a reference up under the names of its name styles (`INGEST_SECRET_NAMES`, "
        "per provider `INGEST_SECRET_NAMES_<PROVIDER>`): `path` (the whole path) and `framework` (the Excel "
        "framework's names: `${secrets.sources.pg.password}` is also `DLT_PG_PASSWORD`, scope key and vault "
        "secret `pg-password`); a Databricks scope and a Key Vault join the chain when present. See "
        "[migrating from Excel](migrating-from-excel.md#secrets-where-they-already-are).", "",
        "Fields that accept only a reference (a connection URL: a password inside it must be one):", "",
    ]
    for model in chapters.documented():
        for name, info in model.model_fields.items():
            if schema_extras(info).get("x-secret"):
                lines.append(f"- {r.link(model)}.`{field_key(name, info)}`")
    lines += ["", f"Header names matching `{base.SENSITIVE_HEADER.pattern}` (any case) must hold a "
                  "reference in their value, e.g. `Bearer ${secrets.<source>.token}`.", ""]
    return lines


def _destinations(r: Renderer, chapters: Chapters) -> list[str]:
    lines = ["## Destination files", "",
             "`configs/destinations/<name>.yaml`, chosen by `type`; a source names one in `destination:`. "
             "Previews always load into a local DuckDB file.", "",
             "| `type` | model |", "|---|---|"]
    for model in destination_models():
        kind = typing.get_args(model.model_fields["type"].annotation)[0]
        lines.append(_row(f"`{kind}`", r.link(model)))
    lines.append("")
    for model in chapters.destinations:
        lines += r.section(model)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(REPO)} is out of date; run {REGENERATE}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
