"""The ``ingest`` commands for Databricks (see docs/databricks.md):

    ingest deploy SOURCE [--workspace W] [--wheel F] [--run-now [--follow]] [--json]
    ingest bundle [SOURCE ...] [--workspace W] [--out databricks.yml]
    ingest job-status SOURCE [--workspace W] [--limit N] [--follow JOB_RUN_ID] [--json]
    ingest job-cancel SOURCE [--workspace W] [--job-run-id N] [--follow]
    ingest test-destination NAME [--json]
    ingest job-run SOURCE --config-dir D --runs-dir D ...   (what a job runs on the cluster)

Exit codes: 0 done; 1 failed; ``deploy --follow`` and ``job-status --follow`` exit as
``ingest run`` would for the followed run (0 success, 1 failed, 2 quality failed, 3 partial,
130 cancelled).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ingestion_core.common import settings
from ingestion_core.config.store import ConfigStore
from ingestion_core.observe.records import RunRecord, record_path

TRIGGER = "job"


def _json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def _source_and_target(args: argparse.Namespace) -> tuple[Any, Any, ConfigStore, Path | None]:
    from ingestion_core.cli.engine import load_source_arg
    from ingestion_core.databricks.jobs import resolve_target

    store = ConfigStore()
    config = load_source_arg(args.source)
    path = Path(args.source) if args.source.endswith((".yaml", ".yml")) or "/" in args.source else None
    return config, resolve_target(config, store, args.workspace), store, path


def _client(target: Any) -> Any:
    from ingestion_core.storage.workspace import workspace_client

    return workspace_client(target.workspace)


def _wheel(args: argparse.Namespace) -> Path:
    from ingestion_core.databricks.wheel import build_wheel

    if args.wheel:
        wheel = Path(args.wheel)
        if not wheel.is_file() or wheel.suffix != ".whl":
            raise FileNotFoundError(f"--wheel {wheel}: no such wheel file")
        return wheel
    return build_wheel(Path(tempfile.mkdtemp(prefix="ingest-deploy-")))


def _print_record(record: RunRecord) -> None:
    line = f"  run {record.run_id}: {record.status}"
    if record.status != "running":
        line += f", {record.rows_total:,} rows in {record.duration_s:.1f} s"
    if record.error:
        line += f"\n    error: {record.error.message}\n    what to do: {record.error.hint}"
    print(line, flush=True)


def _follow(client: Any, target: Any, config: Any, handle: Any, args: argparse.Namespace, store: ConfigStore) -> Any:
    from ingestion_core.databricks.job_runs import follow_job_run

    destination_type = store.load_destination(config.destination).config.type
    return follow_job_run(client, target, config, handle, actor=args.actor, destination_type=destination_type,
                          poll_seconds=args.poll_seconds, timeout_seconds=args.timeout,
                          on_update=None if args.json else _print_record)


def cmd_deploy(args: argparse.Namespace) -> int:
    from ingestion_core.databricks.job_runs import run_now
    from ingestion_core.databricks.jobs import deploy_source

    config, target, store, path = _source_and_target(args)
    client = _client(target)
    deployment = deploy_source(config, target, wheel=_wheel(args), store=store, client=client, source_path=path)
    result: dict[str, Any] = {"deployment": deployment.as_dict()}
    if not args.json:
        print(f"job {deployment.job_name} ({deployment.job_id}) {deployment.action}: {deployment.job_url}")
        for uploaded in deployment.uploaded:
            print(f"  uploaded {uploaded}")
    code = 0
    if args.run_now or args.follow:
        handle = run_now(client, deployment.job_id, config.name)
        result["run"] = handle.as_dict()
        if not args.json:
            print(f"started job run {handle.job_run_id} (run {handle.run_id}): {handle.url}")
        if args.follow:
            record = _follow(client, target, config, handle, args, store)
            result["record"] = {"status": record.status, "exit_code": record.exit_code,
                                "record_path": record_path(record)}
            code = record.exit_code if record.status != "running" else 1
    if args.json:
        _json(result)
    return code


def cmd_bundle(args: argparse.Namespace) -> int:
    from ingestion_core.cli.engine import load_source_arg
    from ingestion_core.databricks.bundle import render_bundle
    from ingestion_core.databricks.jobs import resolve_target

    store = ConfigStore()
    names = args.sources or [s.name for s in store.list_sources() if s.valid and s.enabled]
    configs = [load_source_arg(name) for name in names]
    targets = {}
    for config in configs:
        try:
            target = resolve_target(config, store, args.workspace)
        except ValueError as exc:
            if args.sources:
                raise
            print(f"skipped {config.name}: {exc}", file=sys.stderr)
            continue
        targets.setdefault(target.name, (target, []))[1].append(config)
    if len(targets) != 1:
        found = ", ".join(sorted(targets)) or "none"
        raise ValueError(f"a bundle holds the jobs of one workspace; the sources name {found}: pass --workspace")
    target, chosen = next(iter(targets.values()))
    out = Path(args.out) if args.out else settings.project_root() / "databricks.yml"
    config_dir = Path(os.path.relpath(settings.config_dir(), out.parent.absolute())).as_posix()
    out.write_text(render_bundle(chosen, target, config_dir), encoding="utf-8")
    print(f"wrote {out}: {len(chosen)} job(s) for workspace {target.name} ({', '.join(c.name for c in chosen)})")
    return 0


def cmd_job_status(args: argparse.Namespace) -> int:
    from ingestion_core.databricks.job_runs import handle_of, job_status

    config, target, store, _ = _source_and_target(args)
    client = _client(target)
    if args.follow:
        record = _follow(client, target, config, handle_of(client, args.follow, config.name), args, store)
        if args.json:
            _json(record.model_dump(mode="json", exclude={"config_snapshot"}))
        return record.exit_code if record.status != "running" else 1
    rows = job_status(client, target, config.name, args.limit)
    if args.json:
        _json(rows)
        return 0
    for row in rows:
        print(f"{row['started_at'] or '-':<32} job run {row['job_run_id']:<10} {row['status']:<10} "
              f"{row['state']:<40} {row['url'] or ''}")
    if not rows:
        print(f"no runs of {config.name}'s job yet", file=sys.stderr)
    return 0


def cmd_job_cancel(args: argparse.Namespace) -> int:
    from ingestion_core.databricks.job_runs import cancel_job_runs, handle_of

    config, target, store, _ = _source_and_target(args)
    client = _client(target)
    cancelled = cancel_job_runs(client, target, config.name, args.job_run_id)
    for job_run_id in cancelled:
        print(f"asked job run {job_run_id} to cancel")
        if args.follow:
            record = _follow(client, target, config, handle_of(client, job_run_id, config.name), args, store)
            print(f"job run {job_run_id}: {record.status}")
    if not cancelled:
        print(f"no active run of {config.name}'s job to cancel", file=sys.stderr)
    return 0


def cmd_test_destination(args: argparse.Namespace) -> int:
    from ingestion_core.engine.destinations import databricks

    destination = ConfigStore().load_destination(args.name).config
    if destination.type != "databricks":
        raise ValueError(f"test-destination checks Databricks destinations; '{args.name}' is {destination.type} "
                         "(local DuckDB files and folders need no connection)")
    report = databricks.test_connection(destination, timeout_seconds=args.timeout)
    if args.json:
        _json(report.as_dict())
    else:
        for check in report.details["checks"]:
            mark = {True: "ok", False: "FAILED", None: "-"}[check["ok"]]
            print(f"{check['check']:<10} {mark:<7} {check['detail']}")
        if not report.ok:
            print(f"what to do: {report.mitigation}")
    return 0 if report.ok else 1


def cmd_job_run(args: argparse.Namespace) -> int:
    from ingestion_core.cli.job_run import cmd_job_run as run

    return run(args)


# --- parsers -------------------------------------------------------------------------------

def _workspace(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workspace", help="Databricks destination whose jobs: section to use (default: the source's)")


def _following(p: argparse.ArgumentParser) -> None:
    p.add_argument("--poll-seconds", type=float, default=15.0, help="how often to ask for the run's state")
    p.add_argument("--timeout", type=float, default=None, help="stop following after this many seconds")


def add_databricks_commands(sub: Any, commands: dict[str, Callable[[argparse.Namespace], int]]) -> None:
    """Adds the Databricks subcommands to the ``ingest`` parser."""
    p = sub.add_parser("deploy", help="create or update the source's Databricks job (upload config and wheel)")
    p.add_argument("source", help="a name under configs/sources/ or a path to a YAML file")
    _workspace(p)
    p.add_argument("--wheel", help="the package wheel to install (default: built from this checkout)")
    p.add_argument("--run-now", action="store_true", help="start a job run after deploying")
    p.add_argument("--follow", action="store_true", help="start a job run and follow it into a run record")
    _following(p)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("bundle", help="write databricks.yml (Databricks Asset Bundle) with the sources' jobs")
    p.add_argument("sources", nargs="*", help="sources (default: every valid, enabled source)")
    _workspace(p)
    p.add_argument("--out", help="file to write (default: databricks.yml beside the config dir)")

    p = sub.add_parser("job-status", help="recent runs of the source's Databricks job, or follow one")
    p.add_argument("source")
    _workspace(p)
    p.add_argument("--limit", type=int, default=10)
    p.add_argument("--follow", type=int, metavar="JOB_RUN_ID", help="follow this job run into a run record")
    _following(p)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("job-cancel", help="cancel the source's running Databricks job run(s)")
    p.add_argument("source")
    _workspace(p)
    p.add_argument("--job-run-id", type=int, help="this job run only (default: every active one)")
    p.add_argument("--follow", action="store_true", help="wait until cancelled and record it")
    _following(p)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("test-destination", help="check a Databricks destination: workspace, warehouse, driver")
    p.add_argument("name", help="a name under configs/destinations/")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for the workspace")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("job-run", help="(run by a Databricks job) ingest run with the job's folders and secrets")
    p.add_argument("source")
    p.add_argument("--config-dir", required=True, help="the configs folder on the volume")
    p.add_argument("--runs-dir", required=True, help="the run records folder on the volume")
    p.add_argument("--data-dir", help="local working folder (default: the cluster's local disk)")
    p.add_argument("--secret-scope", help="Databricks secret scope to resolve ${secrets...} from")
    p.add_argument("--key-vault", help="Azure Key Vault URL to resolve ${secrets...} from")
    p.add_argument("--run-id", help="the run record's id (the job parameter run_id)")
    p.add_argument("--job-run-id", help="the Databricks job run id")

    commands.update({"deploy": cmd_deploy, "bundle": cmd_bundle, "job-status": cmd_job_status,
                     "job-cancel": cmd_job_cancel, "test-destination": cmd_test_destination,
                     "job-run": cmd_job_run})
