"""Databricks configuration without a workspace: the destination file's validation, the dlt
destination built from it (credentials, catalog, staging), cron -> Quartz, the job settings a
source gets, the idempotency comparison, and the secret providers chosen by the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ingestion_core.config import secret_providers as providers
from ingestion_core.config.models.destinations import DESTINATION_ADAPTER
from ingestion_core.config.models.source_file import parse_source_file
from ingestion_core.config.secret_providers.databricks_scope import DatabricksSecretScopeProvider, flat_key
from ingestion_core.config.secret_providers.key_vault import token_scope, vault_secret_name
from ingestion_core.config.secrets import SecretNotFoundError, parse_reference, resolve_value, store_secret
from ingestion_core.config.store import ConfigStore, validate_destination_data
from ingestion_core.databricks.jobs import (
    JobTarget,
    job_settings,
    resolve_target,
    same_settings,
    settings_differences,
)
from ingestion_core.databricks.schedule import quartz_cron
from ingestion_core.engine.destinations import build_destination

BASE = {"type": "databricks", "server_hostname": "adb-1.2.azuredatabricks.net",
        "http_path": "/sql/1.0/warehouses/abc", "catalog": "main", "access_token": "${secrets.dbx.token}"}
ACCOUNT_KEY = {"azure_storage_account_name": "partnerlake", "azure_storage_account_key": "${secrets.dbx.lake_key}"}


def destination(**changes: Any) -> Any:
    return DESTINATION_ADAPTER.validate_python({**BASE, **changes})


# --- the destination file ------------------------------------------------------------------

@pytest.mark.parametrize(("changes", "path", "message"), [
    ({"staging": {"volume": "main.raw.staging"}}, "staging.volume",
     "'main.raw.staging' is not a Unity Catalog volume path: write /Volumes/<catalog>/<schema>/<volume>"),
    ({"staging": {"bucket_url": "abfss://stage@partnerlake.dfs.core.windows.net/dlt",
                  "credentials": {"azure_storage_account_name": "partnerlake", "azure_tenant_id": "t",
                                  "azure_client_id": "c", "azure_client_secret": "${secrets.dbx.sp}"}}},
     "staging.credentials", "COPY INTO cannot read the abfss:// staging bucket with azure_client_id, "
     "azure_client_secret, azure_storage_account_name, azure_tenant_id: give credentials with an account key"),
    ({"staging": {"bucket_url": "s3://stage/dlt"}}, "staging.credentials",
     "set credentials_name to a Unity Catalog storage"),
    ({"jobs": {}}, "jobs.volume", "volume"),
    ({"jobs": {"volume": "/Volumes/main/ingest"}}, "jobs.volume", "is not a Unity Catalog volume path"),
    ({"jobs": {"volume": "/Volumes/main/ingest/files", "notify_on_failure": ["ops"]}}, "jobs.notify_on_failure",
     "'ops' is not an e-mail address"),
    ({"jobs": {"volume": "/Volumes/main/ingest/files", "compute": "gpu"}}, "jobs.compute", "serverless"),
    ({"type_mapping": {"oracle_number": "float"}}, "type_mapping.oracle_number", "double"),
])
def test_destination_file_errors_name_the_path_and_the_fix(changes, path, message) -> None:
    with pytest.raises(ValidationError):
        destination(**changes)
    config, issues = validate_destination_data({**BASE, **changes}, "dbx")
    lines = [issue.line("dbx.yaml") for issue in issues]
    assert config is None and any(line.startswith(f"dbx.yaml:{path}:") and message in line for line in lines), lines


@pytest.mark.parametrize("staging", [
    {"volume": "/Volumes/main/raw/staging"},
    {"bucket_url": "abfss://stage@partnerlake.dfs.core.windows.net/dlt", "credentials": ACCOUNT_KEY},
    {"bucket_url": "abfss://stage@partnerlake.dfs.core.windows.net/dlt",
     "credentials": {"azure_storage_account_name": "partnerlake", "azure_storage_sas_token": "${secrets.dbx.sas}"}},
    {"bucket_url": "s3://stage/dlt", "credentials": {"aws_access_key_id": "AKIA0", "aws_secret_access_key":
                                                     "${secrets.dbx.s3}"}},
    {"bucket_url": "abfss://stage@lake.dfs.core.windows.net/dlt", "credentials_name": "lake_credential"},
    {"bucket_url": "s3://stage/dlt", "external_location": True},
])
def test_staging_places_that_copy_into_can_read(staging) -> None:
    assert destination(staging=staging).staging is not None


def test_a_volume_stages_through_dlt_staging_volume_name(ingest_env: Path) -> None:
    store_secret("${secrets.dbx.token}", "dapi-" + "v" * 24)
    plan = build_destination("dbx", destination(staging={"volume": "/Volumes/main/raw/staging"}))
    assert plan.staging is None  # dlt PUTs the local files into the volume itself
    assert plan.destination.config_params["staging_volume_name"] == "main.raw.staging"
    assert plan.destination.config_params["credentials"] == {
        "server_hostname": "adb-1.2.azuredatabricks.net", "http_path": "/sql/1.0/warehouses/abc",
        "catalog": "main", "access_token": "dapi-" + "v" * 24}
    assert plan.location == "adb-1.2.azuredatabricks.net/main"


def test_a_cross_tenant_bucket_stages_with_its_own_key_as_a_sas_token(ingest_env: Path) -> None:
    import base64

    store_secret("${secrets.dbx.token}", "dapi-" + "v" * 24)
    store_secret("${secrets.dbx.lake_key}", base64.b64encode(b"k" * 64).decode())
    plan = build_destination("dbx", destination(staging={
        "bucket_url": "abfss://stage@partnerlake.dfs.core.windows.net/dlt", "credentials": ACCOUNT_KEY}))
    staging = plan.staging.config_params
    assert staging["bucket_url"] == "abfss://stage@partnerlake.dfs.core.windows.net/dlt"
    credentials = staging["credentials"]
    assert credentials.azure_storage_account_name == "partnerlake"
    assert credentials.azure_storage_sas_token  # made from the key: COPY INTO gets this SAS, not the key
    assert not plan.destination.config_params.get("is_staging_external_location")
    assert "staging_credentials_name" not in plan.destination.config_params


def test_an_s3_bucket_stages_with_its_own_access_key_and_dlt_takes_the_pair(ingest_env: Path) -> None:
    import dlt

    store_secret("${secrets.dbx.token}", "dapi-" + "v" * 24)
    store_secret("${secrets.dbx.s3}", "s" * 40)
    plan = build_destination("dbx", destination(staging={"bucket_url": "s3://stage/dlt", "credentials": {
        "aws_access_key_id": "AKIA0", "aws_secret_access_key": "${secrets.dbx.s3}"}}))
    credentials = plan.staging.config_params["credentials"]
    assert (credentials.aws_access_key_id, credentials.aws_secret_access_key) == ("AKIA0", "s" * 40)
    configuration = plan.destination.configuration(None, accept_partial=True)  # dlt's own config spec
    assert type(configuration).__name__ == "DatabricksClientConfiguration"
    assert (configuration.credentials.server_hostname, configuration.credentials.catalog) == (
        "adb-1.2.azuredatabricks.net", "main")
    pipeline = dlt.pipeline(pipeline_name="dbx_check", pipelines_dir=str(ingest_env / "pipelines"),
                            destination=plan.destination, staging=plan.staging, dataset_name="raw_shop")
    assert (pipeline.destination.destination_type, pipeline.staging.destination_type) == (
        "dlt.destinations.databricks", "dlt.destinations.filesystem")


def test_a_storage_credential_or_external_location_passes_no_credentials(ingest_env: Path) -> None:
    store_secret("${secrets.dbx.token}", "dapi-" + "v" * 24)
    named = build_destination("dbx", destination(staging={
        "bucket_url": "abfss://stage@lake.dfs.core.windows.net/dlt", "credentials_name": "lake_credential"}))
    assert named.destination.config_params["staging_credentials_name"] == "lake_credential"
    external = build_destination("dbx", destination(staging={"bucket_url": "s3://stage/dlt",
                                                             "external_location": True}))
    assert external.destination.config_params["is_staging_external_location"] is True


def test_oauth_m2m_credentials_by_reference(ingest_env: Path) -> None:
    store_secret("${secrets.dbx.client_secret}", "dose-" + "s" * 24)
    oauth = {k: v for k, v in BASE.items() if k != "access_token"}
    config = DESTINATION_ADAPTER.validate_python({**oauth, "client_id": "0f0e-sp",
                                                  "client_secret": "${secrets.dbx.client_secret}"})
    credentials = build_destination("dbx", config).destination.config_params["credentials"]
    assert credentials["client_id"] == "0f0e-sp" and credentials["client_secret"] == "dose-" + "s" * 24
    assert "access_token" not in credentials


# --- schedules -----------------------------------------------------------------------------

@pytest.mark.parametrize(("cron", "quartz"), [
    ("0 6 * * *", "0 0 6 * * ?"),
    ("30 7 * * 1-5", "0 30 7 ? * 2-6"),
    ("*/15 * * * *", "0 */15 * * * ?"),
    ("0 0 1 * *", "0 0 0 1 * ?"),
    ("0 8 * * 0", "0 0 8 ? * 1"),
    ("0 8 * * 7", "0 0 8 ? * 1"),
    ("0 8 * * 5-7", "0 0 8 ? * 6-7,1"),
    ("0 8 * * mon-fri", "0 0 8 ? * MON-FRI"),
    ("0 8 * * 1,3,5", "0 0 8 ? * 2,4,6"),
    ("0 8 * * */2", "0 0 8 ? * 1/2"),
    ("15 2 1,15 jan,jul *", "0 15 2 1,15 JAN,JUL ?"),
    ("@daily", "0 0 0 * * ?"),
])
def test_cron_becomes_quartz(cron: str, quartz: str) -> None:
    assert quartz_cron(cron) == quartz


@pytest.mark.parametrize(("cron", "message"), [
    ("0 6 1 * 1", "restricts both the day of month and the day of week"),
    ("0 6 * *", "is not a 5-field cron expression"),
    ("0 6 L * *", "plain numbers"),
])
def test_cron_quartz_cannot_say_is_refused_with_the_fix(cron: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        quartz_cron(cron)


# --- job settings --------------------------------------------------------------------------

def source(**changes: Any) -> Any:
    data = {"name": "shop", "owner": "market-de", "source": {"type": "sqlite", "path": "shop.sqlite"},
            "destination": "lake", "schedule": "0 6 * * *", "tables": [{"name": "orders"}], **changes}
    return parse_source_file(data)


def target(**jobs: Any) -> JobTarget:
    config = destination(jobs={"volume": "/Volumes/main/ingest/files", **jobs})
    return JobTarget("dbx", config, config.jobs)


def test_a_job_cluster_job_installs_the_wheel_and_runs_on_a_single_node() -> None:
    settings = job_settings(source(), target(secret_scope="ingest", key_vault_url="https://kv.vault.azure.net"),
                            "/Volumes/main/ingest/files/wheels/w.whl", "sp-1").as_dict()
    task = settings["tasks"][0]
    assert task["libraries"] == [{"whl": "/Volumes/main/ingest/files/wheels/w.whl"}]
    assert task["job_cluster_key"] == "ingest" and "environment_key" not in task
    assert task["python_wheel_task"]["parameters"] == [
        "--actor", "sp-1", "job-run", "shop", "--config-dir", "/Volumes/main/ingest/files/configs",
        "--runs-dir", "/Volumes/main/ingest/files/runs", "--run-id", "{{job.parameters.run_id}}",
        "--job-run-id", "{{job.run_id}}", "--secret-scope", "ingest", "--key-vault", "https://kv.vault.azure.net"]
    cluster = settings["job_clusters"][0]["new_cluster"]
    assert cluster["num_workers"] == 0 and cluster["custom_tags"] == {"ResourceClass": "SingleNode"}
    assert cluster["spark_conf"]["spark.databricks.cluster.profile"] == "singleNode"
    assert cluster["data_security_mode"] == "SINGLE_USER"


def test_a_serverless_job_declares_the_wheel_in_its_environment() -> None:
    settings = job_settings(source(), target(compute="serverless", cluster={"num_workers": 2}), "/V/w.whl",
                            "sp-1").as_dict()
    assert "job_clusters" not in settings
    assert settings["environments"] == [{"environment_key": "ingest",
                                         "spec": {"environment_version": "2", "dependencies": ["/V/w.whl"]}}]
    assert settings["tasks"][0]["environment_key"] == "ingest" and "libraries" not in settings["tasks"][0]


def test_schedule_retries_timeout_notifications_and_identity() -> None:
    settings = job_settings(
        source(schedule="30 7 * * 1-5"),
        target(max_retries=2, min_retry_interval_minutes=5, timeout_minutes=90, notify_on_failure=["ops@example.com"],
               run_as_service_principal="0f0e-sp", tags={"cost_center": "42"}), "/V/w.whl", "0f0e-sp").as_dict()
    assert settings["schedule"] == {"quartz_cron_expression": "0 30 7 ? * 2-6", "timezone_id": "UTC",
                                    "pause_status": "UNPAUSED"}
    assert (settings["tasks"][0]["max_retries"], settings["tasks"][0]["min_retry_interval_millis"]) == (2, 300_000)
    assert settings["timeout_seconds"] == 5400 and settings["max_concurrent_runs"] == 1
    assert settings["email_notifications"] == {"on_failure": ["ops@example.com"], "no_alert_for_skipped_runs": True}
    assert settings["run_as"] == {"service_principal_name": "0f0e-sp"}
    assert settings["tags"] == {"ingest_source": "shop", "ingest_owner": "market-de",
                                "managed_by": "ingestion-portal", "cost_center": "42"}
    assert settings["parameters"] == [{"name": "run_id", "default": ""}]


def test_a_disabled_source_is_paused_and_one_without_schedule_has_none() -> None:
    paused = job_settings(source(enabled=False), target(), "/V/w.whl", "a").as_dict()
    assert paused["schedule"]["pause_status"] == "PAUSED"
    assert "schedule" not in job_settings(source(schedule=None), target(), "/V/w.whl", "a").as_dict()


def test_same_settings_ignores_what_the_workspace_adds_but_not_what_we_removed() -> None:
    desired = job_settings(source(), target(), "/V/w.whl", "a").as_dict()
    stored = {**desired, "format": "MULTI_TASK", "email_notifications": {}, "webhook_notifications": {},
              "tasks": [{**desired["tasks"][0], "run_if": "ALL_SUCCESS", "timeout_seconds": 0}]}
    assert same_settings(desired, stored)
    without_schedule = job_settings(source(schedule=None), target(), "/V/w.whl", "a").as_dict()
    assert not same_settings(without_schedule, stored)  # the job still has a schedule: reset it
    changed = job_settings(source(schedule="0 7 * * *"), target(), "/V/w.whl", "a").as_dict()
    assert not same_settings(changed, stored)
    assert settings_differences(desired, stored) == []
    assert settings_differences(without_schedule, stored) == ["schedule"]
    other_wheel = job_settings(source(schedule="0 7 * * *"), target(), "/V/x.whl", "a").as_dict()
    assert sorted(settings_differences(other_wheel, stored)) == ["schedule", "tasks"]  # the wheel is a task library


def test_the_deploy_wheel_is_built_once_per_content_of_the_sources(tmp_path: Path, monkeypatch) -> None:
    """A copy of the checkout's packaging files: the same content reuses the build, a change rebuilds."""
    from ingestion_core.databricks import wheel

    project = tmp_path / "checkout"
    project.mkdir()
    for name in ("pyproject.toml", "requirements.txt", "README.md"):
        (project / name).write_text((wheel.source_checkout() / name).read_text())
    (project / "ingestion_core").mkdir()
    (project / "ingestion_core" / "__init__.py").write_text('"""a stand-in package."""\n')
    (project / "ingestion_core" / "__pycache__").mkdir()
    (project / "ingestion_core" / "__pycache__" / "x.pyc").write_bytes(b"ignored")
    builds = []
    monkeypatch.setattr(wheel, "build_wheel", lambda out, project: builds.append(out) or _fake_wheel(out))
    first = wheel.deploy_wheel(tmp_path / "cache", project)
    assert wheel.deploy_wheel(tmp_path / "cache", project) == first and len(builds) == 1
    (project / "ingestion_core" / "__pycache__" / "x.pyc").write_bytes(b"still ignored")
    assert wheel.deploy_wheel(tmp_path / "cache", project) == first and len(builds) == 1
    (project / "ingestion_core" / "__init__.py").write_text('"""changed."""\n')
    second = wheel.deploy_wheel(tmp_path / "cache", project)
    assert second != first and len(builds) == 2 and first.parent.parent == second.parent.parent
    assert wheel.wheel_file_name(project) == "ingestion_portal-0.1.0-py3-none-any.whl" == first.name


