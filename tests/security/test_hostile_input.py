"""Hostile configs, one table, three ways in: the store (``ConfigStore.save_text``: nothing is written),
validation (``validate_source_data``) and the CLI (``ingest validate``: exit 1, one line per problem).
Path traversal and unicode tricks in names, SQL-identifier injection in table / column / check fields,
YAML tags, aliases (billion laughs) and oversized files are all refused with a message that names the
field (its YAML path, or the line and column where parsing stopped), the bad value and the fix.

Complements tests/unit/test_config_store.py (parse_yaml level) and tests/unit/test_models.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ingestion_core.config.store import MAX_FILE_BYTES, ConfigStore, parse_yaml, validate_source_data
from ingestion_core.config.validation import ConfigError
from tests.conftest import REPO


def doc(table: dict[str, Any] | None = None, **top: Any) -> str:
    """A valid sqlite source as YAML (JSON flow style, so any character can be written escaped)."""
    data = {"name": "shop", "owner": "market-de", "source": {"type": "sqlite", "path": "shop.sqlite"},
            "tables": [{"name": "orders", "mode": "full", **(table or {})}], **top}
    return "\n".join(f"{key}: {json.dumps(value)}" for key, value in data.items()) + "\n"


NAME_MESSAGE = ["is not a valid name", "lower-case letters, digits and '_'"]
IDENT_MESSAGE = ["is not a plain SQL identifier", "no quotes, dots, semicolons or comment markers"]
LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))

CASES: list[tuple[str, str, str, list[str]]] = [
    # path traversal and tricks in names
    ("name ../", doc(name="../../etc/passwd"), "name", NAME_MESSAGE),
    ("name absolute", doc(name="/etc/passwd"), "name", NAME_MESSAGE),
    ("name NUL", doc(name="shop\x00.yaml"), "name", NAME_MESSAGE),
    ("name backslash", doc(name="..\\..\\shop"), "name", NAME_MESSAGE),
    ("name url-encoded dots", doc(name="%2e%2e%2fshop"), "name", NAME_MESSAGE),
    ("name fullwidth dots and slash", doc(name="\uff0e\uff0e\uff0fshop"), "name", NAME_MESSAGE),
    ("name right-to-left override", doc(name="shop\u202elmy.exe"), "name", NAME_MESSAGE),
    ("name cyrillic homoglyph", doc(name="\u0455hop"), "name", NAME_MESSAGE),
    ("name zero-width space", doc(name="sh\u200bop"), "name", NAME_MESSAGE),
    ("name trailing newline", doc(name="shop\n"), "name", NAME_MESSAGE),
    ("owner traversal", doc(owner="../admins"), "owner", ["is not a valid team name"]),
    # SQL-identifier injection in table, column and check fields
    ("table double quote", doc({"name": 'x"; DROP TABLE y; --'}), "tables[0].name", IDENT_MESSAGE),
    ("table backticks", doc({"name": "x`; DROP TABLE y"}), "tables[0].name", IDENT_MESSAGE),
    ("table brackets", doc({"name": "[x]; DROP TABLE y"}), "tables[0].name", IDENT_MESSAGE),
    ("table block comment", doc({"name": "x/**/OR/**/1"}), "tables[0].name", IDENT_MESSAGE),
    ("table line comment", doc({"name": "x -- y"}), "tables[0].name", IDENT_MESSAGE),
    ("table NUL", doc({"name": "x\x00y"}), "tables[0].name", IDENT_MESSAGE),
    ("table zero-width", doc({"name": "ord\u200bers"}), "tables[0].name", IDENT_MESSAGE),
    ("source_table quote", doc({"source_table": "t' OR '1'='1"}), "tables[0].source_table", IDENT_MESSAGE),
    ("schema dotted injection", doc({"schema": 'public"."x'}), "tables[0].schema", IDENT_MESSAGE),
    ("cursor injection", doc({"mode": "incremental", "cursor": "updated_at) OR (1=1"}), "tables[0].cursor",
     IDENT_MESSAGE),
    ("primary key backtick", doc({"mode": "merge", "primary_key": ["id`, `x"]}), "tables[0].primary_key[0]",
     IDENT_MESSAGE),
    ("include column bracket", doc({"include_columns": ["a]; DROP TABLE y; --"]}), "tables[0].include_columns[0]",
     IDENT_MESSAGE),
    ("filter column", doc({"filter": [{"column": "c = 1 OR 1", "op": "=", "value": 1}]}), "tables[0].filter[0].column",
     IDENT_MESSAGE),
    ("check not_null", doc({"checks": [{"not_null": 'id"; DROP TABLE orders; --'}]}),
     "tables[0].checks[0].not_null", IDENT_MESSAGE),
    ("check unique list", doc({"checks": [{"unique": ["id", "x`y"]}]}), "tables[0].checks[0].unique[1]",
     IDENT_MESSAGE),
    ("check custom_sql writes", doc({"checks": [{"custom_sql": {"sql": "DELETE FROM {table}"}}]}),
     "tables[0].checks[0].custom_sql.sql", ["custom_sql must be one read-only SELECT"]),
    ("check custom_sql two statements", doc({"checks": [{"custom_sql": {"sql": "SELECT 1; DROP TABLE {table}"}}]}),
     "tables[0].checks[0].custom_sql.sql", ["found 2 statements"]),
    # YAML-level attacks: located by line and column, the construct named
    ("python object tag", "name: !!python/object/apply:os.system ['id']\n", "line 1, column 7", ["!!python/object"]),
    ("python name tag", doc() + "description: !!python/name:os.system\n", "line 5, column 14", ["tags"]),
    ("alias", doc() + "description: &d x\nschedule: *d\n", "line 6", ["aliases"]),
    ("billion laughs", LAUGHS, "line 2", ["aliases"]),
    ("oversized", doc() + "description: '" + "x" * MAX_FILE_BYTES + "'\n", "", ["512 KiB"]),
]
IDS = [c[0] for c in CASES]


def check_issue(issues: list[Any], path: str, fragments: list[str]) -> None:
    located = [i for i in issues if i.path == path or (path and i.path.startswith(path + ","))]
    if not path:  # oversized: refused before parsing, whatever the location says
        located = issues
    assert located, f"no issue at {path!r}: {[(i.path, i.message) for i in issues]}"
    message = located[0].message
    assert all(f.lower() in message.lower() for f in fragments), message


@pytest.mark.parametrize(("text", "path", "fragments"), [c[1:] for c in CASES], ids=IDS)
def test_validation_refuses_with_the_field(text: str, path: str, fragments: list[str]) -> None:
    data, issues = parse_yaml(text)
    if data is not None:
        _config, issues = validate_source_data(data)
    check_issue(issues, path, fragments)


@pytest.mark.parametrize(("text", "path", "fragments"), [c[1:] for c in CASES], ids=IDS)
def test_the_store_writes_nothing(ingest_env: Path, text: str, path: str, fragments: list[str]) -> None:
    store = ConfigStore()
    with pytest.raises(ConfigError) as refused:
        store.save_text("sources", "shop", text, actor="mallory", expected_revision=None)
    check_issue(refused.value.issues, path, fragments)
    assert list((ingest_env / "configs" / "sources").iterdir()) == []
    assert not list(ingest_env.parent.glob("**/passwd"))


UNICODE_NAMES = ["\uff0e\uff0e\uff0fx", "\u0455hop", "sh\u200bop", "shop\u202e", "%2e%2e%2fx", "..\\x", "sh\x00op",
                 "/etc/passwd", "shop/../../x"]


@pytest.mark.parametrize("name", UNICODE_NAMES, ids=repr)
def test_file_names_that_escape_or_deceive_are_refused(ingest_env: Path, name: str) -> None:
    store = ConfigStore()
    for call in (lambda: store.path("sources", name), lambda: store.load("sources", name),
                 lambda: store.save_text("sources", name, doc(), actor="mallory", expected_revision=None)):
        with pytest.raises(ValueError, match="is not a valid config name: use lower-case letters"):
            call()
    assert list((ingest_env / "configs" / "sources").iterdir()) == []


def run_cli_validate(tmp_path: Path) -> tuple[subprocess.CompletedProcess, Path]:
    folder = tmp_path / "hostile"
    folder.mkdir()
    for index, (_label, text, _path, _fragments) in enumerate(CASES):
        (folder / f"case{index:02d}.yaml").write_text(text, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "ingestion_core", "validate", str(folder)], cwd=REPO,
                          env=os.environ.copy(), capture_output=True, text=True, timeout=300)
    return done, folder


def test_the_cli_refuses_every_case_with_its_field(tmp_path: Path) -> None:
    done, folder = run_cli_validate(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    records: list[str] = []  # a value with a line break spills onto the next line: glue it back
    for line in done.stdout.splitlines():
        if line.startswith(f"{folder}/") or not records:
            records.append(line)
        else:
            records[-1] += "\n" + line
    for index, (label, _text, path, fragments) in enumerate(CASES):
        mine = [r for r in records if r.startswith(f"{folder / f'case{index:02d}.yaml'}:")]
        assert mine, f"{label}: no line in\n{done.stdout}"
        assert any(f":{path}" in r and all(f.lower() in r.lower() for f in fragments) for r in mine), f"{label}: {mine}"
    assert f"0 of {len(CASES)} files valid" in done.stdout + done.stderr


def test_the_cli_prints_each_error_on_one_line_with_control_characters_escaped(tmp_path: Path) -> None:
    done, folder = run_cli_validate(tmp_path)
    stray = [line for line in done.stdout.splitlines() if line and not line.startswith(f"{folder}/")]
    raw = [c for c in ("\x00", "\u202e", "\u200b") if c in done.stdout]
    assert stray == [] and raw == [], (stray, [hex(ord(c)) for c in raw])
