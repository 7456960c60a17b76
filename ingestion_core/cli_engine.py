"""The ``ingest`` commands that move data: test-connection, preview, run, cancel, state,
reset-state, runs, prune.

Exit codes of ``preview`` and ``run``: 0 success, 1 failed, 2 loaded but an error-severity
quality check failed, 3 partial (some tables failed), 130 cancelled.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingestion_core import settings
from ingestion_core.config_store import ConfigStore
from ingestion_core.models.base import parse_duration
from ingestion_core.models.source_file import SourceFileBase
from ingestion_core.records import EXIT_CODES, RunRecord, latest_runs, record_path
from ingestion_core.validation import ConfigError


def load_source_arg(value: str) -> SourceFileBase:
    """SOURCE is a name under configs/sources/ or a path to a YAML file."""
    store = ConfigStore()
    if value.endswith((".yaml", ".yml")) or "/" in value:
        path = Path(value)
        config, issues = store.validate_text("sources", path.read_text(encoding="utf-8"))
        if config is None:
            raise ConfigError(issues, str(path))
        return config
    return store.load_source(value).config


def _tables(value: str | None) -> list[str] | None:
    return [t.strip() for t in value.split(",") if t.strip()] if value else None


def _json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


# --- test-connection -----------------------------------------------------------------------

def cmd_test_connection(args: argparse.Namespace) -> int:
    from ingestion_core.sources import test_connection

    report = test_connection(load_source_arg(args.source))
    if args.json:
        _json(report.as_dict())
    elif report.ok:
        print(f"ok: {report.as_dict()['reason']} ({report.duration_s:.2f} s)")
    else:
        print(f"failed: {report.as_dict()['reason']}\nwhat to do: {report.mitigation}")
    return 0 if report.ok else 1


# --- preview / run -------------------------------------------------------------------------

class TableProgress:
    """Prints each table's state changes (a line per change) when stdout is a terminal."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.seen: dict[str, str] = {}

    def __call__(self, record: RunRecord) -> None:
        if not self.enabled:
            return
        for table in record.tables:
            if self.seen.get(table.name) != table.status:
                self.seen[table.name] = table.status
                detail = f" {table.rows:,} rows in {table.duration_s:.1f} s" if table.status == "success" else ""
                if table.error:
                    detail = f" {table.error.message}"
                print(f"  {table.name}: {table.status}{detail}", flush=True)


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _summary(record: RunRecord) -> None:
    print(f"{record.kind} {record.run_id}: {record.status}, {record.rows_total:,} rows in {record.duration_s:.1f} s")
    for table in record.tables:
        line = f"  {table.name}: {table.status}, {table.rows:,} rows ({table.backend or '-'})"
        if table.error:
            line += f"\n    error: {table.error.message}\n    what to do: {table.error.hint}"
        print(line)
    print(f"record: {record_path(record)}\nlog: {record.log_path}")


def cmd_preview(args: argparse.Namespace) -> int:
    from ingestion_core.runner import preview_source

    config = load_source_arg(args.source)
    result = preview_source(config, actor=args.actor, trigger=args.trigger, tables=_tables(args.tables),
                            limit=args.limit, on_progress=TableProgress(sys.stdout.isatty() and not args.json))
    if args.json:
        _json(result.as_json())
    else:
        _summary(result.record)
    return result.record.exit_code


def cmd_run(args: argparse.Namespace) -> int:
    from ingestion_core.runner import run_source

    config = load_source_arg(args.source)
    signal.signal(signal.SIGTERM, _on_sigterm)
    holder: dict[str, RunRecord] = {}

    def progress(record: RunRecord) -> None:
        holder["record"] = record
        printer(record)

    printer = TableProgress(sys.stdout.isatty() and not args.json)
    try:
        record = run_source(config, actor=args.actor, trigger=args.trigger, tables=_tables(args.tables),
                            destination=args.destination, on_progress=progress, run_id=args.run_id,
                            refresh_tables=_tables(getattr(args, "refresh", None)))
    except KeyboardInterrupt:
        # the record says cancelled; end now rather than wait for the table threads to finish
        if "record" in holder:
            _summary(holder["record"])
        sys.stdout.flush()
        os._exit(EXIT_CODES["cancelled"])
    if args.json:
        _json({"run_id": record.run_id, "status": record.status, "exit_code": record.exit_code,
               "record_path": record_path(record), **record.model_dump(mode="json", exclude={"config_snapshot"})})
    else:
        _summary(record)
    return record.exit_code


