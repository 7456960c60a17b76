"""The `ingest` command's contract: exit codes and one `<file>:<yaml.path>: <message>` line per
problem for `validate`, the fields of `list --json`, and the JSON Schema from `schema`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ingestion_core.cli.main import main

SHOP = textwrap.dedent("""\
    name: shop
    owner: market-de
    description: the demo shop
    source: {type: sqlite, path: demo/data/shop.sqlite}
    tables:
      - {name: orders, mode: merge, primary_key: order_id}
      - {name: customers}
""")
BROKEN = textwrap.dedent("""\
    name: broken
    owner: market-de
    ownr: x
    source: {type: postgres, host: db, database: s, password: hunter2-literal}
    tables:
      - {name: orders, mode: incremental}
      - {name: "orders; drop table x"}
    schedule: "0 6 * *"
""")
LINE = re.compile(r"^(?P<file>[^:]+):(?P<path>[^:]*): (?P<message>.+)$")


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def sources(ingest_env: Path) -> Path:
    return ingest_env / "configs" / "sources"


def test_validate_valid_files_exits_0(sources: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(sources, "shop", SHOP)
    assert main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == "" and "1 of 1 files valid" in err


def test_validate_default_is_the_config_dir(sources: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(sources, "shop", SHOP)
    assert main(["validate"]) == 0
    assert "2 of 2 files valid" in capsys.readouterr().err  # the source and destinations/local_duckdb.yaml


def test_validate_broken_file_prints_one_line_per_error(sources: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(sources, "broken", BROKEN)
    assert main(["validate", str(path)]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert {m["file"] for m in parsed} == {str(path)}
    by_path = {m["path"]: m["message"] for m in parsed}
    # one run reports every problem: field errors and what each table's mode needs, side by side
    assert set(by_path) == {"ownr", "source.password", "tables[0].cursor", "tables[1].name", "schedule"}
    assert "table 'orders' has mode incremental but no cursor" in by_path["tables[0].cursor"]
    assert "did you mean 'owner'" in by_path["ownr"]
    assert "literal secret" in by_path["source.password"] and "hunter2-literal" not in out + err
    assert "0 of 1 files valid" in err


def test_validate_a_folder_reports_every_file(sources: Path, ingest_env: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    write(sources, "shop", SHOP)
    write(sources, "broken", BROKEN)
    write(sources, "syntax", "name: syntax\nowner: [\n")
    write(ingest_env / "configs" / "destinations", "lake", "type: filesystem\nbucket_url: file:///l\nformat: csv\n")
    assert main(["validate", str(ingest_env / "configs")]) == 1
    out, err = capsys.readouterr()
    files = {LINE.match(line)["file"] for line in out.splitlines()}
    assert files == {str(sources / "broken.yaml"), str(sources / "syntax.yaml"),
                     str(ingest_env / "configs" / "destinations" / "lake.yaml")}
    assert re.search(r"syntax\.yaml:line 3, column 1: YAML syntax error", out)
    assert "lake.yaml:format: 'csv' is not allowed; choose one of parquet, jsonl, delta" in out
    assert "2 of 5 files valid" in err


def test_validate_checks_destination_names_against_the_config_dir(sources: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = write(sources, "shop", SHOP + "destination: nowhere\n")
    assert main(["validate", str(path)]) == 1
    assert "shop.yaml:destination: destination 'nowhere' does not exist; choose one of local_duckdb" in \
        capsys.readouterr().out


def test_validate_name_must_match_file(sources: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(sources, "other", SHOP)
    assert main(["validate", str(path)]) == 1
    assert "other.yaml:name: name 'shop' differs from the file name 'other.yaml'" in capsys.readouterr().out


def test_warnings_do_not_fail(sources: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(sources, "shop", SHOP.replace("{name: customers}", "{name: customers, write_disposition: replace}"))
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path}:tables[1].write_disposition: warning: 'write_disposition' is now called 'mode'" in out


def test_validate_missing_file_and_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 1
    assert "cannot read the file" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    assert main(["validate", str(tmp_path / "empty")]) == 1
    assert "no YAML files found" in capsys.readouterr().err


def test_list_table(sources: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(sources, "shop", SHOP)
    write(sources, "broken", BROKEN)
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "OWNER", "TABLES", "DESTINATION", "VALID"]
    assert lines[1].split()[:6] == ["broken", "postgres", "market-de", "2", "local_duckdb", "no"]
    assert lines[2].split() == ["shop", "sqlite", "market-de", "2", "local_duckdb", "yes"]


def test_list_json(sources: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(sources, "shop", SHOP)
    write(sources, "broken", BROKEN)
    (sources / "Bad Name.yaml").write_text(SHOP)
    write(sources, "odd", "name: odd\nowner: 7\nsource: [1]\ntables: 3\n")
    assert main(["list", "--json"]) == 0
    listed = {s["name"]: s for s in json.loads(capsys.readouterr().out)}
    assert set(listed) == {"shop", "broken", "Bad Name", "odd"}
    for entry in listed.values():
        assert {"name", "type", "owner", "tables", "destination", "valid"} <= set(entry)
    assert {k: listed["shop"][k] for k in ("type", "owner", "tables", "destination", "valid")} == {
        "type": "sqlite", "owner": "market-de", "tables": 2, "destination": "local_duckdb", "valid": True}
    assert listed["broken"]["valid"] is False and listed["broken"]["issues"]
    assert listed["Bad Name"]["valid"] is False and listed["odd"]["owner"] == "7"


def test_list_with_no_sources(ingest_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_schema_prints_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert "oneOf" in schema or "anyOf" in schema
    assert main(["schema", "--destination"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "Ingestion destination file"


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["frobnicate"])
    assert raised.value.code == 2


def test_module_entry_point_runs_validate(sources: Path, ingest_env: Path) -> None:
    good, bad = write(sources, "shop", SHOP), write(sources, "broken", BROKEN)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    ok = subprocess.run([sys.executable, "-m", "ingestion_core", "validate", str(good)],
                        capture_output=True, text=True, env=env, cwd=ingest_env, timeout=120)
    assert (ok.returncode, ok.stdout) == (0, "")
    failed = subprocess.run([sys.executable, "-m", "ingestion_core", "validate", str(bad)],
                            capture_output=True, text=True, env=env, cwd=ingest_env, timeout=120)
    assert failed.returncode == 1
    assert f"{bad}:schedule: '0 6 * *' is not a 5-field cron expression" in failed.stdout
    assert "hunter2-literal" not in failed.stdout + failed.stderr


def test_the_readmes_check_secrets_command_passes_on_the_repos_configs(tmp_path: Path) -> None:
    """QA: on a fresh clone it exited 1 with 18 errors, all placeholder secrets of configs/templates/."""
    repo = Path(__file__).resolve().parents[2]
    [command] = [line.split("#")[0].split() for line in (repo / "README.md").read_text().splitlines()
                 if line.startswith("ingest validate --check-secrets")]
    shutil.copytree(repo / "configs", tmp_path / "configs")  # a fresh clone: no secrets file, no INGEST_* settings
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INGEST_", "SECRETS__", "DLT_"))}
    result = subprocess.run([sys.executable, "-m", "ingestion_core", *command[1:]], capture_output=True, text=True,
                            env={**env, "PYTHONPATH": str(repo)}, cwd=tmp_path, timeout=120)
    assert (result.returncode, result.stdout) == (0, ""), result.stdout
    files = sorted(p for p in (tmp_path / "configs").rglob("*.y*ml"))
    assert f"{len(files)} of {len(files)} files valid" in result.stderr
    templates = len(list((tmp_path / "configs" / "templates").glob("*.y*ml")))
    assert templates and f"{templates} templates checked as files only" in result.stderr


def test_check_secrets_still_reports_a_source_whose_secret_is_not_set(sources: Path, ingest_env: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    templates = ingest_env / "configs" / "templates"
    templates.mkdir()
    text = SHOP.replace("{type: sqlite, path: demo/data/shop.sqlite}",
                        "{type: postgres, host: db, database: s, username: u, password: '${secrets.shop.password}'}")
    write(sources, "shop", text)
    write(templates, "postgres", text.replace("name: shop", "name: postgres"))
    assert main(["validate", "--check-secrets"]) == 1
    out = capsys.readouterr().out.splitlines()
    expected = f"{sources / 'shop.yaml'}:source.password: secret ${{secrets.shop.password}}"
    assert len(out) == 1 and out[0].startswith(expected)


def test_dlt_telemetry_is_off_unless_asked_for() -> None:
    import subprocess
    import sys

    code = ("import ingestion_core\nfrom dlt.common.configuration import resolve_configuration\n"
            "from dlt.common.configuration.specs import RuntimeConfiguration\n"
            "print(resolve_configuration(RuntimeConfiguration()).dlthub_telemetry)")
    env = {k: v for k, v in os.environ.items() if k != "RUNTIME__DLTHUB_TELEMETRY"}
    off = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    on = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                        env={**env, "RUNTIME__DLTHUB_TELEMETRY": "true"})
    assert (off.stdout.strip(), on.stdout.strip()) == ("False", "True")


def test_validate_check_tables_names_a_missing_table_and_the_closest(sources: Path, ingest_env: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    import sqlite3

    with sqlite3.connect(ingest_env / "crm.sqlite") as con:
        con.execute("CREATE TABLE contacts (id INTEGER PRIMARY KEY)")
    path = write(sources, "crm", "name: crm\nowner: market-de\nsource: {type: sqlite, path: crm.sqlite}\n"
                 "tables:\n  - {name: contact}\n")
    assert main(["validate", str(path)]) == 0  # on paper it is fine
    assert main(["validate", "--check-tables", str(path)]) == 1
    out = capsys.readouterr().out
    assert "crm.yaml:tables[0].name: table 'contact' is not in the database: did you mean 'contacts'?" in out


def test_validate_check_tables_reports_a_misspelled_table_beside_the_files_other_problems(
        sources: Path, ingest_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """QA: incremental without cursor, merge without primary key and a misspelled table took three
    fix-and-rerun rounds; one run now names all three."""
    import sqlite3

    with sqlite3.connect(ingest_env / "crm.sqlite") as con:
        for name in ("orders", "customers", "contacts"):
            con.execute(f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, updated_at TEXT)")
    path = write(sources, "crm", "name: crm\nowner: market-de\nsource: {type: sqlite, path: crm.sqlite}\n"
                 "tables:\n  - {name: orders, mode: incremental}\n  - {name: customers, mode: merge}\n"
                 "  - {name: contact}\n")
    assert main(["validate", "--check-tables", str(path)]) == 1
    by_path = {m["path"]: m["message"] for m in map(LINE.match, capsys.readouterr().out.splitlines())}
    assert set(by_path) == {"tables[0].cursor", "tables[1].primary_key", "tables[2].name"}
    assert "did you mean 'contacts'?" in by_path["tables[2].name"]

