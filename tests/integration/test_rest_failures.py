"""REST runs that must fail, and how: an API that ignores the paging parameter (caught on the
records, not the raw body), a loop on a later page (nothing of the run lands; earlier data and
the incremental cursor stay), one retry budget per table for a hanging API, a missing secret's
error class, dlt's detected page paginator on an API whose first page is unnumbered, and a
malformed page named by URL and page number. Real HTTP server (tests/http_api.py), real dlt and
DuckDB; counts come from the server's own request log."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ingestion_core.config.secrets import store_secret
from ingestion_core.pipeline.runner import run_source
from tests.http_api import ApiServer, make_item, running_api
from tests.integration.test_rest_api import ALL_IDS, OFFSET, ids, landed, table_exists, write_source


@pytest.fixture
def http_api() -> Iterator[ApiServer]:
    with running_api() as api:
        yield api


def test_an_api_that_ignores_paging_but_echoes_metadata_stops_at_page_2_and_lands_nothing(
        http_api: ApiServer) -> None:
    """Every body differs (it echoes the page asked for), the records do not: page 2 is a loop,
    with or without a primary key, and an explicit maximum_pages does not turn it into a success."""
    tables = ("  - {name: by_offset, path: echo/offset/items, paginator: {type: offset, limit: 100, "
              "total_path: total}}\n"
              "  - {name: by_page, path: echo/page/items, primary_key: id, paginator: {type: page_number, "
              "total_path: total_pages}}\n"
              "  - {name: capped, path: echo/offset_bare/items, paginator: {type: offset, limit: 100, "
              "maximum_pages: 60}}\n")
    record = run_source(write_source(http_api, tables), actor="ana")
    assert record.status == "failed"
    for result in record.tables:
        assert (result.status, result.error.error_class) == ("failed", "PagingStoppedError"), result.name
        assert result.error.message.startswith(
            f"PagingStoppedError: '{result.name}' stopped at page 2: the records of page 2 are the records of "
            "page 1"), result.error.message
        assert "Nothing of the table was loaded" in result.error.message
        assert "nothing of the table was loaded" in result.error.hint
        assert not table_exists(result.name)
    for style in ("offset", "page", "offset_bare"):
        assert len(http_api.log_for(f"/echo/{style}/")) == 2, style  # page 1 and its repeat, nothing more


def test_a_loop_on_a_later_page_lands_nothing_and_keeps_earlier_data_and_state(http_api: ApiServer) -> None:
    config = write_source(
        http_api, "  - {name: items, path: echo/offset/items, mode: incremental, cursor: updated_at,\n"
        "     cursor_param: since, initial_value: '2024-01-01T00:00:00Z', primary_key: id}\n",
        paginator={"type": "offset", "limit": 100, "maximum_pages": 60})  # no cap hides a loop
    http_api.echo_from_page = 10**9  # a well-behaved API for the first run
    first = run_source(config, actor="ana")
    assert first.status == "success" and ids("items") == ALL_IDS
    http_api.items.extend(make_item(i) for i in range(251, 751))
    http_api.echo_from_page = 3  # page 3 repeats page 2: pages 1 and 2 were new records
    http_api.clear_log()
    second = run_source(config, actor="ana")
    error = second.tables[0].error
    assert (second.status, error.error_class) == ("failed", "PagingStoppedError")
    assert "'items' stopped at page 3: the records of page 3 are the records of page 2" in error.message
    assert len(http_api.log_for("/echo/")) == 3
    assert ids("items") == ALL_IDS  # nothing of the failed run, not even pages 1 and 2
    assert landed("SELECT count(*) FROM api._dlt_loads") == [(1,)]
    http_api.echo_from_page = 10**9
    http_api.clear_log()
    third = run_source(config, actor="ana")
    assert third.status == "success"
    assert http_api.log_for("/echo/")[0].params["since"] == make_item(250)["updated_at"]  # the cursor stayed
    assert ids("items") == list(range(1, 751))


def test_a_hanging_api_fails_after_one_retry_budget(http_api: ApiServer) -> None:
    """retry_attempts: 2 are the table's whole budget: 3 tries, not 3 tries x 3 table attempts."""
    http_api.slow_from_page, http_api.slow_seconds = 1, 60.0
    config = write_source(http_api, "  - {name: items, path: slow/offset/items}\n", paginator=OFFSET,
                          timeout_seconds=0.3, retry_attempts=2, retry_backoff_seconds=0,
                          retries="{attempts: 3, backoff_seconds: 0}")
    result = run_source(config, actor="ana").tables[0]
    assert (result.status, result.error.error_class) == ("failed", "ReadTimeout")
    assert len(http_api.log_for("/slow/")) == 3  # the server's own count of tries
    assert (result.attempts, result.request_retries) == (1, 2)


def test_a_retry_that_succeeds_is_counted_in_the_record(http_api: ApiServer) -> None:
    result = run_source(write_source(http_api, "  - {name: flaky, path: fail500/offset/items}\n",
                                     paginator=OFFSET), actor="ana").tables[0]
    assert (result.status, result.attempts, result.request_retries) == ("success", 1, 2)  # pages 1 and 3


def test_a_missing_secret_is_recorded_by_its_class(http_api: ApiServer) -> None:
    config = write_source(http_api, "  - {name: items, path: bearer/offset/items}\n",
                          auth={"type": "bearer", "token": "${secrets.nowhere.token}"})
    error = run_source(config, actor="ana").tables[0].error
    assert error.error_class == "SecretNotFoundError"
    assert error.message.startswith("secret ${secrets.nowhere.token} is not set. Looked in")


def test_detected_page_paginator_on_an_unnumbered_first_page_names_the_fix(http_api: ApiServer) -> None:
    """page/items answers page 1 without ?page=; dlt detects a page_number paginator counting from 0."""
    record = run_source(write_source(http_api, "  - {name: items, path: page/items}\n"), actor="ana")
    message = record.tables[0].error.message
    assert "stopped at page 2" in message
    assert "no paginator is set, so dlt detected one from the first response: page_number" in message
    assert "set paginator: {type: page_number, base_page: 1, total_path: total_pages}" in message
    assert "offset_param" not in message
    assert not table_exists("items")


def test_a_malformed_page_is_named_by_url_and_page_number(http_api: ApiServer) -> None:
    store_secret("${secrets.api.key}", http_api.api_key)
    config = write_source(http_api, "  - {name: items, path: query_key/malformed/offset/items}\n",
                          paginator=OFFSET, auth={"type": "api_key", "name": "api_key", "location": "query",
                                                  "api_key": "${secrets.api.key}"})
    error = run_source(config, actor="ana").tables[0].error
    assert error.error_class == "JSONDecodeError"
    assert error.message.startswith("JSONDecodeError: page 2 of 'items' is not valid JSON (Unterminated string")
    assert f"; it was requested as {http_api.url}/query_key/malformed/offset/items?offset=100&limit=100&" \
        in error.message
    assert http_api.api_key not in error.message
    assert "not valid JSON" in error.hint
