"""REST config: the model rules (table-driven: config, YAML path, message), and the translation
of the models into what dlt's rest_api source and REST client take."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from ingestion_core.config.models import parse_source_file
from ingestion_core.config.store import validate_source_data
from ingestion_core.engine.sources.rest import RestConfigError, fill_from_parent, rest_api_config
from ingestion_core.engine.sources.rest_client import PagingLog, RateLimiter, build_paginator, guard, http_session


def source_file(tables: list[dict[str, Any]], **source: Any) -> dict[str, Any]:
    return {"name": "api", "owner": "market-de", "tables": tables,
            "source": {"type": "rest_api", "base_url": "https://api.example.com/v1/", **source}}


INVALID = [
    ("placeholder without parent", source_file([{"name": "posts", "path": "users/{id}/posts"}]),
     "tables[0].parent", ["'posts' uses {id} but has no parent", "parent: users", "{{ and }}"]),
    ("placeholder in params without parent",
     source_file([{"name": "posts", "path": "posts", "params": {"user": "{user_id}"}}]),
     "tables[0].parent", ["uses {user_id} but has no parent"]),
    ("include_from_parent without parent", source_file([{"name": "t", "path": "t", "include_from_parent": ["id"]}]),
     "tables[0].include_from_parent", ["include_from_parent needs a parent"]),
    ("own parent", source_file([{"name": "t", "path": "t/{id}", "parent": "t"}]), "tables[0].parent",
     ["cannot be its own parent"]),
    ("cursor_param without cursor", source_file([{"name": "t", "path": "t", "cursor_param": "since"}]),
     "tables[0].cursor", ["cursor_param 'since' needs cursor", "cursor: updated_at"]),
    ("header cursor with has_more_path",
     source_file([{"name": "t", "path": "t"}],
                 paginator={"type": "cursor", "cursor_location": "header", "has_more_path": "more"}),
     "source.paginator.cursor_location", ["apply to a cursor in the body"]),
    ("retry wait too long", source_file([{"name": "t", "path": "t"}], retry_max_wait_seconds=7200),
     "source.retry_max_wait_seconds", ["3600"]),
    ("response action without condition",
     source_file([{"name": "t", "path": "t", "response_actions": [{"action": "ignore"}]}]),
     "tables[0].response_actions[0]", ["needs status_code, content or both"]),
]


@pytest.mark.parametrize(("config", "path", "fragments"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_rest_config_names_path_and_fix(config: dict[str, Any], path: str, fragments: list[str]) -> None:
    before = copy.deepcopy(config)
    model, issues = validate_source_data(config)
    assert model is None
    message = " | ".join(i.message for i in issues if i.path == path)
    assert message, f"no error at {path!r}: {[i.line('f.yaml') for i in issues]}"
    for fragment in fragments:
        assert fragment in message
    assert config == before  # the input is not mutated


def test_literal_braces_and_dlt_contexts_need_no_parent() -> None:
    config = parse_source_file(source_file([
        {"name": "t", "path": "t/{{literal}}", "params": {"since": "{incremental.start_value}"}},
        {"name": "c", "path": "t/{resources.t.id}/c", "parent": "t"},
    ]))
    assert [t.name for t in config.tables] == ["t", "c"]


@pytest.mark.parametrize(("value", "expected"), [
    ("users/{id}/posts", "users/{resources.users.id}/posts"),
    ("users/{{id}}/{id}", "users/{{id}}/{resources.users.id}"),
    ("x/{incremental.start_value}", "x/{incremental.start_value}"),
    ("x/{resources.users.id}", "x/{resources.users.id}"),
    ({"user": "{id}", "n": 5, "deep": ["{login}"]},
     {"user": "{resources.users.id}", "n": 5, "deep": ["{resources.users.login}"]}),
])
def test_fill_from_parent_uses_dlt_syntax(value: Any, expected: Any) -> None:
    assert fill_from_parent(value, "users") == expected
    assert fill_from_parent(value, None) == value


PAGINATORS = [
    ({"type": "single_page"}, "SinglePagePaginator", {}),
    ({"type": "offset", "limit": 50, "total_path": "meta.total"}, "OffsetPaginator",
     {"limit": 50, "param_name": "offset", "limit_param": "limit", "maximum_value": None}),
    ({"type": "offset", "stop_after_empty_page": False}, "OffsetPaginator", {"maximum_value": 100 * 10_000}),
    ({"type": "page_number", "base_page": 0, "page_param": "p", "maximum_page": 9}, "PageNumberPaginator",
     {"param_name": "p", "initial_value": 0, "maximum_value": 9}),
    ({"type": "cursor", "cursor_path": "next", "cursor_param": "after", "has_more_path": "more"},
     "JSONResponseCursorPaginator", {"cursor_param": "after"}),
    ({"type": "cursor", "cursor_location": "header", "cursor_path": "X-Next"}, "HeaderCursorPaginator",
     {"cursor_key": "X-Next"}),
    ({"type": "json_link", "next_url_path": "links.next"}, "JSONLinkPaginator", {}),
    ({"type": "header_link", "links_next_key": "following"}, "HeaderLinkPaginator", {"links_next_key": "following"}),
]


@pytest.mark.parametrize(("paginator", "dlt_class", "attributes"), PAGINATORS, ids=[p[1] + str(i) for i, p in
                                                                                    enumerate(PAGINATORS)])
def test_each_paginator_model_becomes_dlts_paginator(paginator: dict[str, Any], dlt_class: str,
                                                     attributes: dict[str, Any]) -> None:
    model = parse_source_file(source_file([{"name": "t", "path": "t"}], paginator=paginator)).source.paginator
    built = build_paginator(model)
    assert type(built).__name__ == dlt_class
    for name, value in attributes.items():
        assert getattr(built, name) == value, name


def test_config_for_a_child_brings_its_ancestors_and_the_guard() -> None:
    config = parse_source_file(source_file([
        {"name": "orgs", "path": "orgs", "paginator": {"type": "header_link", "maximum_pages": 3}},
        {"name": "repos", "path": "orgs/{login}/repos", "parent": "orgs", "include_from_parent": ["login"]},
        {"name": "issues", "path": "repos/{full_name}/issues", "parent": "repos", "mode": "incremental",
         "cursor": "updated_at", "cursor_param": "since", "initial_value": "2024-01-01"},
    ], paginator={"type": "json_link"}))
    before = config.model_dump()
    dlt_config = rest_api_config(config, config.tables[2], PagingLog("issues"), incremental=True)
    names = [r["name"] for r in dlt_config["resources"]]
    assert names == ["orgs", "repos", "issues"]
    orgs, repos, issues = dlt_config["resources"]
    assert repos["endpoint"]["path"] == "orgs/{resources.orgs.login}/repos"
    assert repos["include_from_parent"] == ["login"]
    assert issues["endpoint"]["incremental"] == {"cursor_path": "updated_at", "initial_value": "2024-01-01",
                                                 "start_param": "since"}
    assert "incremental" not in repos["endpoint"]  # a parent is always read whole
    assert (orgs["endpoint"]["paginator"].max_pages, orgs["endpoint"]["paginator"].explicit_cap) == (3, True)
    assert type(issues["endpoint"]["paginator"].inner).__name__ == "JSONLinkPaginator"  # the source's
    assert config.model_dump() == before


@pytest.mark.parametrize(("tables", "message"), [
    ([{"name": "c", "path": "p/{id}", "parent": "missing"}],
     "table 'c' has parent 'missing', but the source has no table of that name; its tables are c"),
    ([{"name": "a", "path": "b/{id}", "parent": "b"}, {"name": "b", "path": "a/{id}", "parent": "a"}],
     "are each other's parents"),
])
def test_parents_must_exist_and_not_loop(tables: list[dict[str, Any]], message: str) -> None:
    config = parse_source_file(source_file(tables))
    with pytest.raises(RestConfigError, match=message):
        rest_api_config(config, config.tables[0], PagingLog("c"), incremental=False)


def test_session_carries_timeout_retries_and_backoff() -> None:
    config = parse_source_file(source_file([{"name": "t", "path": "t"}], timeout_seconds=7, retry_attempts=3,
                                           retry_backoff_seconds=0.5, retry_max_wait_seconds=20,
                                           rate_limit_per_second=4))
    session = http_session(config.source, config.name)
    assert session.timeout == 7
    retrying = session.send.retry  # dlt's tenacity Retrying around send
    assert retrying.stop.max_attempt_number == 4
    assert (retrying.wait.multiplier, retrying.wait.max) == (0.5, 20)
    assert type(retrying.wait).__name__ == "wait_exponential_retry_after"
    assert session.get_adapter("https://api.example.com/").limiter.interval == 0.25


def test_rate_limiter_spaces_calls() -> None:
    limiter = RateLimiter(50)
    started = time.monotonic()
    for _ in range(6):
        limiter.wait()
    assert time.monotonic() - started >= 5 / 50


def test_guard_copies_share_the_paging_log() -> None:
    log = PagingLog("posts")
    original = guard(None, None, log, "posts")
    clone = copy.deepcopy(original)
    assert clone is not original and clone.log is log and clone.resource == "posts"


def test_a_body_is_parsed_once_and_unusual_json_falls_back_to_requests() -> None:
    from requests import Response

    from ingestion_core.engine.sources.rest_client import _parsed_once

    response = Response()
    response._content = b'{"data": [1, 2], "total": 2}'
    parse = _parsed_once(response)
    assert parse() is parse() and parse() == {"data": [1, 2], "total": 2}  # records and paginator share one parse
    unusual = Response()
    unusual._content = '{"x": 1}'.encode("utf-16-le")  # orjson reads UTF-8 only; requests detects UTF-16
    assert _parsed_once(unusual)() == {"x": 1}


def page(url: str, records: list[Any], next_url: str | None) -> Any:
    """A response of a JSON-link API: ``{"data": records, "next": next_url}``."""
    import json

    from requests import Request, Response

    response = Response()
    response.status_code, response._content = 200, json.dumps({"data": records, "next": next_url}).encode()
    response.request = Request("GET", url).prepare()
    return response


def follow(guarded: Any, pages: list[list[Any]]) -> int:
    """Feeds ``pages`` to a guard (each pointing at the next) the way dlt's paginate does; the pages read."""
    from requests import Request

    guarded.init_request(Request("GET", "https://api.example.com/v1/t"))
    for number, records in enumerate(pages, start=1):
        guarded.update_state(page(f"https://api.example.com/v1/t?p={number}", records,
                                  f"https://api.example.com/v1/t?p={number + 1}"), records)
    return guarded.pages


