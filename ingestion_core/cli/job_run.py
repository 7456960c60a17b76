"""What a source's Databricks job runs on the cluster: ``ingest job-run SOURCE ...``.

It is ``ingest run SOURCE --trigger job`` after three steps a fresh job cluster needs:

1. Where to read and write, from the task's parameters (a serverless job has no environment
   variables of its own): ``INGEST_CONFIG_DIR`` / ``INGEST_RUNS_DIR`` on the Unity Catalog
   volume (FUSE path ``/Volumes/...``), ``INGEST_DATA_DIR`` on the cluster's local disk, and the
   secret scope / Key Vault added to the secrets chain.
2. The dlt state of each table restored from the destination (``sync_destination``): the
   cluster's disk is new for every run, the incremental cursors live in the destination.
3. A retry of the same job run (Databricks task retries keep the job run id, hence the run id)
   reloads only when the earlier attempt loaded nothing (failed) or died on the way (still
   running); a partial or quality-failed result stands and its exit code is returned again.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path

from ingestion_core.common import settings
from ingestion_core.config.models.source_file import SourceFileBase
from ingestion_core.config.secret_providers import PROVIDERS_VARIABLE, SCOPE_VARIABLE, VAULT_VARIABLE
from ingestion_core.config.store import ConfigStore
from ingestion_core.databricks.job_runs import scheduled_run_id
from ingestion_core.observe.records import EXIT_CODES, RunRecord, load_record

LOGGER = logging.getLogger("ingestion_core.databricks")
RERUN = ("failed", "cancelled", "running")


def job_data_dir() -> str:
    """The cluster's local disk (``/local_disk0`` on Databricks), else the temp folder."""
    base = Path("/local_disk0") if Path("/local_disk0").is_dir() else Path(tempfile.gettempdir())
    return str(base / "ingest")


def prepare_environment(args: argparse.Namespace) -> None:
    """Point the settings and the secrets chain at what the job's parameters name."""
    os.environ["INGEST_CONFIG_DIR"] = args.config_dir
    os.environ["INGEST_RUNS_DIR"] = args.runs_dir
    os.environ["INGEST_DATA_DIR"] = args.data_dir or job_data_dir()
    providers = [p for p in os.environ.get(PROVIDERS_VARIABLE, "").split(",") if p.strip()]
    if args.secret_scope:
        os.environ[SCOPE_VARIABLE] = args.secret_scope
        providers.append("databricks")
    if args.key_vault:
        os.environ[VAULT_VARIABLE] = args.key_vault
        providers.append("azure_keyvault")
    if providers:
        os.environ[PROVIDERS_VARIABLE] = ",".join(dict.fromkeys(p.strip() for p in providers))


def run_id_of(args: argparse.Namespace, source: str) -> str | None:
    """The job parameter's run id ("run now"), else one made from the job run id (schedules)."""
    if args.run_id and "{{" not in args.run_id:
        return args.run_id
    if args.job_run_id and "{{" not in args.job_run_id:
        return scheduled_run_id(args.job_run_id, source)
    return None


def earlier_attempt(run_id: str) -> RunRecord | None:
    runs = Path(settings.runs_dir())
    for path in sorted(runs.glob(f"*/*/*/{run_id}.json")) if runs.is_dir() else []:
        return load_record(path)
    return None


def restore_state(config: SourceFileBase, store: ConfigStore) -> list[str]:
    """Restore from the destination the dlt state of every table whose pipeline folder is not
    on this machine; returns the tables that had state there."""
    import dlt

    from ingestion_core.engine.destinations import build_destination
    from ingestion_core.engine.plan import pipeline_name, pipelines_dir

    plan = build_destination(config.destination, store.load_destination(config.destination).config)
    restored = []
    for table in config.enabled_tables():
        name = pipeline_name(config.name, table.name)
        if (pipelines_dir("run") / name).exists():
            continue
        pipeline = dlt.pipeline(pipeline_name=name, pipelines_dir=str(pipelines_dir("run")),
                                destination=plan.destination, staging=plan.staging,
                                dataset_name=config.dataset_name)
        pipeline.sync_destination()
        if pipeline.state.get("sources"):  # the destination had state for it (an earlier run)
            restored.append(table.name)
    return restored


def cmd_job_run(args: argparse.Namespace) -> int:
    from ingestion_core.cli.engine import cmd_run, load_source_arg

    prepare_environment(args)
    config = load_source_arg(args.source)
    run_id = run_id_of(args, config.name)
    earlier = earlier_attempt(run_id) if run_id else None
    if earlier and earlier.status not in RERUN:
        print(f"an earlier attempt of this job run ended {earlier.status}; not loading again")
        return EXIT_CODES.get(earlier.status, 1)
    restored = restore_state(config, ConfigStore())
    if restored:
        print(f"restored the dlt state of {', '.join(restored)} from the destination")
    run_args = argparse.Namespace(source=args.source, actor=args.actor, trigger="job", tables=None,
                                  destination=None, run_id=run_id, json=False)
    return cmd_run(run_args)
