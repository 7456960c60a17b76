"""The session's fake secrets pushed through the paths a real secret takes: a token typed into the portal's
form, tested, saved, previewed and run, then replaced through the onboarding functions; a wrong database
password typed into the form and tested, then used by the CLI (test-connection, preview, run); failed API
auth of every style and a wrong S3 secret key through the CLI; a password pasted into a connection URL.
Nothing shown, printed, logged or recorded holds a secret value (plain, URL-encoded or base64): checked
here on the outputs and the project folder, and again by the session-end scan (tests/security/)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingestion_core import onboarding
from ingestion_core.config.secrets import store_secret
from ingestion_core.config.store import parse_yaml, validate_source_data
from tests.conftest import REPO
from tests.http_api import ApiServer, running_api
from tests.security.scanner import Scanner, fake_secret, scan_paths, session_secrets
from tests.ui.test_wizard import click, ok, open_editor, page_text, start_type, type_in

WRONG = "wrong_password"


def assert_no_secret(*texts: str, roots: tuple[Path, ...] = ()) -> None:
    values = session_secrets()
    found = Scanner(values).search_bytes("\n".join(texts).encode("utf-8"))
    assert not found, f"secrets in the output: {sorted(found)}"  # names and encodings, never the values
    hits = scan_paths(roots, values).hits
    assert hits == [], [str(h) for h in hits]


def ingest(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ingestion_core", *args], cwd=REPO, env=os.environ.copy(),
                          capture_output=True, text=True, timeout=300)


def failing(*commands: tuple[str, ...]) -> list[str]:
    """Run each `ingest` command, which must fail; their stdout and stderr."""
    outputs = []
    for args in commands:
        done = ingest(*args)
        assert done.returncode != 0, (args, done.stdout, done.stderr)
        outputs += [done.stdout, done.stderr]
    return outputs


def test_wrong_database_password_through_the_form_and_the_cli(ingest_env: Path, postgres_db) -> None:
    postgres_db.execute("CREATE TABLE contacts (id bigint PRIMARY KEY, email text)")
    wrong = fake_secret(WRONG)
    at = start_type(open_editor(), "postgres")
    for key, value in (("f-name", "crm"), ("f-owner", "market-fr"), ("f-source-host", postgres_db.host),
                       ("f-source-database", postgres_db.name), ("f-source-username", postgres_db.user)):
        type_in(at, key, value)
    ok(at.number_input(key="f-source-port").set_value(postgres_db.port).run())
    type_in(at, "f-source-password", wrong)
    click(at, "wiz-test")
    assert len(at.error) == 1 and "the connection test failed" in at.error[0].value  # one box, at the field
    assert_no_secret(page_text(at, skip_keys=("f-source-password",)))

    (ingest_env / "configs" / "sources" / "crm.yaml").write_text(
        "name: crm\nowner: market-fr\n"
        f"source: {{type: postgres, host: {postgres_db.host}, port: {postgres_db.port}, database: {postgres_db.name},"
        f" username: {postgres_db.user}, password: '${{secrets.crm.password}}'}}\n"
        "tables: [{name: contacts, mode: merge, primary_key: id}]\n")
    store_secret("${secrets.crm.password}", wrong)
    outputs = failing(("test-connection", "crm", "--json"), ("preview", "crm", "--json"), ("run", "crm", "--json"))
    assert "password" in "".join(outputs).lower()  # the failure is explained...
    assert_no_secret(*outputs, roots=(ingest_env,))  # ...without the value, in the output or any file


@pytest.fixture
def api() -> Iterator[ApiServer]:
    with running_api(items=30) as server:
        yield server


AUTH = {
    "bearer": ("bearer", {"type": "bearer", "token": "${secrets.api.token}"}),
    "basic": ("basic", {"type": "http_basic", "username": "reporter", "password": "${secrets.api.token}"}),
    "key": ("header_key", {"type": "api_key", "name": "X-API-Key", "location": "header",
                           "api_key": "${secrets.api.token}"}),
    "oauth": ("oauth", {"type": "oauth2_client_credentials", "access_token_url": "{url}/oauth/token",
                        "client_id": "portal-client", "client_secret": "${secrets.api.token}"}),
}


def test_typed_token_through_the_form_the_endpoint_test_a_save_and_runs(ingest_env: Path, api: ApiServer) -> None:
    """The right token typed into the portal's form, the endpoint tested, saved, previewed and run by the
    CLI; then a new token (the session's form password, which the API refuses) saved through the
    onboarding functions and run again: only the secrets file holds either value."""
    at = start_type(open_editor(), "rest_api")
    for key, value in (("f-name", "crm_api"), ("f-owner", "market-de"), ("f-source-base_url", f"{api.url}/")):
        type_in(at, key, value)
    ok(at.selectbox(key="f-source-auth-type").select("bearer").run())
    type_in(at, "f-source-auth-token", api.token)
    click(at, "wiz-next")
    type_in(at, "wiz-endpoint-name", "items")
    type_in(at, "wiz-endpoint-path", "bearer/single/items")
    click(at, "wiz-endpoint-add")
    click(at, "wiz-test-endpoint-0")
    assert "HTTP 200" in page_text(at)
    assert_no_secret(page_text(at))
    for _ in range(2):
        click(at, "wiz-next")
    click(at, "wiz-save")
    assert (ingest_env / "configs" / "sources" / "crm_api.yaml").exists(), page_text(at)
    outputs = []
    for args in (("preview", "crm_api", "--json"), ("run", "crm_api", "--json")):
        done = ingest(*args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        outputs += [done.stdout, done.stderr]

    draft, issues = onboarding.load_draft("crm_api")
    assert not [i for i in issues if i.severity == "error"]
    draft.secrets["source.auth.token"] = fake_secret("form_password")
    onboarding.save_draft(draft, actor="ana")
    done = ingest("run", "crm_api", "--json")
    assert done.returncode == 1 and "401" in done.stdout + done.stderr
    assert_no_secret(*outputs, done.stdout, done.stderr, roots=(ingest_env,))


@pytest.mark.parametrize("style", sorted(AUTH))
def test_failed_api_auth_through_the_cli(ingest_env: Path, api: ApiServer, style: str) -> None:
    prefix, auth = AUTH[style]
    auth = {k: v.replace("{url}", api.url) if isinstance(v, str) else v for k, v in auth.items()}
    source = {"type": "rest_api", "base_url": f"{api.url}/", "auth": auth}
    (ingest_env / "configs" / "sources" / "api.yaml").write_text(
        f"name: api\nowner: market-de\nsource: {json.dumps(source)}\nretries: {{attempts: 1}}\n"
        f"tables: [{{name: items, path: {prefix}/single/items, data_selector: data}}]\n")
    store_secret("${secrets.api.token}", fake_secret(WRONG))
    outputs = failing(("test-connection", "api", "--json"), ("run", "api", "--json"))
    assert "401" in "".join(outputs)
    assert len(api.log_for(f"/{prefix}/")) >= 1 or style == "oauth"
    assert_no_secret(*outputs, roots=(ingest_env,))


def test_wrong_object_store_key_through_the_cli(ingest_env: Path, s3_server) -> None:
    bucket = s3_server.create_bucket("landing")
    s3_server.upload(bucket, "in/stores.csv", "store_id,city\n1,Berlin\n")
    source = {"type": "filesystem", "bucket_url": f"s3://{bucket}/in",
              "credentials": s3_server.credentials("s3", fake_secret(WRONG))}
    (ingest_env / "configs" / "sources" / "landing.yaml").write_text(
        f"name: landing\nowner: data-ops\nsource: {json.dumps(source)}\nretries: {{attempts: 1}}\n"
        "tables: [{name: stores, glob: stores.csv, format: csv}]\n")
    outputs = failing(("test-connection", "landing", "--json"), ("run", "landing", "--json"))
    assert "refused the credentials" in "".join(outputs)
    assert_no_secret(*outputs, roots=(ingest_env,))


def test_a_password_pasted_into_a_connection_url_is_refused_without_echo(ingest_env: Path) -> None:
    wrong = fake_secret(WRONG)
    text = ("name: crm\nowner: market-fr\n"
            f"source: {{type: postgres, url: 'postgresql://ana:{wrong}@db.local:5432/crm'}}\n"
            "tables: [{name: contacts}]\n")
    _config, issues = validate_source_data(parse_yaml(text)[0])
    assert [i.path for i in issues if i.severity == "error"] == ["source.url"]
    typed = ingest_env / "configs" / "sources" / "crm.yaml"  # what the user wrote: the leak is theirs, not ours
    typed.write_text(text)
    try:
        done = ingest("validate", str(typed))
    finally:
        typed.unlink()
    assert done.returncode == 1 and ":source.url:" in done.stdout
    assert_no_secret(*(i.message for i in issues), done.stdout, done.stderr)
