"""The sources' Databricks jobs as a Databricks Asset Bundle (``databricks.yml``), for teams that
deploy from CI with ``databricks bundle deploy`` instead of ``ingest deploy``.

The jobs are the ones ``ingest deploy`` makes (same settings, same schedules), with three
differences that bundles handle themselves: the wheel is a bundle artifact built from the
checkout (``./dist/*.whl``), the configs are the bundle's synced files
(``${workspace.file_path}/configs``) and the actor is the deploying identity.

Example::

    text = render_bundle([config], target, config_dir="configs")
    Path("databricks.yml").write_text(text)
"""

from __future__ import annotations

from typing import Any

import yaml

from ingestion_core.config.models.source_file import SourceFileBase
from ingestion_core.databricks.jobs import JobTarget, job_settings

BUNDLE_NAME = "ingestion-portal"
WHEEL = "./dist/*.whl"
HEADER = ("# Databricks Asset Bundle of the ingestion sources' jobs, written by `ingest bundle`.\n"
          "# Regenerate it after changing a source (do not edit by hand); deploy with\n"
          "#   databricks bundle deploy -t {target}\n")


def job_key(source: str) -> str:
    return f"ingest_{source}"


def bundle_jobs(configs: list[SourceFileBase], target: JobTarget, config_dir: str = "configs") -> dict[str, Any]:
    """``resources.jobs`` of the bundle: one job per source; a source's ``after`` sources run
    first as ``run_job_task`` tasks referring to their jobs in the bundle."""
    actor = target.jobs.run_as_service_principal or "${workspace.current_user.userName}"
    jobs = {}
    references = {c.name: f"${{resources.jobs.{job_key(c.name)}.id}}" for c in configs}
    for config in configs:
        settings = job_settings(config, target, WHEEL, actor, config_dir=f"${{workspace.file_path}}/{config_dir}",
                                dependency_jobs=references)
        settings.run_as = None  # a bundle sets run_as for the target
        jobs[job_key(config.name)] = settings.as_dict()
    return jobs


def bundle_document(configs: list[SourceFileBase], target: JobTarget, config_dir: str = "configs") -> dict[str, Any]:
    workspace_target: dict[str, Any] = {"mode": "production", "default": True,
                                        "workspace": {"host": target.workspace.rest_url}}
    if target.jobs.run_as_service_principal:
        workspace_target["run_as"] = {"service_principal_name": target.jobs.run_as_service_principal}
    return {
        "bundle": {"name": BUNDLE_NAME},
        "artifacts": {"ingest_wheel": {"type": "whl", "path": ".",
                                       "build": "python -m pip wheel . --no-deps -w dist"}},
        "sync": {"include": [f"{config_dir}/sources/*.yaml", f"{config_dir}/destinations/*.yaml"]},
        "targets": {target.name: workspace_target},
        "resources": {"jobs": bundle_jobs(configs, target, config_dir)},
    }


def render_bundle(configs: list[SourceFileBase], target: JobTarget, config_dir: str = "configs") -> str:
    if not configs:
        raise ValueError("no source to put in the bundle")
    document = bundle_document(configs, target, config_dir)
    return HEADER.format(target=target.name) + yaml.safe_dump(document, sort_keys=False, width=120)
