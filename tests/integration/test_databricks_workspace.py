"""The Databricks destination's connection check, the secret-scope provider in the secrets chain,
and run records on a Unity Catalog volume read through fsspec, against the local Databricks API
server with the real databricks-sdk client."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import fsspec
import pytest
from databricks.sdk.service.jobs import JobParameterDefinition

from ingestion_core.cli.main import main
from ingestion_core.config import secret_providers as providers
from ingestion_core.config.secret_providers.databricks_scope import DatabricksSecretScopeProvider, SecretScopeError
from ingestion_core.config.secrets import SecretNotFoundError, mask, parse_reference, resolve_value, store_secret
from ingestion_core.config.store import ConfigStore
from ingestion_core.databricks.job_runs import JobRunHandle, follow_job_run
from ingestion_core.databricks.jobs import resolve_target
from ingestion_core.engine.destinations import databricks
from ingestion_core.observe import run_metrics
from ingestion_core.observe.records import (
    RECORD_COLUMNS,
    RunRecord,
    TableResult,
    _read_json,
    find_record,
    latest_runs,
    write_record,
)
from ingestion_core.storage.volumes import register_with_duckdb
from ingestion_core.storage.workspace import workspace_client
from tests.databricks_api import FakeWorkspace, running_workspace

VOLUME = "/Volumes/main/ingest/files"


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[FakeWorkspace]:
    with running_workspace(tmp_path / "workspace") as ws:
        ws.create_volume(VOLUME)
        ws.create_volume("/Volumes/main/raw/staging")
        ws.warehouses["abc123"] = {"name": "ingest-wh", "state": "RUNNING"}
        ws.secrets["ingest"] = {}
        yield ws


def destination(ws: FakeWorkspace, *, url: str | None = None, warehouse: str = "abc123", oauth: bool = False,
                volume: str = "/Volumes/main/raw/staging") -> object:
    text = (f"type: databricks\nserver_hostname: 127.0.0.1\nworkspace_url: {url or ws.url}\n"
            f"http_path: /sql/1.0/warehouses/{warehouse}\ncatalog: main\nstaging: {{volume: {volume}}}\n")
    if oauth:
        text += f"client_id: {ws.client_id}\nclient_secret: ${{secrets.dbx.client_secret}}\n"
        store_secret("${secrets.dbx.client_secret}", ws.client_secret)
    else:
        text += "access_token: ${secrets.dbx.token}\n"
        store_secret("${secrets.dbx.token}", ws.token)
    store = ConfigStore()
    store.path("destinations", "dbx").write_text(text)
    return store.load_destination("dbx").config


def checks(report) -> dict[str, bool | None]:
    return {c["check"]: c["ok"] for c in report.details["checks"]}


# --- test connection -----------------------------------------------------------------------

def test_a_reachable_workspace_warehouse_and_volume_then_an_unreachable_warehouse(ingest_env: Path, workspace,
                                                                                 capsys) -> None:
    report = databricks.test_connection(destination(workspace), timeout_seconds=3)
    assert checks(report) == {"workspace": True, "warehouse": True, "staging": True, "driver": True, "query": False}
    details = {c["check"]: c["detail"] for c in report.details["checks"]}
    assert details["workspace"] == f"signed in to {workspace.url} as deployer@example.com"
    assert details["warehouse"] == "SQL warehouse ingest-wh is RUNNING"
    assert details["staging"] == "staging volume /Volumes/main/raw/staging exists"
    # the real SQL driver tries https://127.0.0.1:443, where no SQL warehouse answers: reported, bounded
    assert report.reason.startswith("the SQL warehouse at 127.0.0.1/sql/1.0/warehouses/abc123 did not answer "
                                    "SELECT 1 (")
    assert "Connection refused" in report.reason and "CAN USE permission" in report.mitigation
    assert workspace.token not in json.dumps(report.as_dict())
    assert main(["test-destination", "dbx", "--timeout", "3"]) == 1
    out = capsys.readouterr().out
    assert "query      FAILED  the SQL warehouse at 127.0.0.1" in out and "what to do: check server_hostname" in out
    assert workspace.token not in out


def test_a_missing_sql_driver_says_what_to_install(ingest_env: Path, workspace, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "databricks.sql", None)  # import databricks.sql raises ImportError
    report = databricks.test_connection(destination(workspace))
    assert checks(report)["driver"] is False and checks(report)["query"] is None
    assert report.reason == "the Databricks SQL driver (databricks-sql-connector) is not installed"
    assert report.mitigation == "install it: pip install 'dlt[databricks]==1.31.0' (it brings " \
                                "databricks-sql-connector)"
    assert main(["test-destination", "dbx"]) == 1
    out = capsys.readouterr().out
    assert "driver     FAILED  the Databricks SQL driver" in out and "what to do: install it" in out


def test_oauth_m2m_signs_in_as_the_service_principal(ingest_env: Path, workspace) -> None:
    report = databricks.test_connection(destination(workspace, oauth=True), timeout_seconds=3)
    assert checks(report)["workspace"] and checks(report)["warehouse"]
    # the SQL driver's OAuth token for https://127.0.0.1 cannot be had: reported, bounded by the timeout
    assert checks(report)["query"] is False and report.reason.startswith("the SQL warehouse at 127.0.0.1")
    assert workspace.client_secret not in json.dumps(report.as_dict())
    assert [r.path for r in workspace.requests[:4]] == ["/.well-known/databricks-config",
                                                        "/oidc/.well-known/oauth-authorization-server",
                                                        "/oidc/v1/token", "/api/2.0/preview/scim/v2/Me"]
    assert {r.auth for r in workspace.api_requests()} == {"oauth"}
    assert workspace.client_id in report.details["checks"][0]["detail"]


def test_refused_credentials(ingest_env: Path, workspace) -> None:
    config = destination(workspace)
    store_secret("${secrets.dbx.token}", "dapi-wrong-token-0000")
    report = databricks.test_connection(config)
    assert not report.ok and checks(report)["workspace"] is False
    assert report.reason.startswith(f"the workspace {workspace.url} refused the credentials")
    assert "access_token" in report.mitigation
    assert "dapi-wrong-token-0000" not in json.dumps(report.as_dict())


def test_an_unreachable_workspace(ingest_env: Path, workspace) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    report = databricks.test_connection(destination(workspace, url=closed), timeout_seconds=1)
    assert not report.ok and report.reason.startswith(f"the workspace {closed} cannot be reached")
    assert "network, proxy, firewall" in report.mitigation
    assert checks(report)["warehouse"] is None  # not checked without a workspace


def test_a_missing_or_stopped_warehouse_and_a_missing_volume(ingest_env: Path, workspace) -> None:
    report = databricks.test_connection(destination(workspace, warehouse="nope"))
    assert report.reason == f"there is no SQL warehouse nope in {workspace.url}"
    assert report.mitigation == "copy http_path from the warehouse's Connection details tab"
    workspace.warehouses["abc123"]["state"] = "STOPPED"
    report = databricks.test_connection(destination(workspace, volume="/Volumes/main/raw/missing"))
    details = {c["check"]: c["detail"] for c in report.details["checks"]}
    assert details["warehouse"] == "SQL warehouse ingest-wh is STOPPED (it starts on the first query)"
    assert report.reason == "the staging volume /Volumes/main/raw/missing does not exist"
    assert report.mitigation == "create it: CREATE VOLUME main.raw.missing"


def test_test_destination_is_for_databricks_destinations(ingest_env: Path, capsys) -> None:
    assert main(["test-destination", "local_duckdb"]) == 1
    assert "test-destination checks Databricks destinations; 'local_duckdb' is duckdb" in capsys.readouterr().err


# --- the secret scope in the chain ----------------------------------------------------------

@pytest.fixture
def scope_chain(workspace: FakeWorkspace, monkeypatch: pytest.MonkeyPatch) -> FakeWorkspace:
    monkeypatch.setenv("DATABRICKS_HOST", workspace.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", workspace.token)
    monkeypatch.setenv(providers.PROVIDERS_VARIABLE, "databricks")
    monkeypatch.setenv(providers.SCOPE_VARIABLE, "ingest")
    return workspace


def test_references_resolve_from_the_scope_after_env_and_file(ingest_env: Path, scope_chain, monkeypatch) -> None:
    scope_chain.secrets["ingest"]["sales_de-password"] = b"from-the-scope-1"
    assert resolve_value("${secrets.sales_de.password}") == "from-the-scope-1"
    assert mask("pw=from-the-scope-1") == "pw=***"  # registered for masking like any resolved value
    store_secret("${secrets.sales_de.password}", "from-the-file-22")
    assert resolve_value("${secrets.sales_de.password}") == "from-the-file-22"  # the file comes first
    monkeypatch.setenv("SECRETS__SALES_DE__PASSWORD", "from-the-env-333")
    assert resolve_value("${secrets.sales_de.password}") == "from-the-env-333"
    gets = [r for r in scope_chain.requests if r.path == "/api/2.0/secrets/get"]
    assert gets[0].query == {"scope": "ingest", "key": "sales_de-password"}


def test_a_missing_key_names_every_place_looked(ingest_env: Path, scope_chain) -> None:
    with pytest.raises(SecretNotFoundError) as raised:
        resolve_value("${secrets.sales_de.api_key}")
    assert "Databricks secret scope 'ingest' key sales_de-api_key" in str(raised.value)
    assert "environment variable SECRETS__SALES_DE__API_KEY" in str(raised.value)


def test_a_missing_scope_or_refused_token_is_not_a_missing_secret(ingest_env: Path, workspace) -> None:
    client = workspace_client(destination(workspace))
    reference = parse_reference("${secrets.a.b}")
    with pytest.raises(SecretScopeError, match="the Databricks secret scope 'nope' does not exist; create it"):
        DatabricksSecretScopeProvider("nope", client).get(reference)
    store_secret("${secrets.dbx.token}", "dapi-revoked-000000")
    with pytest.raises(SecretScopeError, match="cannot read Databricks secret scope 'ingest' key a-b"):
        DatabricksSecretScopeProvider("ingest", workspace_client(ConfigStore().load_destination("dbx").config)).get(
            reference)


def test_typed_secrets_go_into_the_scope(ingest_env: Path, workspace) -> None:
    provider = DatabricksSecretScopeProvider("portal", workspace_client(destination(workspace)))
    assert provider.ensure_scope() is True and provider.ensure_scope() is False
    reference = store_secret("${secrets.sales_de.password}", "typed-in-the-form", provider=provider)
    assert reference.text == "${secrets.sales_de.password}"
    assert workspace.secrets["portal"] == {"sales_de-password": b"typed-in-the-form"}
    assert provider.get(reference) == "typed-in-the-form"
    assert not (ingest_env / ".ingest" / "secrets.toml").read_text().count("typed-in-the-form")


# --- run records on a volume ----------------------------------------------------------------

def record(run_id: str, status: str = "success", rows: int = 3) -> RunRecord:
    return RunRecord(run_id=run_id, kind="run", source="shop", source_type="sqlite", owner="market-de",
                     destination="lake", destination_type="duckdb", dataset="shop", trigger="job", actor="sp",
                     status=status, started_at=datetime(2024, 5, 1, 6, tzinfo=UTC), rows_total=rows,
                     tables=[TableResult(name="orders", mode="append", status="success", rows=rows)])


def test_run_records_on_a_volume_are_written_and_queried_through_fsspec(ingest_env: Path, scope_chain,
                                                                        monkeypatch) -> None:
    monkeypatch.setenv("INGEST_RUNS_DIR", "volumes://main/ingest/files/runs")
    path = write_record(record("r1"))
    write_record(record("r2", "failed", 0))
    assert path == "volumes://main/ingest/files/runs/2024/05/01/r1.json"
    assert scope_chain.local_path(f"{VOLUME}/runs/2024/05/01/r1.json").is_file()
    fs = fsspec.filesystem("volumes")
    assert fs.glob("volumes://main/ingest/files/runs/*/*/*/*.json") == [
        "main/ingest/files/runs/2024/05/01/r1.json", "main/ingest/files/runs/2024/05/01/r2.json"]
    with duckdb.connect() as connection:  # what records.py / run_metrics.py need to read a volume
        register_with_duckdb(connection, "volumes://main/ingest/files/runs")
        scalar = {k: v for k, v in RECORD_COLUMNS.items() if v != "JSON"}
        rows = connection.execute(f"SELECT run_id, status, rows_total FROM {_read_json('?', scalar)} ORDER BY 1",
                                  ["volumes://main/ingest/files/runs/*/*/*/*.json"]).fetchall()
    assert rows == [("r1", "success", 3), ("r2", "failed", 0)]
    fs.rm("volumes://main/ingest/files/runs/2024/05/01/r2.json")
    with pytest.raises(FileNotFoundError):
        fs.cat("volumes://main/ingest/files/runs/2024/05/01/r2.json")


def test_the_portals_queries_and_dashboards_read_run_records_on_a_volume(ingest_env: Path, scope_chain,
                                                                         monkeypatch) -> None:
    monkeypatch.setenv("INGEST_RUNS_DIR", "volumes://main/ingest/files/runs")
    assert latest_runs() == [] and run_metrics.load_run_data().runs.empty  # no runs folder on the volume yet
    write_record(record("r1"))
    write_record(record("r2", "failed", 0).model_copy(update={"started_at": datetime(2024, 5, 2, 6, tzinfo=UTC)}))
    write_record(record("r3", "running", 0).model_copy(update={"started_at": datetime(2024, 5, 2, 7, tzinfo=UTC),
                                                               "host": "job-cluster"}))
    assert [(r["run_id"], r["status"]) for r in latest_runs()] == [("r3", "running"), ("r2", "failed"),
                                                                   ("r1", "success")]
    assert [r["run_id"] for r in latest_runs(status="success")] == ["r1"]
    assert find_record("r2").status == "failed" and find_record("nope") is None
    data = run_metrics.load_run_data()
    assert data.runs["run_id"].tolist() == ["r3", "r2", "r1"]
    assert data.runs["filename"].tolist()[-1] == "volumes://main/ingest/files/runs/2024/05/01/r1.json"
    assert data.tables[["run_id", "table", "rows"]].values.tolist() == [["r3", "orders", 0], ["r2", "orders", 0],
                                                                       ["r1", "orders", 3]]
    detail = run_metrics.run_detail("r2", data=data)
    assert detail["record"].status == "failed" and detail["previous_run_id"] == "r1"
    from portal.dashboards import dashboard_data

    dashboard_data.clear()
    assert dashboard_data.run_data().runs["run_id"].tolist() == ["r3", "r2", "r1"]
    reads = {r.path for r in scope_chain.api_requests() if r.method == "GET" and r.path.startswith("/api/2.0/fs/")}
    assert "/api/2.0/fs/directories/Volumes/main/ingest/files/runs/2024/05" in reads  # listed through the Files API


def test_following_leaves_the_jobs_own_record_on_a_shared_volume_alone(ingest_env: Path, tmp_path: Path,
                                                                       scope_chain, monkeypatch) -> None:
    """With the portal reading the volume itself, the follower writes only when the job run ended
    while the job's record still said running (its process was killed)."""
    (ingest_env / "configs" / "sources" / "shop.yaml").write_text(
        "name: shop\nowner: market-de\nsource: {type: sqlite, path: shop.sqlite}\ntables: [{name: orders}]\n")
    destination(scope_chain)  # writes dbx.yaml, then it gets a jobs: section
    (ingest_env / "configs" / "destinations" / "dbx.yaml").write_text(
        (ingest_env / "configs" / "destinations" / "dbx.yaml").read_text() + f"jobs: {{volume: {VOLUME}}}\n")
    monkeypatch.setenv("INGEST_RUNS_DIR", "volumes://main/ingest/files/runs")
    store = ConfigStore()
    config = store.load_source("shop").config
    target = resolve_target(config, store, "dbx")
    client = workspace_client(target.workspace)
    job_id = client.jobs.create(name="ingest-shop", tags={"ingest_source": "shop"},
                                parameters=[JobParameterDefinition(name="run_id", default="")]).job_id
    job_run_id = client.jobs.run_now(job_id, job_parameters={"run_id": "r-live"}).response.run_id
    today = datetime.now(UTC)
    live = record("r-live", "running", 0).model_copy(update={"started_at": today})
    on_volume = scope_chain.local_path(f"{VOLUME}/runs/{today:%Y/%m/%d}/r-live.json")
    on_volume.parent.mkdir(parents=True)
    on_volume.write_text(live.model_dump_json())  # what the job wrote
    handle = JobRunHandle(job_id, job_run_id, "r-live", f"{scope_chain.url}/#job/{job_id}/run/{job_run_id}")
    mark = len(scope_chain.requests)
    running = follow_job_run(client, target, config, handle, actor="ana", poll_seconds=0.01, timeout_seconds=0.2)
    assert running.status == "running"
    assert not [r for r in scope_chain.requests[mark:] if r.method == "PUT"]  # the job's record untouched
    scope_chain.finish_run(job_run_id, "FAILED", "Cluster terminated: driver lost")
    final = follow_job_run(client, target, config, handle, actor="ana", poll_seconds=0.01)
    assert final.status == "failed" and "driver lost" in final.error.message
    assert RunRecord.model_validate_json(on_volume.read_text()).status == "failed"
