"""``ingest bundle`` writes a databricks.yml with one job per source, the same settings as
``ingest deploy`` (checked with the SDK's own JobSettings, unknown fields refused), the sources'
schedules in Quartz form, the wheel as a bundle artifact and the configs from the synced files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from databricks.sdk.service import jobs

from ingestion_core.cli.main import main
from tests.databricks_api import parse_strict

WORKSPACE = """\
type: databricks
server_hostname: adb-1.2.azuredatabricks.net
http_path: /sql/1.0/warehouses/abc
catalog: main
client_id: 0f0e-sp
client_secret: ${secrets.dbx.client_secret}
jobs:
  volume: /Volumes/main/ingest/files
  secret_scope: ingest
  run_as_service_principal: 0f0e-sp
  notify_on_failure: [data-ops@example.com]
"""


def write_source(project: Path, name: str, schedule: str | None, enabled: bool = True) -> None:
    lines = [f"name: {name}", "owner: market-de", "source: {type: sqlite, path: shop.sqlite}",
             f"enabled: {str(enabled).lower()}", "tables: [{name: orders}]"]
    if schedule:
        lines.append(f"schedule: '{schedule}'")
    (project / "configs" / "sources" / f"{name}.yaml").write_text("\n".join(lines) + "\n")


@pytest.fixture
def project(ingest_env: Path) -> Path:
    (ingest_env / "configs" / "destinations" / "dbx.yaml").write_text(WORKSPACE)
    write_source(ingest_env, "sales_de", "0 6 * * *")
    write_source(ingest_env, "sales_fr", "30 5 * * 1-5")
    write_source(ingest_env, "old_erp", None, enabled=False)
    return ingest_env


def test_bundle_has_one_job_per_enabled_source_with_its_schedule(project: Path, capsys) -> None:
    out = project / "databricks.yml"
    assert main(["bundle", "--workspace", "dbx", "--out", str(out)]) == 0
    assert "2 job(s) for workspace dbx (sales_de, sales_fr)" in capsys.readouterr().out
    text = out.read_text()
    assert text.startswith("# Databricks Asset Bundle of the ingestion sources' jobs, written by `ingest bundle`.")
    bundle = yaml.safe_load(text)
    assert bundle["bundle"] == {"name": "ingestion-portal"}
    assert bundle["targets"] == {"dbx": {"mode": "production", "default": True,
                                         "workspace": {"host": "https://adb-1.2.azuredatabricks.net"},
                                         "run_as": {"service_principal_name": "0f0e-sp"}}}
    assert bundle["artifacts"]["ingest_wheel"]["type"] == "whl"
    resources = bundle["resources"]["jobs"]
    assert sorted(resources) == ["ingest_sales_de", "ingest_sales_fr"]
    schedules = {key: job["schedule"]["quartz_cron_expression"] for key, job in resources.items()}
    assert schedules == {"ingest_sales_de": "0 0 6 * * ?", "ingest_sales_fr": "0 30 5 ? * 2-6"}
    for key, job in resources.items():
        parse_strict(jobs.JobSettings, job, key)  # the SDK knows every field
        task = job["tasks"][0]
        assert task["libraries"] == [{"whl": "./dist/*.whl"}]
        params = task["python_wheel_task"]["parameters"]
        assert params[:3] == ["--actor", "0f0e-sp", "job-run"]
        assert params[params.index("--config-dir") + 1] == "${workspace.file_path}/configs"
        assert params[params.index("--runs-dir") + 1] == "/Volumes/main/ingest/files/runs"
        assert job["email_notifications"]["on_failure"] == ["data-ops@example.com"]
        assert "run_as" not in job  # set once for the target
    assert bundle["sync"]["include"] == ["configs/sources/*.yaml", "configs/destinations/*.yaml"]


def test_bundle_of_named_sources_and_a_source_without_a_databricks_workspace(project: Path) -> None:
    out = project / "one.yml"
    assert main(["bundle", "sales_fr", "--workspace", "dbx", "--out", str(out)]) == 0
    assert list(yaml.safe_load(out.read_text())["resources"]["jobs"]) == ["ingest_sales_fr"]
    # without --workspace the source's own destination (local DuckDB) is no workspace
    assert main(["bundle", "sales_fr", "--out", str(out)]) == 1


def test_after_becomes_a_run_job_task_referring_to_the_dependency_in_the_bundle(project: Path, capsys) -> None:
    path = project / "configs" / "sources" / "sales_fr.yaml"
    path.write_text(path.read_text() + "after: [sales_de]\n")
    out = project / "databricks.yml"
    assert main(["bundle", "--workspace", "dbx", "--out", str(out)]) == 0
    job = yaml.safe_load(out.read_text())["resources"]["jobs"]["ingest_sales_fr"]
    resolved = yaml.safe_load(out.read_text().replace("${resources.jobs.ingest_sales_de.id}", "1001"))
    parse_strict(jobs.JobSettings, resolved["resources"]["jobs"]["ingest_sales_fr"], "ingest_sales_fr")  # as deployed
    assert [t["task_key"] for t in job["tasks"]] == ["after_sales_de", "ingest"]
    assert job["tasks"][0]["run_job_task"] == {"job_id": "${resources.jobs.ingest_sales_de.id}"}
    assert job["tasks"][1]["depends_on"] == [{"task_key": "after_sales_de"}]
    assert main(["bundle", "sales_fr", "--workspace", "dbx", "--out", str(out)]) == 1
    assert "put it in the same bundle" in capsys.readouterr().err