# --- cancel / state / reset-state ----------------------------------------------------------

def cmd_cancel(args: argparse.Namespace) -> int:
    from ingestion_core.run_control import cancel_run

    record = cancel_run(args.run_id, actor=args.actor)
    print(f"run {record.run_id} of {record.source}: {record.status}, {record.error.message if record.error else ''}")
    return 0


def cmd_state(args: argparse.Namespace) -> int:
    from ingestion_core.run_control import table_states

    states = table_states(load_source_arg(args.source))
    if args.json:
        _json([vars(s) for s in states])
        return 0
    rows = [("TABLE", "MODE", "CURSOR", "CURSOR VALUE", "INITIAL VALUE", "LAST SUCCESS", "RUN")] + [
        (s.table, s.mode, s.cursor or "-", s.cursor_value if s.cursor_value is not None else "-",
         s.initial_value or "-", f"{s.last_success_at:%Y-%m-%d %H:%M:%S}" if s.last_success_at else "never",
         s.last_run_id or "-") for s in states
    ]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def cmd_reset_state(args: argparse.Namespace) -> int:
    from ingestion_core.run_control import reset_state

    config = load_source_arg(args.source)
    if not args.yes:
        question = (f"reset the incremental state of {config.name}.{args.table}? Its next run reloads it from "
                    "initial_value [y/N] ")
        if not sys.stdin.isatty():
            print(f"error: {question.split('?')[0]} needs a confirmation: add --yes", file=sys.stderr)
            return 1
        if input(question).strip().lower() not in ("y", "yes"):
            print("nothing changed", file=sys.stderr)
            return 1
    reset_state(config, args.table, actor=args.actor)
    print(f"reset the incremental state of {config.name}.{args.table}: its next run reloads it from initial_value")
    return 0


# --- runs / prune --------------------------------------------------------------------------

def cmd_runs(args: argparse.Namespace) -> int:
    runs = latest_runs(source=args.source, status=args.status, limit=args.limit, kind=args.kind)
    if args.json:
        _json([{k: r.get(k) for k in ("run_id", "kind", "source", "status", "trigger", "actor", "started_at",
                                      "duration_s", "rows_total", "error")} for r in runs])
        return 0
    for run in runs:
        print(f"{run['started_at']:%Y-%m-%d %H:%M:%S}  {run['run_id']:<40} {run['kind']:<8} "
              f"{run['status']:<15} {run['rows_total'] or 0:>12,} rows  {run['duration_s'] or 0:8.1f} s")
    if not runs:
        print("no runs recorded yet", file=sys.stderr)
    return 0


def prune(older_than: str, dry_run: bool = False) -> list[Path]:
    """Remove run records, run logs and previews older than ``older_than`` (never configs).

    A preview (its DuckDB file, its pipeline folder) goes as a whole once nothing in it is
    newer than the cutoff; records and logs go file by file."""
    cutoff = datetime.now(UTC).timestamp() - parse_duration(older_than).total_seconds()
    old: list[Path] = []
    for root in (Path(settings.runs_dir()), settings.data_dir() / "logs"):
        if root.is_dir():
            old += sorted(p for p in root.rglob("*") if p.is_file() and p.stat().st_mtime < cutoff)
    previews = settings.data_dir() / "preview"
    if previews.is_dir():
        old += sorted(p for p in previews.iterdir() if _newest_mtime(p) < cutoff)
    if not dry_run:
        for path in old:
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        for root in (Path(settings.runs_dir()), settings.data_dir() / "logs"):
            _remove_empty_folders(root)
    return old