def _fake_wheel(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "ingestion_portal-0.1.0-py3-none-any.whl"
    path.write_bytes(b"built")
    return path


def test_the_workspace_is_a_databricks_destination_with_jobs(ingest_env: Path) -> None:
    store = ConfigStore()
    with pytest.raises(ValueError, match="'local_duckdb' is a duckdb destination; jobs run in a Databricks "
                                         "workspace: pass --workspace"):
        resolve_target(source(destination="local_duckdb"), store)
    (ingest_env / "configs" / "destinations" / "dbx.yaml").write_text(
        "type: databricks\nserver_hostname: h\nhttp_path: /p\ncatalog: c\naccess_token: ${secrets.dbx.token}\n")
    with pytest.raises(ValueError, match="destination 'dbx' has no jobs: section; add one"):
        resolve_target(source(destination="local_duckdb"), store, "dbx")


# --- secret providers ----------------------------------------------------------------------

def test_flat_names_of_references() -> None:
    reference = parse_reference("${secrets.sales_de.password}")
    assert flat_key(reference) == "sales_de-password"
    assert vault_secret_name(reference) == "sales-de-password"  # Key Vault allows no '_'
    assert token_scope("https://market-kv.vault.azure.net") == "https://vault.azure.net/.default"
    assert token_scope("https://kv.vault.azure.cn/") == "https://vault.azure.cn/.default"


def test_no_remote_provider_unless_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(providers.PROVIDERS_VARIABLE, raising=False)
    assert providers.configured_providers() == []
    with pytest.raises(SecretNotFoundError) as raised:
        resolve_value("${secrets.a.b}")
    assert "Databricks" not in str(raised.value)


@pytest.mark.parametrize(("setting", "message"), [
    ("databricks", "INGEST_SECRET_PROVIDERS names databricks but INGEST_DATABRICKS_SECRET_SCOPE is not set"),
    ("azure_keyvault", "names azure_keyvault but INGEST_KEY_VAULT_URL is not set"),
    ("vault", "INGEST_SECRET_PROVIDERS names unknown providers vault; known: databricks, azure_keyvault"),
])
def test_provider_settings_errors_say_what_to_set(monkeypatch: pytest.MonkeyPatch, setting: str, message: str) -> None:
    monkeypatch.setenv(providers.PROVIDERS_VARIABLE, setting)
    monkeypatch.delenv(providers.SCOPE_VARIABLE, raising=False)
    monkeypatch.delenv(providers.VAULT_VARIABLE, raising=False)
    with pytest.raises(ValueError, match=message):
        providers.configured_providers()


def test_the_chain_asks_the_named_providers_after_env_and_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(providers.PROVIDERS_VARIABLE, "databricks, azure_keyvault")
    monkeypatch.setenv(providers.SCOPE_VARIABLE, "ingest")
    monkeypatch.setenv(providers.VAULT_VARIABLE, "https://market-kv.vault.azure.net")
    from ingestion_core.config.secrets import default_providers

    chain = default_providers()
    assert [type(p).__name__ for p in chain] == ["EnvironmentProvider", "TomlFileProvider",
                                                 "DatabricksSecretScopeProvider", "AzureKeyVaultProvider"]
    assert chain[2].scope == "ingest" and chain[3].vault_url == "https://market-kv.vault.azure.net"
    assert default_providers()[2] is chain[2]  # built once, its client reused
    assert isinstance(chain[2], DatabricksSecretScopeProvider)


def test_fields_the_workspace_adds_or_fills_in_are_not_changes() -> None:
    desired = job_settings(source(), target(), "/V/w.whl", "ana@example.com").as_dict()
    stored = {**desired, "queue": {"enabled": True}, "edit_mode": "EDITABLE",
              "run_as": {"user_name": "ana@example.com"}}
    assert same_settings(desired, stored, identity="ana@example.com")
    assert not same_settings(desired, stored, identity="bob@example.com")  # runs as someone else: reset
    assert not same_settings(desired, {**desired, "email_notifications": {"on_failure": ["old@example.com"]}})
