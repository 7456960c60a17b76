"""Sources as Databricks jobs, against the local Databricks API server (tests/databricks_api.py)
with the real databricks-sdk client: deploy / redeploy (exact requests, one job, reset not
re-create), run now on the fake cluster (the product's wheel installed in a venv, its ``ingest``
entry point run with the task's parameters, ``${secrets...}`` resolved from the secret scope),
following the job run into a run record, incremental state on a fresh cluster, job status,
cancelling, and failures the cluster reports."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ingestion_core.cli.main import main
from ingestion_core.config.secret_providers.databricks_scope import DatabricksSecretScopeProvider
from ingestion_core.config.secrets import SecretNotFoundError, resolve_value, store_secret
from ingestion_core.config.store import ConfigStore
from ingestion_core.databricks.job_runs import run_now
from ingestion_core.databricks.jobs import resolve_target
from ingestion_core.observe.records import latest_runs, load_record
from ingestion_core.storage.workspace import workspace_client
from tests.databricks_api import FakeCluster, FakeWorkspace, built_wheel, running_workspace, wheel_bin

VOLUME = "/Volumes/main/ingest/files"
WHEEL_NAME = "ingestion_portal-0.1.0-py3-none-any.whl"
FOLLOW = ["--poll-seconds", "0.1", "--timeout", "180"]


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[FakeWorkspace]:
    with running_workspace(tmp_path / "workspace") as ws:
        ws.create_volume(VOLUME)
        ws.warehouses["abc123"] = {"name": "ingest-wh", "state": "RUNNING"}
        ws.secrets["ingest"] = {}
        yield ws


def write_workspace(project: Path, ws: FakeWorkspace, jobs: str = "") -> None:
    (project / "configs" / "destinations" / "dbx.yaml").write_text(
        f"type: databricks\nserver_hostname: 127.0.0.1\nworkspace_url: {ws.url}\n"
        "http_path: /sql/1.0/warehouses/abc123\ncatalog: main\naccess_token: ${secrets.dbx.token}\n"
        f"jobs:\n  volume: {VOLUME}\n  secret_scope: ingest\n  notify_on_failure: [ops@example.com]\n{jobs}")
    store_secret("${secrets.dbx.token}", ws.token)


@pytest.fixture
def dbx(ingest_env: Path, workspace: FakeWorkspace) -> FakeWorkspace:
    write_workspace(ingest_env, workspace)
    return workspace


def write_sqlite_shop(project: Path, tmp_path: Path, schedule: str = "0 6 * * *", rows: int = 5) -> Path:
    database = tmp_path / "shop.sqlite"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, amount INTEGER, "
                           "updated_at TEXT)")
        connection.executemany("INSERT INTO orders VALUES (?, ?, ?)",
                               [(i, i * 10, f"2024-01-{i:02d}") for i in range(1, rows + 1)])
    (project / "configs" / "destinations" / "lake.yaml").write_text(f"type: duckdb\npath: {tmp_path / 'lake.duckdb'}\n")
    (project / "configs" / "sources" / "shop.yaml").write_text(
        f"name: shop\nowner: market-de\nsource: {{type: sqlite, path: {database}}}\ndestination: lake\n"
        f"schedule: '{schedule}'\ntables:\n  - {{name: orders, mode: incremental, cursor: updated_at}}\n")
    return database


def wheel_file(tmp_path: Path) -> Path:
    """A stand-in wheel for tests where no cluster installs it."""
    path = tmp_path / WHEEL_NAME
    path.write_bytes(b"not installed anywhere in this test")
    return path


def expected_job(wheel: str = f"{VOLUME}/wheels/{WHEEL_NAME}", schedule: str = "0 0 6 * * ?") -> dict[str, Any]:
    """The JobSettings body `ingest deploy` sends for the shop source."""
    return {
        "description": "loads source shop; managed by `ingest deploy` (changes made here are overwritten)",
        "email_notifications": {"no_alert_for_skipped_runs": True, "on_failure": ["ops@example.com"]},
        "job_clusters": [{"job_cluster_key": "ingest", "new_cluster": {
            "custom_tags": {"ResourceClass": "SingleNode"}, "data_security_mode": "SINGLE_USER",
            "node_type_id": "Standard_D4ds_v5", "num_workers": 0,
            "spark_conf": {"spark.databricks.cluster.profile": "singleNode", "spark.master": "local[*]"},
            "spark_version": "15.4.x-scala2.12"}}],
        "max_concurrent_runs": 1,
        "name": "ingest-shop",
        "parameters": [{"default": "", "name": "run_id"}],
        "schedule": {"pause_status": "UNPAUSED", "quartz_cron_expression": schedule, "timezone_id": "UTC"},
        "tags": {"ingest_source": "shop", "ingest_owner": "market-de", "managed_by": "ingestion-portal"},
        "tasks": [{
            "description": "ingest shop", "job_cluster_key": "ingest", "libraries": [{"whl": wheel}],
            "max_retries": 1, "min_retry_interval_millis": 600000, "retry_on_timeout": False, "task_key": "ingest",
            "python_wheel_task": {"entry_point": "ingest", "package_name": "ingestion-portal", "parameters": [
                "--actor", "deployer@example.com", "job-run", "shop", "--config-dir", f"{VOLUME}/configs",
                "--runs-dir", f"{VOLUME}/runs", "--run-id", "{{job.parameters.run_id}}", "--job-run-id",
                "{{job.run_id}}", "--secret-scope", "ingest"]}}],
        "timeout_seconds": 0,
    }


# --- deploy ---------------------------------------------------------------------------------

def test_deploy_creates_the_job_and_a_redeploy_changes_nothing(ingest_env: Path, tmp_path: Path, dbx, capsys) -> None:
    write_sqlite_shop(ingest_env, tmp_path)
    wheel = wheel_file(tmp_path)
    assert main(["deploy", "shop", "--workspace", "dbx", "--wheel", str(wheel)]) == 0
    assert "job ingest-shop (1001) created" in capsys.readouterr().out
    assert dbx.changes() == [
        ("PUT", f"/api/2.0/fs/files{VOLUME}/wheels/{WHEEL_NAME}"),
        ("PUT", f"/api/2.0/fs/files{VOLUME}/configs/sources/shop.yaml"),
        ("PUT", f"/api/2.0/fs/files{VOLUME}/configs/destinations/lake.yaml"),
        ("POST", "/api/2.2/jobs/create"),
    ]
    create = next(r for r in dbx.requests if r.path == "/api/2.2/jobs/create")
    assert create.body == expected_job() and create.auth == "pat"
    lookup = next(r for r in dbx.requests if r.path == "/api/2.2/jobs/list")
    assert lookup.query == {"name": "ingest-shop"}
    assert dbx.local_path(f"{VOLUME}/configs/sources/shop.yaml").read_bytes() == \
        (ingest_env / "configs" / "sources" / "shop.yaml").read_bytes()
    first = json.dumps(dbx.jobs, sort_keys=True)

    mark = len(dbx.requests)
    assert main(["deploy", "shop", "--workspace", "dbx", "--wheel", str(wheel), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["deployment"]["action"] == "unchanged" and result["deployment"]["uploaded"] == []
    assert [(r.method, r.path) for r in dbx.requests[mark:] if r.method not in ("GET", "HEAD")] == []
    assert json.dumps(dbx.jobs, sort_keys=True) == first and len(dbx.jobs) == 1


def test_a_changed_source_resets_the_same_job(ingest_env: Path, tmp_path: Path, dbx) -> None:
    write_sqlite_shop(ingest_env, tmp_path)
    wheel = wheel_file(tmp_path)
    assert main(["deploy", "shop", "--workspace", "dbx", "--wheel", str(wheel)]) == 0
    source = ingest_env / "configs" / "sources" / "shop.yaml"
    source.write_text(source.read_text().replace("0 6 * * *", "30 7 * * 1-5") + "enabled: false\n")
    mark = len(dbx.requests)
    assert main(["deploy", "shop", "--workspace", "dbx", "--wheel", str(wheel)]) == 0
    assert [(r.method, r.path) for r in dbx.requests[mark:] if r.method not in ("GET", "HEAD")] == [
        ("PUT", f"/api/2.0/fs/files{VOLUME}/configs/sources/shop.yaml"), ("POST", "/api/2.2/jobs/reset")]
    reset = dbx.requests[-1].body
    expected = expected_job(schedule="0 30 7 ? * 2-6")
    expected["schedule"]["pause_status"] = "PAUSED"
    assert reset == {"job_id": 1001, "new_settings": expected}
    assert list(dbx.jobs) == [1001]
    assert dbx.jobs[1001]["settings"]["schedule"]["quartz_cron_expression"] == "0 30 7 ? * 2-6"


def test_deploy_leaves_a_job_it_did_not_make_alone(ingest_env: Path, tmp_path: Path, dbx, capsys) -> None:
    write_sqlite_shop(ingest_env, tmp_path)
    client = workspace_client(ConfigStore().load_destination("dbx").config)
    client.jobs.create(name="ingest-shop")
    assert main(["deploy", "shop", "--workspace", "dbx", "--wheel", str(wheel_file(tmp_path))]) == 1
    assert "a job named ingest-shop exists (id 1001) that `ingest deploy` did not create" in capsys.readouterr().err
    assert len(dbx.jobs) == 1


def test_a_missing_volume_says_how_to_create_it(ingest_env: Path, tmp_path: Path, workspace, capsys) -> None:
    write_workspace(ingest_env, workspace, "  job_name_prefix: x-\n")
    (ingest_env / "configs" / "destinations" / "dbx.yaml").write_text(
        (ingest_env / "configs" / "destinations" / "dbx.yaml").read_text().replace(VOLUME, "/Volumes/main/none/v"))
    write_sqlite_shop(ingest_env, tmp_path)
    assert main(["deploy", "shop", "--workspace", "dbx", "--wheel", str(wheel_file(tmp_path))]) == 1
    assert "does the volume /Volumes/main/none/v exist? Create it (CREATE VOLUME main.none.v)" in \
        capsys.readouterr().err
    assert workspace.jobs == {}


# --- runs on the cluster ---------------------------------------------------------------------

@pytest.fixture
def cluster(dbx: FakeWorkspace, tmp_path: Path) -> FakeWorkspace:
    dbx.cluster = FakeCluster(wheel_bin(), tmp_path / "cluster")
    return dbx


def write_postgres_shop(project: Path, tmp_path: Path, postgres_db) -> None:
    postgres_db.execute("CREATE TABLE orders (id INT PRIMARY KEY, amount NUMERIC(10, 2), updated_at TIMESTAMP)")
    postgres_db.execute("INSERT INTO orders SELECT g, g * 1.5, TIMESTAMP '2024-01-01' + g * INTERVAL '1 hour' "
                        "FROM generate_series(1, 3) g")
    (project / "configs" / "destinations" / "lake.yaml").write_text(f"type: duckdb\npath: {tmp_path / 'lake.duckdb'}\n")
    (project / "configs" / "sources" / "shop.yaml").write_text(
        f"name: shop\nowner: market-de\nsource:\n  type: postgres\n  host: {postgres_db.host}\n"
        f"  port: {postgres_db.port}\n  database: {postgres_db.name}\n  username: {postgres_db.user}\n"
        "  password: ${secrets.shop_pg.password}\ndestination: lake\nschedule: '0 6 * * *'\n"
        "tables:\n  - {name: orders, schema: public, mode: incremental, cursor: updated_at}\n")


def landed_rows(tmp_path: Path) -> int:
    with duckdb.connect(str(tmp_path / "lake.duckdb"), read_only=True) as connection:
        return connection.execute("SELECT count(*) FROM shop.orders").fetchone()[0]


def test_a_job_run_resolves_secrets_from_the_scope_and_is_followed_into_a_run_record(
        ingest_env: Path, tmp_path: Path, cluster: FakeWorkspace, postgres_db, capsys) -> None:
    write_postgres_shop(ingest_env, tmp_path, postgres_db)
    client = workspace_client(ConfigStore().load_destination("dbx").config)
    store_secret("${secrets.shop_pg.password}", postgres_db.password,
                 provider=DatabricksSecretScopeProvider("ingest", client))
    put = next(r for r in cluster.requests if r.path == "/api/2.0/secrets/put")
    assert put.body == {"scope": "ingest", "key": "shop_pg-password", "string_value": postgres_db.password}
    with pytest.raises(SecretNotFoundError):  # not on this machine: only the scope has it
        resolve_value("${secrets.shop_pg.password}")

    code = main(["deploy", "shop", "--workspace", "dbx", "--wheel", str(built_wheel()), "--follow", *FOLLOW])
    run = next(iter(cluster.runs.values()))
    assert code == 0, run.output
    out = capsys.readouterr().out
    assert f"started job run {run.run_id}" in out and "success, 3 rows" in out
    assert (run.result_state, run.job_parameters["run_id"]) == ("SUCCESS", latest_runs()[0]["run_id"])
    assert landed_rows(tmp_path) == 3

    [local] = latest_runs()
    assert (local["trigger"], local["status"], local["rows_total"], local["actor"]) == \
        ("job", "success", 3, "deployer@example.com")
    assert local["log_path"] == f"{cluster.url}/#job/{run.job_id}/run/{run.run_id}"
    on_volume = list(cluster.local_path(f"{VOLUME}/runs").glob(f"*/*/*/{local['run_id']}.json"))
    assert len(on_volume) == 1  # written by the job itself, where INGEST_RUNS_DIR pointed it
    assert load_record(on_volume[0]).tables[0].rows == 3

    # a second run starts on a fresh cluster: the cursor comes back from the destination
    postgres_db.execute("INSERT INTO orders VALUES (4, 6, '2024-02-01'), (5, 7.5, '2024-02-02')")
    assert main(["deploy", "shop", "--workspace", "dbx", "--wheel", str(built_wheel()), "--follow", *FOLLOW]) == 0
    second = max(cluster.runs.values(), key=lambda r: r.run_id)
    assert "restored the dlt state of orders from the destination" in second.output
    assert latest_runs()[0]["rows_total"] == 2 and landed_rows(tmp_path) == 5
    assert len(cluster.jobs) == 1


def test_cancelling_a_running_job_run_records_it_cancelled(ingest_env: Path, tmp_path: Path, cluster: FakeWorkspace,
                                                           postgres_db) -> None:
    write_postgres_shop(ingest_env, tmp_path, postgres_db)
    postgres_db.execute("CREATE VIEW slow AS SELECT g AS id, TIMESTAMP '2024-01-01' AS updated_at "
                        "FROM generate_series(1, 600) g, LATERAL (SELECT pg_sleep(0.1)) s")
    source = ingest_env / "configs" / "sources" / "shop.yaml"
    source.write_text(source.read_text().replace("{name: orders, schema: public, mode: incremental, cursor: "
                                                 "updated_at}", "{name: slow, schema: public, mode: full}"))
    cluster.secrets["ingest"]["shop_pg-password"] = postgres_db.password.encode()
    assert main(["deploy", "shop", "--workspace", "dbx", "--wheel", str(built_wheel())]) == 0
    store = ConfigStore()
    config = store.load_source("shop").config
    target = resolve_target(config, store, "dbx")
    handle = run_now(workspace_client(target.workspace), 1001, "shop")
    wait_for(lambda: any(cluster.local_path(f"{VOLUME}/runs").glob(f"*/*/*/{handle.run_id}.json"))
             and '"status":"running"' in next(cluster.local_path(f"{VOLUME}/runs").glob(
                 f"*/*/*/{handle.run_id}.json")).read_text())
    assert main(["job-cancel", "shop", "--workspace", "dbx", "--follow", *FOLLOW]) == 0
    run = cluster.runs[handle.job_run_id]
    assert run.result_state == "CANCELED", run.output
    [record] = latest_runs()
    assert (record["run_id"], record["status"], record["trigger"]) == (handle.run_id, "cancelled", "job")
    assert record["tables"][0]["status"] == "cancelled"


def wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_a_wheel_that_does_not_install_is_a_failed_run_record(ingest_env: Path, tmp_path: Path,
                                                              cluster: FakeWorkspace) -> None:
    write_sqlite_shop(ingest_env, tmp_path)
    assert main(["deploy", "shop", "--workspace", "dbx", "--wheel", str(wheel_file(tmp_path)), "--run-now"]) == 0
    [run] = cluster.runs.values()
    wheel = f"{VOLUME}/wheels/{WHEEL_NAME}"
    cluster.wait_run(run.run_id)
    assert (run.result_state, run.state_message) == (
        "FAILED", f"Library installation failed: {wheel} is not a valid wheel")
    assert main(["job-status", "shop", "--workspace", "dbx", "--follow", str(run.run_id), *FOLLOW]) == 1
    [record] = latest_runs()
    assert (record["status"], record["trigger"], record["run_id"]) == ("failed", "job", run.job_parameters["run_id"])
    assert record["error"]["message"] == (f"job run {run.run_id}: Library installation failed: {wheel} is not a "
                                          "valid wheel")
    assert record["error"]["hint"] == f"see the job run's page: {cluster.url}/#job/1001/run/{run.run_id}"
    assert [t["status"] for t in record["tables"]] == ["skipped"]


def test_a_wheel_missing_from_the_volume_fails_the_run_with_the_reason(ingest_env: Path, tmp_path: Path,
                                                                       cluster: FakeWorkspace) -> None:
    write_sqlite_shop(ingest_env, tmp_path)
    assert main(["deploy", "shop", "--workspace", "dbx", "--wheel", str(wheel_file(tmp_path))]) == 0
    cluster.local_path(f"{VOLUME}/wheels/{WHEEL_NAME}").unlink()  # e.g. removed from the volume by hand
    store = ConfigStore()
    target = resolve_target(store.load_source("shop").config, store, "dbx")
    handle = run_now(workspace_client(target.workspace), 1001, "shop")
    run = cluster.wait_run(handle.job_run_id)
    assert (run.result_state, run.state_message) == (
        "FAILED", f"Library installation failed: {VOLUME}/wheels/{WHEEL_NAME} not found")
    assert main(["job-status", "shop", "--workspace", "dbx", "--follow", str(run.run_id), *FOLLOW]) == 1
    [record] = latest_runs()
    assert record["error"]["message"] == (f"job run {run.run_id}: Library installation failed: "
                                          f"{VOLUME}/wheels/{WHEEL_NAME} not found")


def test_a_job_run_that_never_starts_can_be_cancelled(ingest_env: Path, tmp_path: Path, dbx, capsys) -> None:
    write_sqlite_shop(ingest_env, tmp_path)
    assert main(["deploy", "shop", "--workspace", "dbx", "--wheel", str(wheel_file(tmp_path)), "--run-now"]) == 0
    [run] = dbx.runs.values()
    assert run.life_cycle_state == "PENDING"  # no cluster here: it waits
    assert main(["job-status", "shop", "--workspace", "dbx"]) == 0
    assert f"job run {run.run_id}" in capsys.readouterr().out
    assert main(["job-cancel", "shop", "--workspace", "dbx", "--follow", *FOLLOW]) == 0
    cancel = next(r for r in dbx.requests if r.path == "/api/2.2/jobs/runs/cancel")
    assert cancel.body == {"run_id": run.run_id}
    [record] = latest_runs()
    assert (record["status"], record["run_id"]) == ("cancelled", run.job_parameters["run_id"])
    assert record["error"]["message"] == f"job run {run.run_id}: Run cancelled."
    assert main(["job-cancel", "shop", "--workspace", "dbx"]) == 0
    assert "no active run of shop's job to cancel" in capsys.readouterr().err


def test_job_status_lists_the_runs(ingest_env: Path, tmp_path: Path, dbx, capsys) -> None:
    write_sqlite_shop(ingest_env, tmp_path)
    assert main(["deploy", "shop", "--workspace", "dbx", "--wheel", str(wheel_file(tmp_path)), "--run-now"]) == 0
    [run] = dbx.runs.values()
    dbx.finish_run(run.run_id, "FAILED", "Workload failed: the task exited with code 1")
    capsys.readouterr()
    assert main(["job-status", "shop", "--workspace", "dbx", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row == {"job_id": 1001, "job_run_id": run.run_id, "run_id": run.job_parameters["run_id"],
                   "status": "failed", "state": "Workload failed: the task exited with code 1",
                   "started_at": row["started_at"], "ended_at": row["ended_at"],
                   "url": f"{dbx.url}/#job/1001/run/{run.run_id}"}


def test_a_scheduled_run_is_followed_by_its_job_run_id(ingest_env: Path, tmp_path: Path, cluster: FakeWorkspace,
                                                       capsys) -> None:
    """A run the schedule starts has no run id of ours: the job names its record after the job run."""
    write_sqlite_shop(ingest_env, tmp_path)
    assert main(["deploy", "shop", "--workspace", "dbx", "--wheel", str(built_wheel())]) == 0
    client = workspace_client(ConfigStore().load_destination("dbx").config)
    job_run_id = client.jobs.run_now(1001).response.run_id  # as the scheduler does: no job parameters
    assert main(["job-status", "shop", "--workspace", "dbx", "--follow", str(job_run_id), *FOLLOW]) == 0, \
        cluster.runs[job_run_id].output
    [record] = latest_runs()
    assert (record["run_id"], record["status"], record["rows_total"]) == (f"job{job_run_id}-shop", "success", 5)
    assert landed_rows(tmp_path) == 5


def test_a_source_after_another_runs_that_job_first_as_a_task(ingest_env: Path, tmp_path: Path, dbx,
                                                               capsys) -> None:
    write_sqlite_shop(ingest_env, tmp_path)
    shop = (ingest_env / "configs" / "sources" / "shop.yaml").read_text()
    (ingest_env / "configs" / "sources" / "report.yaml").write_text(
        shop.replace("name: shop", "name: report") + "after: [shop]\n")
    wheel = wheel_file(tmp_path)
    assert main(["deploy", "report", "--workspace", "dbx", "--wheel", str(wheel)]) == 1
    assert "report runs after shop, which has no job here yet: deploy it first (`ingest deploy shop`)" in \
        capsys.readouterr().err
    assert main(["deploy", "shop", "--workspace", "dbx", "--wheel", str(wheel)]) == 0
    assert main(["deploy", "report", "--workspace", "dbx", "--wheel", str(wheel)]) == 0
    assert "job ingest-report (1002) created" in capsys.readouterr().out
    create = [r for r in dbx.requests if r.path == "/api/2.2/jobs/create"][-1]
    first, ingest = create.body["tasks"]
    assert first == {"task_key": "after_shop", "run_job_task": {"job_id": 1001},
                     "description": "run source shop's job first (after: in report)"}
    assert ingest["task_key"] == "ingest" and ingest["depends_on"] == [{"task_key": "after_shop"}]
    assert "run_if" not in ingest  # the default, ALL_SUCCESS: a failed shop skips report