def _newest_mtime(path: Path) -> float:
    if path.is_file():
        return path.stat().st_mtime
    return max((p.stat().st_mtime for p in path.rglob("*")), default=path.stat().st_mtime)


def _remove_empty_folders(root: Path) -> None:
    if not root.is_dir():
        return
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


def cmd_prune(args: argparse.Namespace) -> int:
    removed = prune(args.older_than, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for path in removed:
        print(f"{verb} {path}")
    print(f"{verb} {len(removed)} file(s) older than {args.older_than}", file=sys.stderr)
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    from ingestion_core.alerts import incidents, load_notifications, send_alerts
    from ingestion_core.run_metrics import load_run_data

    store = ConfigStore()
    schedules = {s.name: s.schedule for s in store.list_sources() if s.valid and s.enabled}
    found = incidents(load_run_data(), schedules, datetime.now(UTC), store.first_seen())
    results = send_alerts(load_notifications(), found, dry_run=args.dry_run)
    for result in results:
        state = "would send" if args.dry_run else ("sent" if result["ok"] else f"FAILED ({result.get('error')})")
        print(f"{state} to {result['channel']}: {result['event']} {result['summary']}")
    if not results:
        print("no new incidents", file=sys.stderr)
    return 0 if all(r["ok"] for r in results) else 1


# --- parsers -------------------------------------------------------------------------------

def add_engine_commands(sub: Any, commands: dict[str, Callable[[argparse.Namespace], int]]) -> None:
    """Adds the engine's subcommands to the ``ingest`` parser."""
    p = sub.add_parser("test-connection", help="one round trip to a source: ok, or why not and what to do")
    p.add_argument("source", help="a name under configs/sources/ or a path to a YAML file")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("preview", help="load the first rows of each table into a local DuckDB preview")
    p.add_argument("source")
    p.add_argument("--limit", type=int, default=1000, help="rows per table (default 1000)")
    p.add_argument("--tables", help="comma-separated table names (default: all enabled)")
    p.add_argument("--trigger", default="cli", choices=["cli", "portal", "job", "schedule", "test"])
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("run", help="the real load into the source's destination")
    p.add_argument("source")
    p.add_argument("--tables", help="comma-separated table names (default: all enabled)")
    p.add_argument("--destination", help="another destination name instead of the configured one")
    p.add_argument("--trigger", default="cli", choices=["cli", "portal", "job", "schedule", "test"])
    p.add_argument("--run-id", help="use this run id (the portal passes one to follow the run)")
    p.add_argument("--refresh", metavar="TABLES",
                   help="comma-separated tables to drop and load again from initial_value (without --tables "
                        "only they run)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("cancel", help="stop a running run; it is recorded as cancelled")
    p.add_argument("run_id", help="the run id (`ingest runs` lists them)")

    p = sub.add_parser("state", help="each table's incremental cursor value and last successful run")
    p.add_argument("source")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("reset-state", help="forget a table's incremental cursor: its next run reloads from "
                                           "initial_value")
    p.add_argument("source")
    p.add_argument("table")
    p.add_argument("--yes", action="store_true", help="do not ask for a confirmation")

    p = sub.add_parser("runs", help="recorded runs, newest first")
    p.add_argument("--source")
    p.add_argument("--status")
    p.add_argument("--kind", choices=["run", "preview"])
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("prune", help="remove old run records, logs and preview files (never configs)")
    p.add_argument("--older-than", required=True, help="age, e.g. 30d or 12h")
    p.add_argument("--dry-run", action="store_true", help="list what would be removed")

    p = sub.add_parser("alerts", help="send e-mail / webhook alerts for new failed, quality-failed or late sources")
    p.add_argument("--dry-run", action="store_true", help="list what would be sent")

    commands.update({"alerts": cmd_alerts, "test-connection": cmd_test_connection, "preview": cmd_preview,
                     "run": cmd_run, "runs": cmd_runs, "prune": cmd_prune, "cancel": cmd_cancel,
                     "state": cmd_state, "reset-state": cmd_reset_state})
