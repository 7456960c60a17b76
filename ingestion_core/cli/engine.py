"""The ``ingest`` commands that move data: test-connection, preview, run, cancel, state,
reset-state, runs, prune.

Exit codes of ``preview`` and ``run``: 0 success, 1 failed, 2 loaded but an error-severity
quality check failed, 3 partial (some tables failed), 130 cancelled.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingestion_core.common import settings
from ingestion_core.config.models.base import parse_duration
from ingestion_core.config.models.source_file import SourceFileBase
from ingestion_core.config.store import ConfigStore
from ingestion_core.config.validation import ConfigError
from ingestion_core.observe.records import EXIT_CODES, RunRecord, latest_runs, record_path


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
    print(json.dumps(value, indent=2, default=_json_value))


def _json_value(value: Any) -> str:
    """Times as the run records and ``ingest run --json`` write them (ISO 8601, UTC as Z)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value.tzinfo else value.isoformat()
    return str(value)


# --- test-connection -----------------------------------------------------------------------

def cmd_test_connection(args: argparse.Namespace) -> int:
    from ingestion_core.engine.sources import test_connection

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
                try:
                    print(f"  {table.name}: {table.status}{detail}", flush=True)
                except OSError:  # the terminal went away: the run goes on, the record has it all
                    self.enabled = False


_CANCELLING = threading.Event()


def _on_cancel(signum: int, frame: Any) -> None:
    """SIGTERM / SIGINT: the first one cancels the run (KeyboardInterrupt in the main thread, where
    the runner stops the tables and waits for them); later ones must not cut that wait short."""
    first = not _CANCELLING.is_set()
    _CANCELLING.set()
    note = ("cancelling: the tables stop at their next chunk" if first else
            f"already cancelling: waiting for the tables to stop (kill -9 {os.getpid()} stops it at once)")
    with contextlib.suppress(OSError):  # stderr may be gone too
        print(note, file=sys.stderr, flush=True)
    if first:
        raise KeyboardInterrupt


