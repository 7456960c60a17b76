"""Property tests of the model layer: valid configs mutated at random (keys dropped, added, misspelt;
values replaced by random types) never raise. Every rejection comes back from
validate_source_data as readable ConfigIssues, the input is never mutated, and whatever is
accepted survives save -> load unchanged."""

from __future__ import annotations

import copy
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestion_core.config.models import SOURCE_FILE_MODELS
from ingestion_core.config.store import dump_yaml, parse_yaml, validate_destination_data, validate_source_data
from ingestion_core.config.validation import ConfigIssue
from tests.unit.test_models import DESTINATIONS, VALID_CONFIGS, VALID_DESTINATIONS

EXAMPLES = int(os.environ.get("INGEST_FUZZ_EXAMPLES", "300"))  # raise it for a longer hunt
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _field_names() -> list[str]:
    names: set[str] = set()

    def walk(model: Any, seen: set[Any]) -> None:
        if model in seen or not hasattr(model, "model_fields"):
            return
        seen.add(model)
        for name, info in model.model_fields.items():
            names.add(info.alias or name)
            for arg in _nested_types(info.annotation):
                walk(arg, seen)

    for model in SOURCE_FILE_MODELS.values():
        walk(model, set())
    return sorted(names)


def _nested_types(annotation: Any) -> list[Any]:
    args = getattr(annotation, "__args__", ()) or ()
    metadata_free = getattr(annotation, "__origin__", None)
    found = [annotation] if hasattr(annotation, "model_fields") else []
    for arg in (*args, *([metadata_free] if metadata_free else [])):
        if arg is not annotation:
            found += _nested_types(arg)
    return found


FIELD_NAMES = _field_names()
WORDS = ["full", "append", "incremental", "merge", "scd2", "postgres", "sqlite", "rest_api", "filesystem",
         "oracle", "not_null", "unique", "row_count", "bearer", "offset", "csv", "parquet", "delta", "lake",
         "local_duckdb", "${secrets.a.b}", "${env:X}", "${secrets.a}", "orders; drop table x", 'a"b', "", " ",
         "0 6 * * *", "61 * * * *", "24h", "https://api.example.com/", "s3://b/in", "../x", "*.csv",
         "postgresql://u:pw@h/db", "Bearer abc", "id", "updated_at", "2024-01-01", "yes", "~", "\x00", "é" * 3]
SCALARS = (st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.floats() | st.text(max_size=12)
           | st.dates() | st.datetimes() | st.sampled_from(WORDS))
KEYS = st.sampled_from(FIELD_NAMES) | st.text(max_size=8) | st.integers(0, 3) | st.none()
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
                      max_leaves=6)
INTERNALS = ("pydantic", "[type=", "function-after", "tagged-union", "Traceback", "<class", "ValidationError",
             "For further information")


def _locations(node: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) inside a document."""
    found: list[tuple[Any, Any]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        found.append((node, key))
        found += _locations(value)
    return found


def _mutate(data: st.DataObject, doc: Any) -> None:
    container, key = data.draw(st.sampled_from(_locations(doc)))
    operation = data.draw(st.sampled_from(["replace", "replace", "delete", "add", "misspell", "wrap"]))
    if operation == "replace":
        container[key] = data.draw(VALUES)
    elif operation == "delete":
        del container[key]
    elif operation == "add" and isinstance(container, dict):
        container[data.draw(KEYS)] = data.draw(VALUES)
    elif operation == "add":
        container.append(data.draw(VALUES))
    elif operation == "misspell" and isinstance(container, dict) and isinstance(key, str) and key:
        container[key[:-1] + data.draw(st.sampled_from("xs_"))] = container.pop(key)
    elif operation == "wrap":
        container[key] = [container[key]]


def _assert_readable(issues: list[ConfigIssue]) -> None:
    for issue in issues:
        assert isinstance(issue, ConfigIssue) and isinstance(issue.path, str) and isinstance(issue.message, str)
        assert issue.severity in ("error", "warning")
        assert issue.message.strip() and len(issue.message) < 2000
        assert not any(word in issue.message for word in INTERNALS), issue


@FUZZ
@given(st.data())
def test_mutated_source_configs_are_rejected_cleanly_or_round_trip(data: st.DataObject) -> None:
    doc = copy.deepcopy(VALID_CONFIGS[data.draw(st.sampled_from(sorted(VALID_CONFIGS)))])
    for _ in range(data.draw(st.integers(1, 3))):
        if _locations(doc):
            _mutate(data, doc)
    before = copy.deepcopy(doc)
    config, issues = validate_source_data(doc, DESTINATIONS)
    assert doc == before, "validation mutated its input"
    _assert_readable(issues)
    if config is None:
        assert any(i.severity == "error" for i in issues)
        return
    saved = dump_yaml(config)
    again, issues = validate_source_data(parse_yaml(saved)[0], DESTINATIONS)
    assert issues == [] and again == config


@FUZZ
@given(st.data())
def test_random_top_level_values_are_rejected_cleanly(data: st.DataObject) -> None:
    doc = data.draw(st.dictionaries(KEYS, VALUES, max_size=6) | VALUES)
    config, issues = validate_source_data(doc, DESTINATIONS)
    _assert_readable(issues)
    assert config is None or issues == [] or all(i.severity == "warning" for i in issues)


@settings(max_examples=EXAMPLES // 2, deadline=None, database=None)
@given(st.data())
def test_mutated_destinations_are_rejected_cleanly(data: st.DataObject) -> None:
    doc = copy.deepcopy(VALID_DESTINATIONS[data.draw(st.sampled_from(sorted(VALID_DESTINATIONS)))])
    for _ in range(data.draw(st.integers(1, 2))):
        if _locations(doc):
            _mutate(data, doc)
    before = copy.deepcopy(doc)
    config, issues = validate_destination_data(doc)
    assert doc == before
    _assert_readable(issues)
    assert (config is None) == bool(issues)


@settings(max_examples=EXAMPLES * 2 // 3, deadline=None, database=None)
@given(st.text(max_size=200) | st.builds(lambda parts: "\n".join(parts), st.lists(
    st.sampled_from(["a: 1", "- x", "  b: [", "&a x", "*a", "!!python/object:os.system {}", "? [1]", ": 2",
                     "c: {d: e}", "---", "'", '"', "\t", "key: value", "k: !!set {a}", "#"]), max_size=8)))
def test_random_yaml_text_never_raises(text: str) -> None:
    data, issues = parse_yaml(text)
    _assert_readable(issues)
    if issues:
        assert data is None
    else:
        _assert_readable(validate_source_data(data)[1])
