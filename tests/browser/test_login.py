"""Sign-in in a real browser against a real OpenID Connect provider on loopback.

``tests/node/oidc_server.mjs`` (the npm package ``oidc-provider``) runs on a free port; the portal
runs under ``streamlit run`` with a temporary secrets file whose ``[auth]`` section points at it
(client secret and cookie secret generated per run). Chromium opens the portal, sees only the
sign-in screen, signs in through the provider's login form, sees the portal with the user's
name and teams (from the ``groups`` claim, mapped by ``teams.yaml``), and signs out again.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import START_TIMEOUT, PortalApp, _healthy, _stop
from tests.conftest import REPO, skip_or_fail
from tests.security.scanner import fake_secret
from tests.services import free_port

NODE_DIR = REPO / "tests" / "node"
USER = "ana@example.com"
TEAMS = """\
version: 1
admins: [lead@example.com]
sign_in:
  teams_claim: groups
teams:
  market-de: {members: []}
"""


def _start_provider(redirect_uri: str, client_secret: str, log: Path) -> tuple[subprocess.Popen, str]:
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "oidc-provider").is_dir():
        skip_or_fail("node or the npm package oidc-provider is missing (npm ci --prefix tests/node)")
    config = {"port": 0, "client_id": "ingest-portal", "client_secret": client_secret, "redirect_uri": redirect_uri,
              "users": {USER: {"name": "Ana Lopez", "groups": ["market-de"]}}}
    with open(log, "wb") as errors:  # the child keeps its own copy of the handle
        process = subprocess.Popen([node, str(NODE_DIR / "oidc_server.mjs"), json.dumps(config)], cwd=NODE_DIR,
                                   stdout=subprocess.PIPE, stderr=errors, text=True, start_new_session=True)
    found: list[str] = []
    reader = threading.Thread(target=lambda: found.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(START_TIMEOUT)
    if not found or not found[0].startswith("ready "):
        _stop(process)
        raise AssertionError(f"the OIDC provider did not start:\n{log.read_text(errors='replace')[-3000:]}")
    return process, found[0].split()[1]


@pytest.fixture
def signed_portal(ingest_env: Path, tmp_path: Path) -> Iterator[PortalApp]:
    """The portal with sign-in configured against a local OIDC provider."""
    (ingest_env / "configs" / "teams.yaml").write_text(TEAMS, encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    client_secret = fake_secret("oidc_client_secret")  # scanned for at the end of the session
    provider, issuer = _start_provider(f"{url}/oauth2callback", client_secret, tmp_path / "oidc.log")
    secrets_file = tmp_path / "secrets.toml"
    secrets_file.write_text(
        "[auth]\n"
        f'redirect_uri = "{url}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_urlsafe(32)}"\n'
        'client_id = "ingest-portal"\n'
        f'client_secret = "{client_secret}"\n'
        f'server_metadata_url = "{issuer}/.well-known/openid-configuration"\n'
        'client_kwargs = { prompt = "login" }\n',  # the provider knows login / consent / none, not select_account
        encoding="utf-8")
    log = tmp_path / "streamlit.log"
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
               "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none", "--secrets.files", str(secrets_file)]
    with open(log, "wb") as out:
        app = subprocess.Popen(command, cwd=REPO, env=dict(os.environ), stdout=out, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _healthy(url):
            if app.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"streamlit did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)
        yield PortalApp(url, ingest_env, log)
    finally:
        _stop(app)
        _stop(provider)


def test_sign_in_through_the_provider_then_sign_out(signed_portal: PortalApp, browser_page: object) -> None:
    from playwright.sync_api import expect

    page = browser_page
    page.goto(f"{signed_portal.url}/sources")  # a deep link: only the sign-in screen answers
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_text("Acting as")).to_have_count(0)
    page.get_by_role("button", name="Sign in").click()

    # the provider's own login form, then its consent screen
    page.locator("input[name=login]").fill(USER)
    page.locator("input[name=password]").fill(fake_secret("oidc_user_password"))
    page.locator("button[type=submit]").click()
    page.get_by_role("button", name="Continue").click()

    expect(page.get_by_role("heading", name="Ingestion portal")).to_be_visible()
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("Ana Lopez")).to_be_visible()
    expect(sidebar.get_by_text(f"({USER})")).to_be_visible()
    expect(sidebar.get_by_text("market-de")).to_be_visible()
    expect(page.get_by_text("Local single-user mode")).to_have_count(0)

    # Streamlit clears its cookie and sends the browser to the provider's end_session endpoint
    sidebar.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Yes, sign me out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(f"{signed_portal.url}/config_history")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_text("Ana Lopez")).to_have_count(0)