def json_link_guard(primary_key: tuple[str, ...] = ()) -> Any:
    from ingestion_core.config.models.rest import JsonLinkPaginator

    model = JsonLinkPaginator(type="json_link", next_url_path="next")
    return guard(build_paginator(model), model, PagingLog("t"), "t", primary_key)


def test_guard_compares_records_not_bodies_and_keys_when_there_is_a_primary_key() -> None:
    from ingestion_core.engine.sources.rest_client import PagingStoppedError

    first, second = [{"id": 1, "seen": "a"}, {"id": 2, "seen": "a"}], [{"id": 3, "seen": "b"}]
    assert follow(json_link_guard(), [first, second, [{"id": 1, "seen": "c"}, {"id": 2, "seen": "c"}]]) == 3
    with pytest.raises(PagingStoppedError, match=r"'t' stopped at page 3: the records of page 3 are the records of "
                                                 r"page 1\. Nothing of the table was loaded"):
        follow(json_link_guard(("id",)), [first, second, [{"id": 1, "seen": "c"}, {"id": 2, "seen": "c"}]])
    with pytest.raises(PagingStoppedError, match="the records of page 2 are the records of page 1"):
        follow(json_link_guard(), [first, list(first)])


def test_empty_pages_are_never_a_repeat() -> None:
    assert follow(json_link_guard(), [[{"id": 1}], [], [], [{"id": 2}]]) == 4
