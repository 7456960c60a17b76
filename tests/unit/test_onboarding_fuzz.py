"""Property tests of the model layer behind the forms: random form inputs, turned into a draft the
way the widgets turn them (portal.onboarding.fields), go through every onboarding function the pages call.
Nothing raises; every rejection is a readable issue or error message that names no typed
secret; whatever validates saves, and the saved file holds references only."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestion_core import onboarding
from ingestion_core.config.models.checks import CHECKS
from ingestion_core.config.models.source_file import SOURCE_FILE_MODELS
from ingestion_core.config.models.sources import SOURCE_MODELS
from ingestion_core.config.store import ConfigStore, ConflictError
from ingestion_core.config.validation import ConfigError, ConfigIssue
from ingestion_core.onboarding import Draft
from portal.onboarding.fields import MISSING, FieldSpec, field_specs, parse_list, parse_scalar, parse_yaml_value

EXAMPLES = int(os.environ.get("INGEST_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
WORDS = ["", " ", "orders", "updated_at", "id", "public", "sales_de", "Sales DE", "market-de", "db.local",
         "0 6 * * *", "every day", "24h", "${secrets.a.b}", "${env:X}", "https://api.example.com/v1/", "ftp://x",
         "s3://bucket/in", "../up", "*.csv", "a; drop table x", "postgresql://u:pw@h/db", "é", "\x00", "yes"]
TEXT = st.sampled_from(WORDS) | st.text(max_size=16)
SECRET_VALUES = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=8,
                        max_size=20).map(lambda s: "Zq" + s)  # long and marked: easy to spot if leaked
TRACEBACK = re.compile(r"Traceback|File \"|Error\(|object at 0x")


def widget_input(spec: FieldSpec) -> st.SearchStrategy[Any]:
    """What a user can put into the widget of a field, already converted like the widget does."""
    if spec.kind == "choice":
        return st.sampled_from([None, *spec.choices])
    if spec.kind == "bool":
        return st.booleans()
    if spec.kind in ("int", "float"):
        return st.none() | st.integers(-10, 10**6) | (st.floats(allow_nan=False, allow_infinity=False)
                                                      if spec.kind == "float" else st.integers(0, 70000))
    if spec.kind == "scalar":
        return TEXT.map(lambda t: parse_scalar(t, spec.item_types) if t.strip() else None)
    if spec.kind == "text_list":
        return TEXT.map(lambda t: parse_list(t, spec.item_types or (str,)))
    if spec.kind == "yaml":
        return st.sampled_from(["", "{a: 1}", "[1, 2]", "{sslmode: require}", "{password: hunter2}", "x: [",
                                "- {column: id, op: '=', value: 1}"]).map(lambda t: parse_yaml_value(t)[0])
    if spec.kind in ("model", "union", "secret"):
        return st.none()  # nested models are filled field by field below; secrets are typed apart
    return TEXT.map(lambda t: t.strip() or None)


@st.composite
def fields_of(draw: st.DrawFn, model: Any, skip: tuple[str, ...] = (), rate: int = 50) -> dict[str, Any]:
    """A random subset of the fields (each with ``rate`` % chance) with random widget inputs."""
    data: dict[str, Any] = {}
    for spec in field_specs(model):
        if spec.key in skip or draw(st.integers(0, 99)) >= rate:
            continue
        if spec.kind == "model" and draw(st.booleans()):
            data[spec.key] = draw(fields_of(spec.models[0]))
            continue
        if spec.kind == "union" and draw(st.booleans()):
            member = draw(st.sampled_from(spec.models))
            data[spec.key] = {"type": member.model_fields["type"].annotation.__args__[0],
                              **draw(fields_of(member, skip=("type",)))}
            continue
        value = draw(widget_input(spec))
        if value is not None and not (spec.default is not MISSING and value == spec.default):
            data[spec.key] = value
    return data


# What a user has filled in by the time a form is nearly complete: random inputs go on top of it,
# so that the fuzz reaches saving as well as rejections.
FILLED_SOURCE = {
    "postgres": {"host": "db", "database": "d"}, "mysql": {"host": "db", "database": "d"},
    "mssql": {"host": "db", "database": "d"}, "azure_sql": {"host": "db", "database": "d", "username": "u"},
    "oracle": {"host": "db", "service_name": "S"}, "sqlite": {"path": "x.sqlite"},
    "rest_api": {"base_url": "https://api.example.com/"}, "filesystem": {"bucket_url": "in"},
}
FILLED_TABLE = {"rest_api": {"name": "t", "path": "t"}, "filesystem": {"name": "t", "glob": "*.csv", "format": "csv"}}


@st.composite
def form_inputs(draw: st.DrawFn) -> Draft:
    kind = draw(st.sampled_from(list(SOURCE_MODELS)))
    filled = draw(st.integers(0, 3)) > 0
    file_model = SOURCE_FILE_MODELS[kind]
    data = {"name": draw(st.sampled_from(["sales_de", "crm", "a1"])), "owner": "market-de"} if filled else {}
    rate = 15 if filled else 50
    data.update(draw(fields_of(file_model, skip=("source", "tables", "version", *(("name",) if filled else ())),
                               rate=rate)))
    data["source"] = {"type": kind, **(FILLED_SOURCE[kind] if filled else {}),
                      **draw(fields_of(SOURCE_MODELS[kind], skip=("type", "url"), rate=rate))}
    table_model = onboarding.table_model(kind)
    tables = []
    for _ in range(draw(st.integers(1 if filled else 0, 3))):
        entry = {**FILLED_TABLE.get(kind, {"name": "t"}), "name": f"t{len(tables)}"} if filled else {}
        entry.update(draw(fields_of(table_model, skip=("checks", *(("name",) if filled else ())), rate=rate)))
        if draw(st.booleans()):
            check = draw(st.sampled_from(list(CHECKS)))
            entry["checks"] = [{check: draw(fields_of(CHECKS[check]))}]
        tables.append(entry)
    data["tables"] = tables
    secret_paths = [p for p in _secret_paths(kind) if draw(st.booleans()) or (filled and p == "source.password")]
    secrets = {p: draw(SECRET_VALUES) for p in secret_paths}
    return Draft(data, secrets)


def _secret_paths(kind: str) -> list[str]:
    paths = []
    for spec in field_specs(SOURCE_MODELS[kind]):
        if spec.kind == "secret":
            paths.append(f"source.{spec.key}")
        for member in spec.models:
            paths += [f"source.{spec.key}.{s.key}" for s in field_specs(member) if s.kind == "secret"]
    return paths


def readable(message: str, secrets: dict[str, str]) -> None:
    assert isinstance(message, str) and message.strip(), "an empty message"
    assert not TRACEBACK.search(message), message
    for value in secrets.values():
        assert value not in message, "a typed secret in a message"


def check_issues(issues: list[ConfigIssue], secrets: dict[str, str]) -> None:
    for issue in issues:
        assert isinstance(issue.path, str)
        readable(issue.message, secrets)


@FUZZ
@given(draft=form_inputs())
def test_form_inputs_never_crash_the_onboarding_functions(ingest_env: Path, draft: Draft) -> None:
    store = ConfigStore()
    before = repr(draft.data)
    model, issues = onboarding.validate_draft(draft, store)
    check_issues(issues, draft.secrets)
    assert repr(draft.data) == before, "validation changed the draft"

    text = onboarding.yaml_of_draft(draft)
    assert all(value not in text for value in draft.secrets.values())
    _, yaml_issues = onboarding.validate_yaml(text, draft, store)
    check_issues(yaml_issues, draft.secrets)

    _source, connection_issues = onboarding.connection_model(draft)
    check_issues(connection_issues, draft.secrets)

    try:
        saved = onboarding.save_draft(draft, actor="fuzz", store=store)
    except ConfigError as exc:
        assert model is None
        check_issues(exc.issues, draft.secrets)
        return
    except ConflictError as exc:
        readable(str(exc), draft.secrets)
        return
    assert model is not None
    written = saved.path.read_text(encoding="utf-8")
    assert all(value not in written for value in draft.secrets.values())
    reloaded, reload_issues = onboarding.load_draft(saved.name, store)
    assert not [i for i in reload_issues if i.severity == "error"]
    assert onboarding.validate_draft(reloaded, store)[0] is not None
    saved.path.unlink()


@FUZZ
@given(text=st.text(max_size=40) | st.sampled_from(WORDS))
def test_widget_conversions_take_any_text(text: str) -> None:
    for types in ((str,), (int, str), (float, str), (str, int, float, bool)):
        parse_scalar(text, types)
        parse_list(text, types)
    _value, problem = parse_yaml_value(text)
    assert problem is None or (isinstance(problem, str) and problem)
