"""The Databricks jobs page, headless with AppTest, against the local Databricks API server
(tests/databricks_api.py) with the real databricks-sdk client: the page without a workspace
says how to configure one; Deploy creates one job and a second Deploy changes nothing; a YAML
change shows as a difference until Redeploy; Run now, the job run's status and Cancel, recorded
as a run record with the acting user; a typed secret lands in the scope and nowhere on the page."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from ingestion_core.config.access import audit_entries
from ingestion_core.config.secrets import store_secret
from ingestion_core.databricks.wheel import source_checkout, sources_fingerprint
from ingestion_core.observe.records import latest_runs
from tests.databricks_api import FakeWorkspace, built_wheel, running_workspace
from tests.ui.test_wizard import REPO, ok, unescape

PAGE = REPO / "pages" / "jobs.py"
VOLUME = "/Volumes/main/ingest/files"
ACTOR = "ana@example.com"
SECRET = "typedSecretValue8c1f"  # no Markdown-special characters: shown, it would be shown as is


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[FakeWorkspace]:
    with running_workspace(tmp_path / "workspace") as ws:
        ws.create_volume(VOLUME)
        yield ws


@pytest.fixture
def dbx(ingest_env: Path, workspace: FakeWorkspace) -> FakeWorkspace:
    """A workspace for jobs (the dbx destination), a sqlite source, and this checkout's wheel
    where deploy_wheel keeps its builds (built once per test session)."""
    configs = ingest_env / "configs"
    (configs / "destinations" / "dbx.yaml").write_text(
        f"type: databricks\nserver_hostname: 127.0.0.1\nworkspace_url: {workspace.url}\n"
        "http_path: /sql/1.0/warehouses/abc123\ncatalog: main\naccess_token: ${secrets.dbx.token}\n"
        f"jobs:\n  volume: {VOLUME}\n  secret_scope: ingest\n")
    store_secret("${secrets.dbx.token}", workspace.token)
    (configs / "sources" / "shop.yaml").write_text(
        "name: shop\nowner: market-de\nsource: {type: sqlite, path: shop.sqlite}\ndestination: local_duckdb\n"
        "schedule: '0 6 * * *'\ntables: [{name: orders}]\n")
    cache = ingest_env / ".ingest" / "wheels" / sources_fingerprint(source_checkout())[:16]
    cache.mkdir(parents=True)
    shutil.copy(built_wheel(), cache)
    return workspace


def open_page() -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.user = {"is_logged_in": True, "email": ACTOR}
    return ok(at.run())


def press(at: AppTest, key: str) -> AppTest:
    return ok(at.button(key=key).click().run())


def texts(at: AppTest, kind: str) -> list[str]:
    return [unescape(e.value) for e in getattr(at, kind)]


def job_requests(ws: FakeWorkspace) -> list[tuple[str, str]]:
    return [c for c in ws.changes() if "/jobs/" in c[1] and "/runs/" not in c[1] and "run-now" not in c[1]]


def rendered(at: AppTest) -> str:
    """Every text the page rendered (each element's protobuf fields and value), Markdown unescaped."""
    parts = []
    for node in at._tree:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts += proto_texts(proto)
        with contextlib.suppress(Exception):  # blocks have no value
            parts.append(str(node.value))
    return unescape("\n".join(parts))


def proto_texts(message: Any) -> list[str]:
    texts = []
    for _, value in message.ListFields():
        for item in value if isinstance(value, Sequence) and not isinstance(value, str | bytes) else [value]:
            if hasattr(item, "ListFields"):
                texts += proto_texts(item)
            else:
                texts.append(item.decode(errors="replace") if isinstance(item, bytes) else str(item))
    return texts


def test_without_a_workspace_the_page_says_how_to_configure_one(ingest_env: Path) -> None:
    at = open_page()
    message = texts(at, "info")[0]
    assert message.startswith("No Databricks workspace is configured for jobs.")
    assert "a `jobs:` section" in message and "ingest test-destination" in message
    (ingest_env / "configs" / "destinations" / "dbx.yaml").write_text(
        "type: databricks\nserver_hostname: adb-1.azuredatabricks.net\nhttp_path: /sql/1.0/warehouses/a\n"
        "catalog: main\naccess_token: ${secrets.dbx.token}\n")
    at = ok(at.run())
    assert "a Databricks destination without a `jobs:` section" in texts(at, "warning")[0]
    assert "`dbx`" in texts(at, "warning")[0]


def test_deploy_creates_one_job_and_deploying_again_changes_nothing(ingest_env: Path, dbx: FakeWorkspace) -> None:
    at = open_page()
    assert "has no job in" in texts(at, "info")[0] and at.button(key="jobs-deploy").label == "Deploy"
    assert at.button(key="jobs-run-now").disabled
    at = press(at, "jobs-deploy")
    assert len(dbx.jobs) == 1
    job_id, job = next(iter(dbx.jobs.items()))
    assert job["settings"]["name"] == "ingest-shop" and job["settings"]["tags"]["ingest_source"] == "shop"
    assert texts(at, "success")[0].startswith(f"Job ingest-shop ({job_id}) created; uploaded 3 file(s).")
    assert f"Job [{job_id}]" in texts(at, "success")[1] and "in step with the YAML" in texts(at, "success")[1]
    assert at.button(key="jobs-deploy").label == "Redeploy"
    assert dbx.local_path(f"{VOLUME}/configs/sources/shop.yaml").read_text() == (
        ingest_env / "configs" / "sources" / "shop.yaml").read_text()

    mark = len(dbx.changes())
    at = press(at, "jobs-deploy")
    assert texts(at, "success")[0] == f"Job ingest-shop ({job_id}) unchanged."
    assert dbx.changes()[mark:] == [] and len(dbx.jobs) == 1  # nothing uploaded, no reset, no second job
    deploys = [e for e in audit_entries("databricks_jobs", "shop") if e["action"] == "deploy"]
    assert [(e["actor"], e["result"]) for e in deploys] == [(ACTOR, "created"), (ACTOR, "unchanged")]

    source = ingest_env / "configs" / "sources" / "shop.yaml"
    source.write_text(source.read_text().replace("0 6 * * *", "30 7 * * *"))
    at = press(at, "jobs-refresh")
    assert texts(at, "warning")[0] == ("The deployed job differs from the YAML: job setting schedule, "
                                       "sources/shop.yaml changed. Redeploy to bring it in step.")
    assert at.dataframe[0].value["in step with the YAML"].tolist() == ["no"]
    at = press(at, "jobs-deploy")
    assert texts(at, "success")[0] == f"Job ingest-shop ({job_id}) updated; uploaded 1 file(s)."
    assert job_requests(dbx)[-1] == ("POST", "/api/2.2/jobs/reset") and len(dbx.jobs) == 1
    assert dbx.jobs[job_id]["settings"]["schedule"]["quartz_cron_expression"] == "0 30 7 * * ?"


def test_run_now_follows_the_job_run_and_cancel_stops_it(ingest_env: Path, dbx: FakeWorkspace) -> None:
    at = press(open_page(), "jobs-deploy")
    at = press(at, "jobs-run-now")
    (job_run_id, run), = dbx.runs.items()
    assert texts(at, "success")[0].startswith(f"Started job run {job_run_id} (run ")
    assert at.status[0].state == "running" and f"Job run {job_run_id} of shop" in at.status[0].label
    assert at.button(key="jobs-run-now").disabled
    running = latest_runs(source="shop")
    assert [(r["status"], r["trigger"], r["actor"]) for r in running] == [("running", "job", ACTOR)]
    assert running[0]["run_id"] == run.job_parameters["run_id"]  # the record the job itself would write

    at = press(at, "jobs-cancel")
    assert texts(at, "success")[0] == f"Asked job run {job_run_id} to cancel."
    assert run.cancel_requested and run.result_state == "CANCELED"
    assert at.status[0].state == "error" and at.status[0].label == f"Latest job run {job_run_id}: cancelled"
    assert [(r["status"], r["actor"]) for r in latest_runs(source="shop")] == [("cancelled", ACTOR)]
    actions = [(e["action"], e["actor"]) for e in audit_entries("databricks_jobs", "shop")]
    assert actions == [("deploy", ACTOR), ("run-now", ACTOR), ("cancel", ACTOR)]


def test_a_finished_job_run_shows_its_outcome_and_error(ingest_env: Path, dbx: FakeWorkspace) -> None:
    (ingest_env / "configs" / "sources" / "alpha.yaml").write_text(
        "name: alpha\nowner: market-de\nsource: {type: sqlite, path: a.sqlite}\ndestination: local_duckdb\n"
        "tables: [{name: t}]\n")
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.user = {"is_logged_in": True, "email": ACTOR}
    at.query_params["source"] = "shop"  # a link to jobs?source=shop (alpha comes first otherwise)
    at = ok(at.run())
    assert at.selectbox(key="jobs-source").value == "shop"
    assert at.dataframe[0].value["source"].tolist() == ["alpha", "shop"]
    at = press(press(at, "jobs-deploy"), "jobs-run-now")
    job_run_id = next(iter(dbx.runs))
    dbx.finish_run(job_run_id, "FAILED", "Library installation failed: wheel not found")
    at = press(at, "jobs-refresh")
    assert at.status[0].label == f"Latest job run {job_run_id}: failed"
    assert "Library installation failed" in texts(at, "error")[0] and "What to do:" in texts(at, "error")[0]
    assert [r["status"] for r in latest_runs(source="shop")] == ["failed"]


def test_a_typed_secret_lands_in_the_scope_and_nowhere_on_the_page(ingest_env: Path, dbx: FakeWorkspace) -> None:
    at = open_page()
    at.text_input(key="jobs-secret-key").input("password")
    at.text_input(key="jobs-secret-value").input(SECRET)
    at = press(at, "jobs-secret-store")
    assert dbx.secrets["ingest"] == {"shop-password": SECRET.encode()}  # the scope was created on the way
    assert texts(at, "success")[0] == "Stored. Write ${secrets.shop.password} into the YAML where the value is needed."
    assert at.text_input(key="jobs-secret-value").value == ""
    assert "${secrets.shop.password}" in rendered(at) and SECRET not in rendered(at)
    assert SECRET not in json.dumps([e for e in audit_entries("databricks_jobs")])
    assert SECRET not in (ingest_env / ".ingest" / "secrets.toml").read_text()
    entry = next(e for e in audit_entries("databricks_jobs") if e["action"] == "put-secret")
    assert (entry["actor"], entry["scope"], entry["key"]) == (ACTOR, "ingest", "shop-password")

    at.text_input(key="jobs-secret-key").input("Bad Key")
    at.text_input(key="jobs-secret-value").input(SECRET)
    at = press(at, "jobs-secret-store")
    assert texts(at, "error")[0].startswith("Storing the secret failed: secret key 'Bad Key' is not valid")
    assert SECRET not in rendered(at)


def test_a_user_outside_the_owner_team_cannot_deploy_or_store_secrets(ingest_env: Path, dbx: FakeWorkspace) -> None:
    (ingest_env / "configs" / "teams.yaml").write_text(
        "version: 1\nadmins: [lead@example.com]\nteams:\n  market-de: {members: [bob@example.com]}\n"
        "  market-fr: {members: [ana@example.com]}\n")
    at = open_page()
    assert at.button(key="jobs-deploy").disabled and at.button(key="jobs-run-now").disabled
    assert "ana@example.com may not run shop" in at.button(key="jobs-deploy").help
    at.text_input(key="jobs-secret-key").input("password")
    at.text_input(key="jobs-secret-value").input(SECRET)
    at = press(at, "jobs-secret-store")
    assert texts(at, "error")[0].startswith("Storing the secret failed: ana@example.com may not edit source 'shop'")
    assert dbx.secrets == {} and not [c for c in dbx.changes() if "/secrets/" in c[1]]
    refusals = [e for e in audit_entries() if e["outcome"] == "denied"]
    assert [(e["actor"], e["action"], e["name"]) for e in refusals] == [(ACTOR, "edit", "shop")]
    assert SECRET not in rendered(at)