@contextlib.contextmanager
def _cancel_on_signals() -> Iterator[None]:
    """SIGTERM and SIGINT cancel the run (:func:`_on_cancel`) for the block; then as before."""
    _CANCELLING.clear()
    previous = {signum: signal.signal(signum, _on_cancel) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _write_stdout(write: Callable[[], None]) -> None:
    """Print the outcome; a reader that has gone (a closed pipe) does not change the run's exit code."""
    try:
        write()
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's own flush must not fail again
        with contextlib.suppress(OSError):
            print("stdout was closed before the outcome was printed; the run record has it", file=sys.stderr)


def _summary(record: RunRecord) -> None:
    print(f"{record.kind} {record.run_id}: {record.status}, {record.rows_total:,} rows in {record.duration_s:.1f} s")
    for table in record.tables:
        line = f"  {table.name}: {table.status}, {table.rows:,} rows ({table.backend or '-'})"
        if table.error:
            line += f"\n    error: {table.error.message}\n    what to do: {table.error.hint}"
        print(line)
    print(f"record: {record_path(record)}\nlog: {record.log_path}")


def cmd_preview(args: argparse.Namespace) -> int:
    from ingestion_core.pipeline.runner import preview_source

    config = load_source_arg(args.source)
    result = preview_source(config, actor=args.actor, trigger=args.trigger, tables=_tables(args.tables),
                            limit=args.limit, on_progress=TableProgress(sys.stdout.isatty() and not args.json),
                            sample_rows=100 if args.json else 0)  # only --json prints the sample rows
    if args.json:
        _json(result.as_json())
    else:
        _summary(result.record)
    return result.record.exit_code


def cmd_run(args: argparse.Namespace) -> int:
    from ingestion_core.pipeline.runner import run_source

    if getattr(args, "all", False) or args.source is None:  # job-run builds its own Namespace without them
        return cmd_run_all(args)
    if getattr(args, "owner", None) or getattr(args, "tag", None) or getattr(args, "parallel", 1) != 1:
        raise ValueError("--owner, --tag and --parallel go with --all: `ingest run --all --owner TEAM`")
    config = load_source_arg(args.source)
    holder: dict[str, RunRecord] = {}

    def progress(record: RunRecord) -> None:
        holder["record"] = record
        printer(record)

    printer = TableProgress(sys.stdout.isatty() and not args.json)
    try:
        with _cancel_on_signals():
            record = run_source(config, actor=args.actor, trigger=args.trigger, tables=_tables(args.tables),
                                destination=args.destination, on_progress=progress, run_id=args.run_id,
                                refresh_tables=_tables(getattr(args, "refresh", None)))
    except KeyboardInterrupt:  # cancelled: the table threads have stopped and the record says so
        if "record" not in holder:  # before the run had started: nothing ran
            raise
        record = holder["record"]
    if args.json:
        _write_stdout(lambda: _json({"run_id": record.run_id, "status": record.status, "exit_code": record.exit_code,
                                     "record_path": record_path(record),
                                     **record.model_dump(mode="json", exclude={"config_snapshot"})}))
    else:
        _write_stdout(lambda: _summary(record))
    return record.exit_code


def cmd_run_all(args: argparse.Namespace) -> int:
    """Every enabled source, dependencies first; a summary table; exit 0 when all succeeded."""
    from ingestion_core.pipeline.run_all import run_all

    if not args.all:
        raise ValueError("name a source (`ingest run SOURCE`) or run every enabled one with `ingest run --all`")
    if args.tables or args.destination or args.run_id or args.refresh:
        raise ValueError("--tables, --destination, --run-id and --refresh go with one source, not --all")
    if args.parallel < 1:
        raise ValueError(f"--parallel must be at least 1, not {args.parallel}")
    def progress(outcome: Any) -> None:
        if not args.json:
            print(f"  {outcome.source}: {outcome.status}" + (f" ({outcome.reason})" if outcome.status == "skipped"
                                                              else ""), flush=True)

    try:
        with _cancel_on_signals():  # SIGTERM / SIGINT cancel the running sources (run_all signals them)
            result = run_all(actor=args.actor, owner=args.owner, tags=args.tag or None, parallel=args.parallel,
                             trigger=args.trigger, on_outcome=progress)
    except KeyboardInterrupt:
        return EXIT_CODES["cancelled"]
    if args.json:
        _json(result.as_json())
    else:
        print(result.table())
    return result.exit_code


# --- cancel / state / reset-state ----------------------------------------------------------

def cmd_cancel(args: argparse.Namespace) -> int:
    from ingestion_core.pipeline.run_control import cancel_run

    record = cancel_run(args.run_id, actor=args.actor)
    print(f"run {record.run_id} of {record.source}: {record.status}, {record.error.message if record.error else ''}")
    return 0


def cmd_state(args: argparse.Namespace) -> int:
    from ingestion_core.pipeline.run_control import table_states

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
    from ingestion_core.pipeline.run_control import reset_state

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
    from ingestion_core.observe.alerts import incidents, load_notifications, send_alerts
    from ingestion_core.observe.run_metrics import load_run_data

    if args.summary or args.day:
        return cmd_summary(args)
    store = ConfigStore()
    summaries = [s for s in store.list_sources() if s.valid and s.enabled]
    found = incidents(load_run_data(), {s.name: s.schedule for s in summaries}, datetime.now(UTC), store.first_seen(),
                      timezones={s.name: s.timezone for s in summaries})
    results = send_alerts(load_notifications(), found, dry_run=args.dry_run)
    for result in results:
        state = "would send" if args.dry_run else ("sent" if result["ok"] else f"FAILED ({result.get('error')})")
        print(f"{state} to {result['channel']}: {result['event']} {result['summary']}")
    if not results:
        print("no new incidents", file=sys.stderr)
    return 0 if all(r["ok"] for r in results) else 1


def cmd_scheduler(args: argparse.Namespace) -> int:
    """The local scheduler: runs due sources by their cron until stopped (SIGINT / SIGTERM)."""
    import threading
    from datetime import timedelta

    from ingestion_core.observe.schedule_status import scheduler_status
    from ingestion_core.pipeline.scheduler import Scheduler, SchedulerRunningError

    if args.status:
        status = scheduler_status()
        if args.json:
            _json({"state": status.state, "text": status.text, "beat_at": status.beat_at,
                   "next_due": status.next_due, "events": status.events})
        else:
            print(f"{status.state}: {status.text}")
            for name, due in sorted((status.next_due or {}).items()):
                print(f"  {name}: next run {due}")
        return 0 if status.alive else 1
    scheduler = Scheduler(actor=args.actor, interval_s=args.interval, parallel=args.parallel,
                          grace=timedelta(seconds=parse_duration(args.grace).total_seconds()))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    print(f"scheduler started: tick every {args.interval:g} s; log {settings.data_dir() / 'logs' / 'scheduler.log'}",
          flush=True)
    try:
        scheduler.run_forever(stop)
    except SchedulerRunningError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        stop.set()
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    """The daily summary e-mail of ``--day`` (default: yesterday, UTC), once per day."""
    from datetime import date, timedelta

    from ingestion_core.observe.alerts import load_notifications
    from ingestion_core.observe.daily_summary import send_summary, summary_rows
    from ingestion_core.observe.run_metrics import load_run_data

    day = date.fromisoformat(args.day) if args.day else datetime.now(UTC).date() - timedelta(days=1)
    sources = [s.name for s in ConfigStore().list_sources() if s.enabled]
    rows = summary_rows(load_run_data(), day, sources)
    results = send_summary(load_notifications(), rows, day, dry_run=args.dry_run, force=args.force)
    for result in results:
        state = "would send" if args.dry_run else ("sent" if result["ok"] else f"FAILED ({result.get('error')})")
        print(f"{state} the summary of {day} ({len(rows)} sources) to {result['channel']}")
    if not results:
        print(_nothing_sent(day), file=sys.stderr)
    return 0 if all(r["ok"] for r in results) else 1


def _nothing_sent(day: Any) -> str:
    from ingestion_core.observe.alerts import EmailChannel, load_notifications

    if not any(isinstance(c, EmailChannel) for c in load_notifications().channels):
        return (f"the summary of {day} was not sent: no e-mail channel is configured in "
                f"{settings.config_dir() / 'notifications.yaml'} (add one: docs/operations.md, Alerts)")
    return f"the summary of {day} was sent already (--force sends it again)"


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

    p = sub.add_parser("run", help="the real load into the source's destination (--all: every enabled source)")
    p.add_argument("source", nargs="?", help="a name under configs/sources/ or a path (omit with --all)")
    p.add_argument("--all", action="store_true", help="every enabled source, dependencies (after:) first; a "
                   "summary table; exit 0 only when all succeeded")
    p.add_argument("--owner", help="with --all: only this team's sources")
    p.add_argument("--tag", action="append", help="with --all: only sources with this tag (repeatable)")
    p.add_argument("--parallel", type=int, default=1, help="with --all: sources run at the same time (default 1)")
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
    p.add_argument("--summary", action="store_true", help="the daily summary e-mail instead (HTML table: source, "
                   "status, rows, duration, checks), of yesterday unless --day")
    p.add_argument("--day", help="with --summary: the day (YYYY-MM-DD, UTC)")
    p.add_argument("--force", action="store_true", help="with --summary: send it even if it was sent already")

    p = sub.add_parser("scheduler", help="run due sources by their cron (the local scheduler of the embedded "
                                         "default); --status: is it alive")
    p.add_argument("--interval", type=float, default=30.0, help="seconds between checks (default 30)")
    p.add_argument("--grace", default="2h", help="a run missed while stopped is made up at start when it was "
                   "due within this (default 2h)")
    p.add_argument("--parallel", type=int, default=2, help="sources run at the same time (default 2)")
    p.add_argument("--status", action="store_true", help="print whether it is alive; exit 0 alive, 1 not")
    p.add_argument("--json", action="store_true")

    commands.update({"scheduler": cmd_scheduler, "alerts": cmd_alerts, "test-connection": cmd_test_connection,
                     "preview": cmd_preview,
                     "run": cmd_run, "runs": cmd_runs, "prune": cmd_prune, "cancel": cmd_cancel,
                     "state": cmd_state, "reset-state": cmd_reset_state})
