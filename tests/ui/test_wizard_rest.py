"""The REST part of the new-source form, headless with AppTest against a real HTTP server on
loopback: the connection test of a new source (no endpoints yet) and the judgement of "Test
endpoint" (the one ``ingest test-connection`` gives)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.ui.test_wizard import click, errors, ok, open_editor, start_type, type_in


@dataclass
class PlainServer:
    """``python -m http.server`` over a folder: ``/`` lists it (HTML), ``/page.html`` is a web page,
    ``/contacts.json`` JSON records, anything else 404 (HTML)."""

    url: str
    paths: list[str] = field(default_factory=list)


@pytest.fixture
def plain_server(tmp_path: Path) -> Iterator[PlainServer]:
    (tmp_path / "page.html").write_text("<html><body>a web page</body></html>", encoding="utf-8")
    (tmp_path / "contacts.json").write_text('{"data": [{"id": 1}, {"id": 2}]}', encoding="utf-8")
    served = PlainServer("")

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            served.paths.append(self.path)
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(tmp_path)))
    served.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


def new_rest_source(api: PlainServer) -> AppTest:
    at = start_type(open_editor(), "rest_api")
    for key, value in (("f-name", "web_api"), ("f-owner", "market-de"), ("f-source-base_url", api.url)):
        type_in(at, key, value)
    return at


def test_a_new_rest_source_passes_the_connection_test_with_one_request(ingest_env, plain_server) -> None:
    at = new_rest_source(plain_server)
    click(at, "wiz-test")
    assert not errors(at), errors(at)
    assert "Connected in" in at.success[0].value
    assert f"{plain_server.url}/ answered HTTP 200" in at.success[0].value
    assert plain_server.paths == ["/"]


def endpoint_result(at: AppTest, path: str) -> AppTest:
    click(at, "wiz-next")
    type_in(at, "wiz-endpoint-name", "things")
    type_in(at, "wiz-endpoint-path", path)
    click(at, "wiz-endpoint-add")
    return click(at, "wiz-test-endpoint-0")


@pytest.mark.parametrize(("path", "problem", "fix"), [
    ("missing", "HTTP 404: {url}/missing does not exist", "check base_url and the path of table 'things'"),
    ("page.html", "{url}/page.html did not answer JSON (text/html)", "they must point at the API, not at a web page"),
], ids=["404", "not-json"])
def test_test_endpoint_shows_a_failed_probe_as_an_error_with_the_fix(ingest_env, plain_server, path: str,
                                                                      problem: str, fix: str) -> None:
    at = endpoint_result(new_rest_source(plain_server), path)
    assert not at.success, [s.value for s in at.success]
    shown = errors(at)
    assert any(problem.format(url=plain_server.url) in e and fix in e for e in shown), shown


def test_test_endpoint_of_a_json_endpoint_is_a_success(ingest_env, plain_server) -> None:
    at = endpoint_result(new_rest_source(plain_server), "contacts.json")
    assert not errors(at), errors(at)
    assert "HTTP 200" in at.success[0].value and "2 record(s) on the first page" in at.success[0].value
    ok(at)
