"""The "test endpoint" panel (probe_endpoint) and test-connection of REST sources against a real
HTTP API on 127.0.0.1: what dlt detects, secrets masked, and one message per kind of failure
(401 / 403, 404, timeout, DNS, TLS, refused)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingestion_core.config.secrets import store_secret
from ingestion_core.config.store import ConfigStore
from ingestion_core.engine.sources import test_connection as connection_test
from ingestion_core.engine.sources.rest_preview import probe_endpoint
from tests.http_api import ApiServer, running_api
from tests.services import free_port


@pytest.fixture
def http_api() -> Iterator[ApiServer]:
    with running_api() as api:
        yield api


def source(base_url: str, tables: str = "  - {name: items, path: json_link/items}\n", **settings: Any) -> Any:
    fields = {"type": "rest_api", "base_url": base_url, "timeout_seconds": 2, "retry_attempts": 0, **settings}
    (Path(ConfigStore().root) / "sources" / "api.yaml").write_text(
        f"name: api\nowner: market-de\nsource: {json.dumps(fields)}\ntables:\n{tables}")
    return ConfigStore().load_source("api").config


def test_probe_shows_what_dlt_detects(http_api: ApiServer) -> None:
    probe = probe_endpoint(source(f"{http_api.url}/"))
    assert (probe.status, probe.is_json, probe.records_on_page) == (200, True, 100)
    assert (probe.data_selector, probe.data_selector_detected) == ("results", True)
    assert (probe.paginator["type"], probe.paginator_detected) == ("json_link", True)
    assert probe.has_next_page is True
    assert probe.next_request == f"{http_api.url}/json_link/items?page=2"
    assert probe.body_excerpt.startswith('{"results":[{"id":1,"name":"item 1"')
    assert probe.sample[0]["id"] == 1 and len(probe.sample) == 3
    assert len(http_api.requests) == 1  # one request, the next page is only described


def test_probe_of_a_configured_paginator_and_a_child(http_api: ApiServer) -> None:
    tables = ("  - {name: users, path: single/users, paginator: {type: single_page}}\n"
              "  - {name: posts, path: 'single/users/{id}/posts', parent: users, data_selector: data,\n"
              "     paginator: {type: single_page}}\n"
              "  - {name: items, path: offset/items, paginator: {type: offset, limit: 50, total_path: total},\n"
              "     mode: incremental, cursor: updated_at, cursor_param: since,\n"
              "     initial_value: '2024-01-01T01:00:00Z'}\n")
    config = source(f"{http_api.url}/", tables)
    posts = probe_endpoint(config, "posts")
    assert posts.url == f"{http_api.url}/single/users/1/posts" and posts.records_on_page == 3
    items = probe_endpoint(config, "items")
    assert items.url == f"{http_api.url}/offset/items?since=2024-01-01T01%3A00%3A00Z&offset=0&limit=50"
    assert (items.paginator["type"], items.paginator_detected, items.data_selector) == ("offset", False, "data")
    assert items.records_on_page == 50 and items.sample[0]["id"] == 61  # the API filtered on since
    assert items.next_request.endswith("offset=50&limit=50")


def test_probe_masks_credentials_in_headers_url_and_body(http_api: ApiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEY", http_api.api_key)
    config = source(f"{http_api.url}/", "  - {name: items, path: query_key/offset/items}\n",
                    auth={"type": "api_key", "name": "api_key", "location": "query", "api_key": "${env:API_KEY}"},
                    headers={"X-Trace": "probe"})
    probe = probe_endpoint(config)
    assert probe.status == 200
    assert "api_key=***" in probe.url
    assert probe.request_headers["X-Trace"] == "probe"
    assert http_api.api_key not in json.dumps(probe.as_dict())


def test_connection_ok_reports_the_first_page(http_api: ApiServer) -> None:
    report = connection_test(source(f"{http_api.url}/"))
    assert (report.ok, report.reason) == (True, "HTTP 200, 100 record(s) on the first page")
    assert report.details["paginator"] == "json_link" and report.details["data_selector"] == "results"


def test_connection_401_names_the_token_reference(http_api: ApiServer) -> None:
    store_secret("${secrets.api.token}", "tok-expired-0123456789")
    report = connection_test(source(f"{http_api.url}/", "  - {name: items, path: bearer/offset/items}\n",
                                    auth={"type": "bearer", "token": "${secrets.api.token}"}))
    assert not report.ok
    assert report.reason == f"the API refused the credentials (HTTP 401 from {http_api.url}/bearer/offset/items)"
    assert report.mitigation.startswith("check the token reference: auth.token (${secrets.api.token})")
    assert "tok-expired" not in json.dumps(report.as_dict())


def test_connection_404_names_base_url_and_path(http_api: ApiServer) -> None:
    report = connection_test(source(f"{http_api.url}/v2/", "  - {name: items, path: offset/itemz}\n"))
    assert (report.ok, report.reason) == (False, f"HTTP 404: {http_api.url}/v2/offset/itemz does not exist")
    assert report.mitigation.startswith("check base_url and the path of table 'items'")


def test_connection_timeout(http_api: ApiServer) -> None:
    http_api.slow_from_page, http_api.slow_seconds = 1, 3.0
    report = connection_test(source(f"{http_api.url}/", "  - {name: items, path: slow/offset/items}\n",
                                    timeout_seconds=0.3))
    assert not report.ok
    assert report.reason.startswith("the API did not answer within 0.3 s (ReadTimeout")
    assert "raise timeout_seconds" in report.mitigation
    assert len(http_api.requests) == 1  # test-connection does not retry


@pytest.mark.parametrize(("base_url", "reason", "mitigation"), [
    ("http://no-such-host.invalid/", "the host of http://no-such-host.invalid/ cannot be resolved",
     "check base_url for typos"),
    ("http://127.0.0.1:{closed}/", "cannot connect to http://127.0.0.1:{closed}/", "check base_url (host and port)"),
    ("https://127.0.0.1:{http}/", "the TLS (https) handshake with https://127.0.0.1:{http}/ failed",
     "the server's certificate is not trusted here"),
], ids=["dns", "refused", "tls"])
def test_connection_network_failures_have_their_own_message(http_api: ApiServer, base_url: str, reason: str,
                                                            mitigation: str) -> None:
    ports = {"closed": free_port(), "http": http_api.url.rsplit(":", 1)[1]}
    report = connection_test(source(base_url.format(**ports)))
    assert not report.ok
    assert report.reason.startswith(reason.format(**ports)), report.reason
    assert report.mitigation.startswith(mitigation)


def test_connection_names_the_oauth_client_secret_when_the_token_endpoint_refuses(http_api: ApiServer) -> None:
    store_secret("${secrets.api.client_secret}", "cs-revoked-0123456789")
    report = connection_test(source(f"{http_api.url}/", "  - {name: items, path: oauth/offset/items}\n",
                                    auth={"type": "oauth2_client_credentials",
                                          "access_token_url": f"{http_api.url}/oauth/token",
                                          "client_id": "portal-client",
                                          "client_secret": "${secrets.api.client_secret}"}))
    assert not report.ok
    assert report.reason.startswith("the token endpoint refused the client credentials (HTTPError: 401")
    assert "auth.client_id and the secret behind auth.client_secret" in report.mitigation
    assert [r.path for r in http_api.requests] == ["/oauth/token"]
    assert "cs-revoked" not in json.dumps(report.as_dict())


# --- a connection without tables (the form's step 2 of a new source) -----------------------

def connection_only(base_url: str, **settings: Any) -> Any:
    from ingestion_core.config.models.sources import SOURCE_MODELS
    from ingestion_core.onboarding import ConnectionOnly

    fields = {"type": "rest_api", "base_url": base_url, "timeout_seconds": 2, "retry_attempts": 0, **settings}
    return ConnectionOnly(SOURCE_MODELS["rest_api"].model_validate(fields), "api")


def test_connection_without_tables_requests_base_url_once(http_api: ApiServer) -> None:
    report = connection_test(connection_only(f"{http_api.url}/"))  # the test API answers 404 at /
    assert (report.ok, report.reason) == (True, f"{http_api.url}/ answered HTTP 404; test each endpoint in the "
                                                "next step")
    assert [r.path for r in http_api.requests] == ["/"]


def test_connection_without_tables_still_checks_the_credentials(http_api: ApiServer) -> None:
    store_secret("${secrets.api.token}", "tok-expired-0123456789")
    report = connection_test(connection_only(f"{http_api.url}/bearer/", auth={"type": "bearer",
                                                                              "token": "${secrets.api.token}"}))
    assert (report.ok, report.reason) == (False, f"the API refused the credentials (HTTP 401 from {http_api.url}"
                                                 "/bearer/)")
    assert report.mitigation.startswith("check the token reference: auth.token (${secrets.api.token})")


def test_the_endpoint_probe_carries_the_connection_test_judgement(http_api: ApiServer) -> None:
    config = source(f"{http_api.url}/v2/", "  - {name: items, path: offset/itemz}\n")
    probe, report = probe_endpoint(config), connection_test(config)
    assert (probe.ok, probe.verdict, probe.fix) == (report.ok, report.reason, report.mitigation)
    assert probe.verdict == f"HTTP 404: {http_api.url}/v2/offset/itemz does not exist"
