"""Field errors that say which field, the value, what is allowed and the fix (QA review of the
source form: "must be more than 0.0; got -5.0" named no field, "tables: needs at least 1 entry;
got []" no fix, "'format' is required" no file set)."""

from __future__ import annotations

import pytest

from ingestion_core.onboarding import Draft, validate_draft

REST = {"name": "api", "owner": "market-de", "source": {"type": "rest_api", "base_url": "http://api.local"},
        "tables": [{"name": "orders", "path": "orders"}]}
FILES = {"name": "drop", "owner": "market-de", "source": {"type": "filesystem", "bucket_url": "file:///tmp"},
         "tables": [{"name": "exports", "glob": "exports/*"}]}
PG = {"name": "crm", "owner": "market-de", "source": {"type": "postgres", "host": "db", "database": "crm"},
      "tables": [{"name": "contacts", "schema": "crm"}]}


def _with(base: dict, section: str, **values: object) -> dict:
    return {**base, section: {**base[section], **values}}


CASES = [
    ("rate limit", _with(REST, "source", rate_limit_per_second=-5.0), "source.rate_limit_per_second",
     "'rate_limit_per_second' must be more than 0; got -5.0: set a value in that range, or leave it empty (not set)"),
    ("timeout", _with(REST, "source", timeout_seconds=-1.0), "source.timeout_seconds",
     "'timeout_seconds' must be more than 0 and at most 3600; got -1.0: set a value in that range, or leave it "
     "empty for the default (30)"),
    ("retry attempts", _with(REST, "source", retry_attempts=-3), "source.retry_attempts",
     "'retry_attempts' must be between 0 and 20; got -3: set a value in that range, or leave it empty for the "
     "default (5)"),
    ("no table", {**PG, "tables": []}, "tables",
     "needs at least 1 entry; got []. Choose at least one table: tick one in the form's Tables step, or add one "
     "by name (in YAML: an entry under tables:, e.g. - name: orders)"),
    ("file set without format", FILES, "tables[0].format",
     "table 'exports' (files 'exports/*'): 'format' is required (File format: csv, jsonl or parquet); set it to "
     "one of csv, jsonl, parquet"),
    ("a table's bound", {**PG, "tables": [{"name": "contacts", "schema": "crm", "chunk_size": 0}]},
     "tables[0].chunk_size", "table 'contacts': 'chunk_size' must be between 1 and"),
]


@pytest.mark.parametrize(("data", "path", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_field_error_names_the_field_the_value_the_range_and_the_fix(data: dict, path: str, expected: str) -> None:
    model, issues = validate_draft(Draft(data))
    assert model is None
    messages = {i.path: i.message for i in issues}
    assert messages.get(path, "").startswith(expected), messages
