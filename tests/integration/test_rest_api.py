"""REST sources end to end against a real HTTP API on 127.0.0.1 (tests/http_api.py): every
paginator, every auth style, parent / child resources, incremental, the bad cases (429 with
Retry-After, intermittent 500, a slow endpoint, malformed JSON, an empty answer, a page that
repeats forever) and previews. Real dlt, real DuckDB; each test asserts the exact rows landed
(no page missing, none twice) or the exact recorded error.

Back-off and timeouts are shortened through the config; time is only ever asserted as a lower
bound on the server's own request timestamps."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ingestion_core.config.secrets import store_secret
from ingestion_core.config.store import ConfigStore
from ingestion_core.engine.sources import rest_client
from ingestion_core.observe.records import record_path
from ingestion_core.pipeline.runner import preview_source, run_source
from tests.http_api import ApiServer, make_item, running_api

ALL_IDS = list(range(1, 251))
FAST = {"timeout_seconds": 5, "retry_attempts": 2, "retry_backoff_seconds": 0.05}
OFFSET = {"type": "offset", "limit": 100, "total_path": "total"}


@pytest.fixture
def http_api() -> Iterator[ApiServer]:
    """A fresh API with 250 items (3 pages of 100) per test."""
    with running_api() as api:
        yield api


def write_source(api: ApiServer, tables: str, name: str = "api", workers: int = 4, retries: str = "{attempts: 1}",
                 **source: Any) -> Any:
    """A rest_api source on ``api`` with ``tables`` (YAML lines) and source settings (``FAST`` unless given)."""
    settings = {"type": "rest_api", "base_url": f"{api.url}/", **FAST, **source}
    (Path(ConfigStore().root) / "sources" / f"{name}.yaml").write_text(
        f"name: {name}\nowner: market-de\nsource: {json.dumps(settings)}\n"
        f"retries: {retries}\nworkers: {{tables_in_parallel: {workers}}}\n"
        f"tables:\n{tables}"
    )
    return ConfigStore().load_source(name).config


def landed(sql: str) -> list[tuple]:
    path = Path(ConfigStore().root).parent / ".ingest" / "local_duckdb.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def ids(table: str, dataset: str = "api") -> list[int]:
    return [r[0] for r in landed(f"SELECT id FROM {dataset}.{table} ORDER BY id")]


def table_exists(table: str, dataset: str = "api") -> bool:
    if not (Path(ConfigStore().root).parent / ".ingest" / "local_duckdb.duckdb").exists():
        return False
    return bool(landed(f"SELECT 1 FROM information_schema.tables WHERE table_schema = '{dataset}' "
                       f"AND table_name = '{table}'"))


# --- pagination ----------------------------------------------------------------------------

PAGINATED = {
    "offset_total": ("offset/items", "{type: offset, limit: 100, total_path: total}", ALL_IDS),
    "offset_has_more": ("offset_more/items", "{type: offset, limit: 100, has_more_path: has_more, "
                        "stop_after_empty_page: false}", ALL_IDS),
    "offset_empty_page": ("offset_bare/items", "{type: offset, limit: 100}", ALL_IDS),
    "offset_maximum": ("offset/items", "{type: offset, limit: 100, total_path: total, maximum_offset: 200}",
                       ALL_IDS[:200]),
    "page_total": ("page/items", "{type: page_number, base_page: 1, total_path: total_pages}", ALL_IDS),
    "page_empty_page": ("page_bare/items", "{type: page_number, base_page: 1}", ALL_IDS),
    "page_maximum": ("page/items", "{type: page_number, total_path: total_pages, maximum_page: 3}", ALL_IDS[:200]),
    "cursor_body": ("cursor/items", "{type: cursor, cursor_path: cursors.next, cursor_param: cursor}", ALL_IDS),
    "cursor_header": ("header_cursor/items", "{type: cursor, cursor_location: header, cursor_path: X-Next-Cursor}",
                      ALL_IDS),
    "json_link": ("json_link/items", "{type: json_link, next_url_path: next}", ALL_IDS),
    "header_link": ("header_link/items", "{type: header_link}", ALL_IDS),
    "single": ("single/items", "{type: single_page}", ALL_IDS),
}


def test_every_paginator_loads_every_page_exactly_once(http_api: ApiServer) -> None:
    tables = "".join(f"  - {{name: {name}, path: {path}, paginator: {paginator}}}\n"
                     for name, (path, paginator, _) in PAGINATED.items())
    # no paginator and no data_selector: both detected from the first response, as dlt does
    tables += "  - {name: detected, path: json_link/items}\n"
    tables += ("  - {name: posted, path: single/items, method: POST, json: {query: all},\n"
               "     paginator: {type: single_page}}\n")
    record = run_source(write_source(http_api, tables), actor="ana")
    assert {t.name: t.status for t in record.tables} == dict.fromkeys([*PAGINATED, "detected", "posted"], "success")
    for name, (_, _, expected) in PAGINATED.items():
        assert ids(name) == expected, name
    assert ids("detected") == ids("posted") == ALL_IDS
    posted = [r for r in http_api.requests if r.method == "POST"]
    assert [json.loads(r.body) for r in posted] == [{"query": "all"}]
    assert landed("SELECT count(*) FROM api.offset_total__tags") == [(500,)]  # nested lists: a child table


def test_a_page_that_repeats_forever_stops_and_loads_nothing(http_api: ApiServer) -> None:
    styles = {
        "offset": "{type: offset, limit: 100, total_path: total}", "offset_bare": "{type: offset, limit: 100}",
        "page": "{type: page_number, total_path: total_pages}",
        "cursor": "{type: cursor, cursor_path: cursors.next}",
        "header_cursor": "{type: cursor, cursor_location: header, cursor_path: X-Next-Cursor}",
        "json_link": "{type: json_link, next_url_path: next}", "header_link": "{type: header_link}",
    }
    tables = "".join(f"  - {{name: loop_{s}, path: loop/{s}/items, paginator: {p}}}\n" for s, p in styles.items())
    record = run_source(write_source(http_api, tables), actor="ana")
    assert record.status == "failed"
    for style in styles:
        result = next(t for t in record.tables if t.name == f"loop_{style}")
        assert result.status == "failed"
        assert result.error.error_class == "PagingStoppedError"
        assert result.error.message.startswith(
            f"PagingStoppedError: 'loop_{style}' stopped at page 2: the records of page 2 are the records of page 1. "
            "Nothing of the table was loaded; the API seems to ignore or loop the paginator's parameter: check "
            ), result.error.message
        assert f"Page 2 was requested as {http_api.url}/loop/{style}/items" in result.error.message
        assert "nothing of the table was loaded" in result.error.hint
        assert not table_exists(f"loop_{style}"), style
        assert len(http_api.log_for(f"/loop/{style}/")) == 2, style  # page 1 and its repeat, nothing more


def test_a_next_link_or_cursor_seen_before_stops(http_api: ApiServer) -> None:
    tables = ("  - {name: relink_json, path: relink/json_link/items, paginator: {type: json_link}}\n"
              "  - {name: relink_header, path: relink/header_link/items, paginator: {type: header_link}}\n"
              "  - {name: relink_cursor, path: relink/cursor/items, paginator: {type: cursor}}\n")
    record = run_source(write_source(http_api, tables), actor="ana")
    for result in record.tables:
        assert result.status == "failed"
        noun = "cursor" if "cursor" in result.name else "link"
        assert f"stopped at page 2: the next {noun} points at a page already read" in result.error.message
        assert not table_exists(result.name)  # not even pages 1 and 2
    assert len(http_api.log_for("/relink/")) == 6


def test_page_cap_stops_a_runaway_api(http_api: ApiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rest_client, "DEFAULT_MAX_PAGES", 2)  # the cap of a detected paginator
    tables = ("  - {name: capped, path: json_link/items, paginator: {type: json_link, maximum_pages: 2}}\n"
              "  - {name: default_cap, path: json_link/items}\n")
    record = run_source(write_source(http_api, tables), actor="ana")
    capped, default_cap = record.tables
    assert capped.status == "success"  # the user asked for 2 pages: a warning in the log, not an error
    assert "capped stopped at maximum_pages (2) as configured" in Path(record.error_log_path).read_text()
    assert default_cap.status == "failed"
    assert ("stopped at page 2: the default page cap (2 pages) was reached while the API still offered more. "
            "Nothing of the table was loaded; if the API really has more pages, set paginator.maximum_pages higher"
            ) in default_cap.error.message
    assert ids("capped") == ALL_IDS[:200]
    assert not table_exists("default_cap")


# --- auth and secrets ----------------------------------------------------------------------

AUTH = {
    "bearer": ("bearer", {"type": "bearer", "token": "${secrets.api.token}"}),
    "http_basic": ("basic", {"type": "http_basic", "username": "reporter", "password": "${secrets.api.password}"}),
    "api_key_header": ("header_key", {"type": "api_key", "name": "X-API-Key", "location": "header",
                                      "api_key": "${secrets.api.key}"}),
    "api_key_query": ("query_key", {"type": "api_key", "name": "api_key", "location": "query",
                                    "api_key": "${env:API_KEY}"}),
    "oauth2": ("oauth", {"type": "oauth2_client_credentials", "access_token_url": "{url}/oauth/token",
                         "client_id": "portal-client", "client_secret": "${secrets.api.client_secret}",
                         "scopes": ["read", "write"]}),
}


def store_credentials(api: ApiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    store_secret("${secrets.api.token}", api.token)
    store_secret("${secrets.api.password}", api.password)
    store_secret("${secrets.api.key}", api.api_key)
    store_secret("${secrets.api.client_secret}", api.client_secret)
    monkeypatch.setenv("API_KEY", api.api_key)


def assert_no_secret_in(api: ApiServer, *texts: str) -> None:
    for secret in api.secrets():
        for text in texts:
            assert secret not in text


@pytest.mark.parametrize("style", AUTH)
def test_every_auth_style_loads_and_no_secret_leaks(http_api: ApiServer, style: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from ingestion_core.engine.sources.rest_preview import probe_endpoint

    store_credentials(http_api, monkeypatch)
    prefix, auth = AUTH[style]
    auth = {k: v.replace("{url}", http_api.url) if isinstance(v, str) else v for k, v in auth.items()}
    config = write_source(http_api, f"  - {{name: items, path: {prefix}/offset/items}}\n",
                          auth=auth, paginator=OFFSET)
    record = run_source(config, actor="ana")
    assert record.status == "success", record.error
    assert ids("items") == ALL_IDS
    preview = preview_source(config, actor="ana", limit=10)
    probe = probe_endpoint(config)
    assert probe.status == 200 and probe.records_on_page == 100
    record_text = Path(record_path(record)).read_text()
    logs = [Path(p).read_text() for r in (record, preview.record) for p in (r.log_path, r.error_log_path)]
    assert_no_secret_in(http_api, record_text, *logs, json.dumps(preview.as_json(), default=str),
                        json.dumps(probe.as_dict(), default=str))
    if style == "oauth2":
        token_request = http_api.log_for("/oauth/token")
        assert len(token_request) == 3  # a token per session: the run, the preview and the probe
        assert probe.request_headers["Authorization"] == "***"


def test_a_wrong_token_fails_at_once_with_the_reason(http_api: ApiServer) -> None:
    store_secret("${secrets.api.token}", "tok-wrong-" + "x" * 20)
    config = write_source(http_api, "  - {name: items, path: bearer/offset/items}\n",
                          auth={"type": "bearer", "token": "${secrets.api.token}"})
    record = run_source(config, actor="ana")
    error = record.tables[0].error
    assert (record.status, error.error_class) == ("failed", "HTTPError")
    assert error.message.startswith("HTTPError: 401 Client Error: Unauthorized for url: ")
    assert "check the token, key or password reference in source.auth" in error.hint
    assert len(http_api.log_for("/bearer/")) == 1  # a 401 is not retried
    assert not table_exists("items")
    assert "tok-wrong" not in Path(record_path(record)).read_text()


# --- retries, timeouts and broken answers ---------------------------------------------------

def test_429_and_500_are_retried_and_every_row_lands_once(http_api: ApiServer) -> None:
    tables = ("  - {name: flaky, path: flaky/offset/items}\n"
              "  - {name: intermittent, path: fail500/page/items, paginator: {type: page_number, "
              "total_path: total_pages}}\n")
    record = run_source(write_source(http_api, tables, paginator=OFFSET), actor="ana")
    assert record.status == "success", record.error
    assert ids("flaky") == ids("intermittent") == ALL_IDS
    page2 = [r for r in http_api.log_for("/flaky/") if r.params.get("offset") == "100"]
    assert len(page2) == 2  # the 429, then the retry
    assert page2[1].at - page2[0].at >= http_api.retry_after_seconds  # Retry-After honoured (a lower bound)
    assert len(http_api.log_for("/flaky/")) == 5 and len(http_api.log_for("/fail500/")) == 5  # 3 pages + 2 retries


def test_broken_answers_are_recorded_with_the_reason(http_api: ApiServer) -> None:
    http_api.slow_seconds = 3.0
    tables = ("  - {name: slow, path: slow/offset/items}\n"
              "  - {name: malformed, path: malformed/offset/items}\n"
              "  - {name: empty, path: empty/offset/items}\n")
    config = write_source(http_api, tables, paginator=OFFSET, timeout_seconds=0.3, retry_attempts=1)
    record = run_source(config, actor="ana")
    by_name = {t.name: t for t in record.tables}
    assert record.status == "partial"
    slow = by_name["slow"].error
    assert slow.error_class == "ReadTimeout" and "Read timed out. (read timeout=0.3)" in slow.message
    assert "did not answer in time" in slow.hint and slow.transient
    assert len([r for r in http_api.log_for("/slow/") if r.params.get("offset") == "100"]) == 2  # one retry
    malformed = by_name["malformed"].error
    assert malformed.error_class == "JSONDecodeError" and "not valid JSON" in malformed.hint
    assert not malformed.transient
    assert not table_exists("slow") and not table_exists("malformed")  # a failed extract loads nothing
    assert (by_name["empty"].status, by_name["empty"].rows) == ("success", 0)


DELIVERY_S = 0.1  # how late a request may reach the test server after the client sent it


def test_rate_limit_spaces_the_requests(http_api: ApiServer) -> None:
    config = write_source(http_api, "  - {name: items, path: offset/items}\n", rate_limit_per_second=20,
                          paginator={**OFFSET, "limit": 25})
    assert run_source(config, actor="ana").status == "success"
    assert ids("items") == ALL_IDS
    times = [r.at for r in http_api.log_for("/offset/")]
    assert len(times) == 10
    # the limiter spaces the ten request starts by nine intervals (0.45 s) on the client; the server logs
    # arrivals, and the first one arrives late by its connection set-up and the server's new thread
    # (15-40 ms seen on a loaded machine), the later ones ride that keep-alive connection: allow the
    # first request DELIVERY_S. Without the limiter the ten pages arrive within ~20-100 ms.
    assert times[-1] - times[0] >= 9 / 20 - DELIVERY_S


# --- incremental, parent / child ------------------------------------------------------------

def test_incremental_second_run_loads_only_new_records(http_api: ApiServer) -> None:
    config = write_source(http_api, "  - {name: items, path: offset/items, mode: incremental, cursor: updated_at,\n"
                          "     cursor_param: since, initial_value: '2024-01-01T00:00:00Z', primary_key: id}\n",
                          paginator=OFFSET)
    first = run_source(config, actor="ana")
    assert first.status == "success" and ids("items") == ALL_IDS
    assert first.tables[0].cursor == {"column": "updated_at", "last_value": make_item(250)["updated_at"]}
    http_api.items.extend(make_item(i) for i in range(251, 261))
    http_api.clear_log()
    second = run_source(config, actor="ana")
    assert second.status == "success"
    assert ids("items") == list(range(1, 261))
    assert landed("SELECT count(*) FROM api.items WHERE id > 250") == [(10,)]
    sent = http_api.log_for("/offset/")
    assert sent[0].params["since"] == make_item(250)["updated_at"] and len(sent) == 1  # only the new page


def test_lookback_asks_again_for_recent_records_and_loads_each_once(http_api: ApiServer) -> None:
    config = write_source(http_api, "  - {name: items, path: offset/items, mode: incremental, cursor: updated_at,\n"
                          "     cursor_param: since, initial_value: '2024-01-01T00:00:00Z', primary_key: id,\n"
                          "     lookback: 10m}\n", paginator=OFFSET)
    assert run_source(config, actor="ana").status == "success" and ids("items") == ALL_IDS
    http_api.items.append({**make_item(300), "updated_at": make_item(246)["updated_at"]})  # arrived late
    http_api.clear_log()
    second = run_source(config, actor="ana")
    assert second.status == "success", second.tables[0].error
    assert http_api.log_for("/offset/")[0].params["since"] == make_item(240)["updated_at"]  # item 250 less 10 min
    assert landed("SELECT count(*) FROM api.items WHERE _dlt_load_id = (SELECT max(_dlt_load_id) FROM api.items)"
                  ) == [(11,)]  # items 241-250 read again, and the late one
    assert ids("items") == [*ALL_IDS, 300]  # each once


def test_child_resource_filled_from_parent_records(http_api: ApiServer) -> None:
    tables = ("  - {name: users, path: single/users}\n"
              "  - {name: posts, path: 'single/users/{id}/posts', parent: users, include_from_parent: [login],\n"
              "     response_actions: [{status_code: 404, action: ignore}]}\n")
    record = run_source(write_source(http_api, tables, paginator={"type": "single_page"}), actor="ana")
    assert record.status == "success", record.error
    assert ids("users") == [1, 2, 3, 4, 5]
    assert landed("SELECT id, user_id, _users_login FROM api.posts ORDER BY id") == [
        (100, 1, "user1"), (101, 1, "user1"), (102, 1, "user1"), (300, 3, "user3"), (301, 3, "user3"),
        (302, 3, "user3"), (303, 3, "user3"), (304, 3, "user3"), (500, 5, "user5")]
    assert len(http_api.log_for("/single/users/4/posts")) == 1  # the 404: ignored, not retried


def test_child_without_404_action_fails_with_the_fix(http_api: ApiServer) -> None:
    tables = ("  - {name: users, path: single/users}\n"
              "  - {name: posts, path: 'single/users/{id}/posts', parent: users}\n")
    record = run_source(write_source(http_api, tables, paginator={"type": "single_page"}), actor="ana")
    posts = next(t for t in record.tables if t.name == "posts")
    assert posts.error.message.startswith("HTTPError: 404 Client Error: Not Found for url: ")
    assert "response_actions: [{status_code: 404, action: ignore}]" in posts.error.hint


# --- previews ------------------------------------------------------------------------------

def test_preview_of_a_million_records_reads_only_the_pages_it_needs(ingest_env: Path) -> None:
    with running_api(1_000_000, virtual=True) as api:
        config = write_source(api, "  - {name: items, path: offset/items, mode: incremental, cursor: updated_at}\n",
                              paginator=OFFSET)
        result = preview_source(config, actor="ana", limit=150)
    assert result.record.status == "success"
    assert len(result.samples["items"]) == 100  # sample_rows
    assert [r.params["offset"] for r in api.requests] == ["0", "100"]  # two pages for 150 rows, no more
    with duckdb.connect(str(ingest_env / ".ingest" / "preview" / "preview_api.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*), min(id), max(id) FROM api.items").fetchall() == [(150, 1, 150)]
    assert not (ingest_env / ".ingest" / "pipelines").exists()  # no real state touched


def test_preview_of_a_child_stops_after_the_rows_it_needs(http_api: ApiServer) -> None:
    tables = ("  - {name: users, path: single/users}\n"
              "  - {name: posts, path: 'single/users/{id}/posts', parent: users}\n")
    result = preview_source(write_source(http_api, tables, paginator={"type": "single_page"}), actor="ana",
                            tables=["posts"], limit=2)
    assert result.record.status == "success", result.record.error
    assert [r["id"] for r in result.samples["posts"]] == [100, 101]
    assert [r.path for r in http_api.requests] == ["/single/users", "/single/users/1/posts"]


def test_github_like_template_runs_against_a_link_header_api(http_api: ApiServer, ingest_env: Path) -> None:
    import yaml

    from tests.conftest import REPO_CONFIGS

    data = yaml.safe_load((REPO_CONFIGS / "templates" / "rest_api_github.yaml").read_text())
    data["source"].update(base_url=f"{http_api.url}/", rate_limit_per_second=50)
    issues = data["tables"][0]
    issues["path"] = "bearer/header_link/items"  # a plain list body, pages through the Link header
    data["tables"] = [issues]
    data["name"] = "github_issues"
    (ingest_env / "configs" / "sources" / "github_issues.yaml").write_text(yaml.safe_dump(data))
    store_secret("${secrets.github_issues.token}", http_api.token)
    config = ConfigStore().load_source("github_issues").config
    assert run_source(config, actor="ana").status == "success"
    http_api.items.extend(make_item(i) for i in range(251, 256))
    second = run_source(config, actor="ana")
    assert second.status == "success"
    assert ids("issues", "github_issues") == list(range(1, 256))
    since = [r.params.get("since") for r in http_api.log_for("/bearer/header_link/")]
    assert since[-1] == make_item(250)["updated_at"]  # the second run asked only for what changed
