"""The ``ingest`` command. Its output and exit codes are a contract: tests, CI, Databricks jobs
and operators script against them (see docs/architecture.md). ``--json`` outputs only ever
grow: fields are added, never renamed or removed.

    ingest validate [PATH ...]     exit 0 if all valid, else 1; one line per problem:
                                   <file>:<yaml.path>: <message with the fix>
    ingest list [--json]           the sources: name, type, owner, tables, destination, valid
    ingest schema [--destination]  JSON Schema of a source (or destination) file
    ingest import-excel XLSX       Excel job sheet -> source YAML (dry run unless --write)
    ingest secrets push --to scope|keyvault   copy the referenced secrets (see cli_secrets)
    ingest demo                    generate the demo data the demo_* sources read
"""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ingestion_core.common import preload, settings
from ingestion_core.config import access
from ingestion_core.config.secrets import mask
from ingestion_core.config.store import (
    ConfigStore,
    ConflictError,
    parse_yaml,
    validate_destination_data,
    validate_source_data,
)
from ingestion_core.config.validation import ConfigError, ConfigIssue

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def register(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = func
        return func
    return register


# --- validate ------------------------------------------------------------------------------

def _yaml_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*.y*ml") if not p.name.startswith(".")))
        else:
            files.append(path)
    return files


def _store_for(path: Path) -> ConfigStore:
    """The config dir a file belongs to (for destination names), else the default one."""
    parent = path.absolute().parent
    if parent.name in ("sources", "destinations", "templates"):
        return ConfigStore(parent.parent)
    return ConfigStore()


def validate_file(path: Path) -> list[ConfigIssue]:
    """Every problem of one source, destination or teams file (kind told by its name or content)."""
    if path.name == access.TEAMS_FILE:
        try:
            access.load_teams(path)
        except ConfigError as exc:
            return exc.issues
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [ConfigIssue("", f"cannot read the file: {exc.__class__.__name__}: {exc}")]
    data, issues = parse_yaml(text)
    if issues:
        return issues
    file_name = path.stem if path.parent.name in ("sources", "destinations") else None
    is_destination = isinstance(data, dict) and "source" not in data and "type" in data
    if path.parent.name == "destinations" or is_destination:
        return validate_destination_data(data, file_name)[1]
    store = _store_for(path)
    return store.with_dependency_issues(*validate_source_data(data, store.destinations(), file_name))[1]


@command("validate")
def cmd_validate(args: argparse.Namespace) -> int:
    files = _yaml_files(args.paths or [str(settings.config_dir())])
    if not files:
        print("no YAML files found", file=sys.stderr)
        return 1
    failed = 0
    checked: dict[str, tuple[str | None, list[str]]] = {}
    templates = [path for path in files if is_template(path)]
    for path in files:
        issues = validate_file(path)
        if args.check_secrets and path not in templates:
            issues += missing_secrets(path, checked)
        if args.check_tables and path not in templates:
            issues += missing_tables(path)
        for issue in issues:
            print(issue.line(str(path)))
        failed += any(i.severity == "error" for i in issues)
    print(f"{len(files) - failed} of {len(files)} files valid", file=sys.stderr)
    if templates and (args.check_secrets or args.check_tables):
        print(f"{len(templates)} templates checked as files only: their secret references and databases are "
              "placeholders for the sources made from them", file=sys.stderr)
    return 1 if failed else 0


def is_template(path: Path) -> bool:
    """A file of a config dir's ``templates/`` folder: a starting point, not a source that runs."""
    return path.absolute().parent.name == "templates"


def missing_tables(path: Path) -> list[ConfigIssue]:
    """An error per table a database source names that its database lacks (with the closest
    names); a warning when the database could not be asked. Other files: nothing. A file with
    other problems is checked too when its source block is right: every problem in one run."""
    from ingestion_core.onboarding.table_check import check_table_names

    text = path.read_text(encoding="utf-8")
    config, _ = _store_for(path).validate_text("sources", text, path.stem)
    if config is None:
        config = _tables_to_look_up(text)
    if config is None:  # a destination or teams file, or a source block that is wrong itself
        return []
    check = check_table_names(config)
    return check.issues if check.state == "missing" else \
        [ConfigIssue("source", check.note, "warning")] if check.state == "unknown" else []


def _tables_to_look_up(text: str) -> Any:
    """The file's source block with only the names of its tables (same order), when those alone
    are a valid source file: what looking the tables up needs of a file that is wrong elsewhere."""
    from pydantic import ValidationError

    from ingestion_core.config.models import parse_source_file

    data, problems = parse_yaml(text)
    tables = data.get("tables") if isinstance(data, dict) and not problems else None
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        return None
    names = [{k: t[k] for k in ("name", "schema", "source_table") if k in t} for t in tables]
    try:
        return parse_source_file({"name": "tables", "owner": "ingest", "source": data.get("source"), "tables": names})
    except ValidationError:
        return None


def missing_secrets(path: Path, checked: dict[str, tuple[str | None, list[str]]]) -> list[ConfigIssue]:
    """One issue per reference of the file that no provider of the chain has (``checked``:
    the answers so far, so that each reference is looked up once)."""
    from ingestion_core.config.secrets import locate_secret, reference_paths

    try:
        data, problems = parse_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return []
    issues = []
    for where, reference in [] if problems else reference_paths(data):
        if reference.text not in checked:
            checked[reference.text] = locate_secret(reference)
        found, looked = checked[reference.text]
        if found is None:
            issues.append(ConfigIssue(where, f"secret {reference.text} is not set in any provider (looked in: "
                                      f"{'; '.join(looked)}); add it to one of them, e.g. ingest secrets push"))
    return issues


# --- list / schema -------------------------------------------------------------------------

@command("list")
def cmd_list(args: argparse.Namespace) -> int:
    summaries = ConfigStore().list_sources()
    if args.json:
        print(json.dumps([{
            "name": s.name, "type": s.type, "owner": s.owner, "destination": s.destination,
            "tables": s.tables, "enabled": s.enabled, "valid": s.valid,
            "issues": [{"path": i.path, "message": i.message, "severity": i.severity} for i in s.issues],
        } for s in summaries], indent=2))
        return 0
    rows = [("NAME", "TYPE", "OWNER", "TABLES", "DESTINATION", "VALID")] + [
        (s.name, s.type or "?", s.owner or "?", str(s.tables), s.destination or "?",
         "yes" if s.valid else f"no ({len([i for i in s.issues if i.severity == 'error'])} problems)")
        for s in summaries
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


@command("schema")
def cmd_schema(args: argparse.Namespace) -> int:
    from ingestion_core.config.schema import destination_file_schema, render, source_file_schema

    sys.stdout.write(render(destination_file_schema() if args.destination else source_file_schema()))
    return 0


# --- import-excel / demo -------------------------------------------------------------------

@command("import-excel")
def cmd_import_excel(args: argparse.Namespace) -> int:
    from ingestion_core.config.excel.importer import import_workbook

    store = ConfigStore()
    result = import_workbook(Path(args.workbook), secrets_path=Path(args.secrets) if args.secrets else None,
                             owner=args.owner, store=store, destination=args.destination)
    for problem in result.skipped:
        print(f"{args.workbook}:{problem.where}: skipped: {problem.reason}")
    for problem in result.dropped:  # grouped by source
        print(f"{problem.where}: dropped from {problem.source}: {problem.reason}")
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if not args.write:
        for kind, files in (("destinations", result.destinations), ("sources", result.files)):
            for name, text in files.items():
                print(f"--- would write {store.path(kind, name)}")
                print(text)
        made = f"{len(result.destinations)} destination file(s), " if result.destinations else ""
        print(f"dry run: {made}{len(result.files)} source file(s), {len(result.skipped)} row(s) skipped, "
              f"{len(result.dropped)} value(s) dropped; add --write to save", file=sys.stderr)
        return 0 if result.files or not result.skipped else 1
    written = result.write(store, actor=args.actor)
    for path in written:
        print(f"wrote {path}")
    sources = [p for p in written if p.parent.name == "sources"]
    made = f"{len(written) - len(sources)} destination file(s), " if len(written) > len(sources) else ""
    print(f"{made}{len(sources)} source file(s) written, {len(result.skipped)} row(s) skipped, "
          f"{len(result.dropped)} value(s) dropped", file=sys.stderr)
    return 0


@command("demo")
def cmd_demo(args: argparse.Namespace) -> int:
    from ingestion_core.demo import generate_demo

    out = Path(args.out) if args.out else settings.project_root() / "demo" / "data"
    for path in generate_demo(out, force=args.force):
        print(f"wrote {path}")
    return 0


# --- parser --------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ingest", description="Self-service data ingestion.")
    parser.add_argument("--actor", default=None, help="who is acting (default: $INGEST_ACTOR or the OS user)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from ingestion_core.cli.databricks import add_databricks_commands
    from ingestion_core.cli.engine import add_engine_commands
    from ingestion_core.cli.secrets import add_secrets_commands

    add_engine_commands(sub, COMMANDS)
    add_databricks_commands(sub, COMMANDS)
    add_secrets_commands(sub, COMMANDS)

    p = sub.add_parser("validate", help="validate config files (usable as a pre-commit hook)")
    p.add_argument("paths", nargs="*", help="files or folders (default: the config dir)")
    p.add_argument("--check-secrets", action="store_true",
                   help="also report each secret reference no provider has (values are never printed; "
                        "templates/ are not checked: their references are placeholders)")
    p.add_argument("--check-tables", action="store_true",
                   help="also ask each database source's database whether the tables it names exist "
                        "(an unreachable database is a warning, not an error; templates/ are not checked)")

    p = sub.add_parser("list", help="list the configured sources")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("schema", help="print the JSON Schema of a source file")
    p.add_argument("--destination", action="store_true", help="the destination file's schema instead")

    p = sub.add_parser("import-excel", help="turn the Excel job sheet into source YAML files")
    p.add_argument("workbook")
    p.add_argument("--secrets", help="secrets file holding the [sources.<name>] connection sections")
    p.add_argument("--owner", default="data-ops", help="owner team of the imported sources")
    p.add_argument("--write", action="store_true", help="write the files (default: show them)")
    p.add_argument("--destination", help="destination of the imported sources: the name of the destination made "
                   "from [destination.filesystem] (default: filesystem), or an existing one")

    p = sub.add_parser("demo", help="generate the demo SQLite database and files")
    p.add_argument("--out", help="folder (default: demo/data beside the config dir)")
    p.add_argument("--force", action="store_true", help="regenerate even if present")
    return parser


def skip_exit_collection() -> None:
    """At exit, the interpreter's last garbage collections walk every object the process still
    holds: with dlt, pyarrow, pandas and SQLAlchemy loaded, 0.6 s of a 3 s ``ingest preview``
    (measured). Freezing them just before (``gc.freeze`` from an exit handler) skips that walk.
    Nothing is lost: objects are still released by reference counting, other exit handlers
    (logging's flush, dlt's) still run, and every file the CLI writes (records, logs, DuckDB,
    dlt state) is closed by then. Python never promised finalizers of objects alive at exit."""
    global _EXIT_COLLECTION_SKIPPED
    if not _EXIT_COLLECTION_SKIPPED:
        atexit.register(gc.freeze)
        _EXIT_COLLECTION_SKIPPED = True


_EXIT_COLLECTION_SKIPPED = False
# Commands that never run dlt: they skip importing it (0.8 s) for preload.skip_streamlit_secrets_lookup.
NO_DLT_COMMANDS = frozenset({"validate", "list", "schema", "import-excel", "demo", "runs", "prune", "secrets",
                             "scheduler"})


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    skip_exit_collection()
    if args.command not in NO_DLT_COMMANDS:  # a run or preview imports the rest before its threads start
        preload.skip_streamlit_secrets_lookup()
    args.actor = args.actor or access.default_actor()
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130
    except (ValueError, LookupError, OSError, ConflictError) as exc:
        print(f"error: {mask(exc)}", file=sys.stderr)
        return 1

