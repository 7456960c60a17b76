"""A real HTTP API for the REST tests and the REST benchmark, served from the test process on
127.0.0.1 (``http.server`` in a thread, TCP_NODELAY on every connection: without it each request
stalls ~40 ms on loopback).

A request path is ``/[<auth>/][<fault>/]<style>/<collection>``:

- ``<auth>`` (optional): ``bearer``, ``basic``, ``header_key`` (``X-API-Key``), ``query_key``
  (``?api_key=``) or ``oauth`` (a token from ``POST /oauth/token``, client-credentials flow). The
  credentials are the session's fake secrets (tests/security/scanner.py: ``secrets.token_urlsafe`` per
  run, never committed; ``INGEST_TEST_SECRET_API_*``), and every token issued is added to them, so the
  end-of-session secrets scan looks for all of them.
- ``<fault>`` (optional): ``flaky`` (the first try of page 2 answers 429 with ``Retry-After``, the
  first try of page 3 answers 500), ``fail500`` (the first try of every odd page answers 500),
  ``slow`` (pages from ``slow_from_page`` on wait ``slow_seconds`` before answering; from
  ``hold_from_page`` on, also until the test sets ``release``), ``malformed``
  (page 2 is cut-off JSON), ``empty`` (no records at all), ``loop`` (page 1 again, forever: the
  same body and the same next link / cursor, whatever the request asks for), ``relink`` (the
  right records, but every next link / cursor points at page 2 again), ``echo`` (from page
  ``echo_from_page`` on, the records of the page before it whatever the request asks for, in a
  body that echoes the page asked for and a huge ``total`` / ``total_pages``: an API that ignores
  the paging parameter, whose bodies never repeat; offset and page styles).
- ``<style>``: how pages are followed:

  ============== ========================================================= ==================
  style          request                                                   body / headers
  ============== ========================================================= ==================
  offset         ``?offset=0&limit=100``                                   ``{data, total}``
  offset_more    ``?offset=0&limit=100``                                   ``{data, has_more}``
  offset_bare    ``?offset=0&limit=100`` (ends with an empty page)         ``{data}``
  page           ``?page=1&per_page=100`` (no ``page``: page 1)            ``{data, total_pages}``
  page_bare      ``?page=1&per_page=100`` (ends with an empty page)        ``{data}``
  cursor         ``?cursor=<c>&limit=100``                                 ``{data, cursors: {next}}``
  header_cursor  ``?cursor=<c>&limit=100``                                 list + ``X-Next-Cursor``
  json_link      ``?page=2&per_page=100``                                  ``{results, next}``
  header_link    ``?page=2&per_page=100`` (GitHub)                         list + ``Link``
  single         (everything at once)                                      ``{data}``
  ============== ========================================================= ==================

- ``<collection>``: ``items`` (``server.items``, filtered by ``?since=`` on ``updated_at`` when
  given), ``users`` (``server.users``) or ``users/<id>/posts`` (404 for a user without posts).

Every request is logged with its monotonic timestamp (``server.requests``), so tests assert
rate limits and Retry-After as lower bounds on the server's own clock.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.security.scanner import fake_secret, register_secret

AUTH_KINDS = ("bearer", "basic", "header_key", "query_key", "oauth")
FAULTS = ("flaky", "fail500", "slow", "malformed", "empty", "loop", "relink", "echo")
STYLES = ("offset", "offset_more", "offset_bare", "page", "page_bare", "cursor", "header_cursor",
          "json_link", "header_link", "single")
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
_ISSUED = itertools.count()  # numbers the issued OAuth tokens, across servers


def make_item(i: int) -> dict[str, Any]:
    """Record ``i``: 7 fields, one a 2-item list and one a nested object (like the baselines)."""
    return {
        "id": i,
        "name": f"item {i}",
        "amount": round(i * 1.25, 2),
        "active": i % 2 == 0,
        "updated_at": (EPOCH + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tags": [f"t{i % 7}", f"g{i % 3}"],
        "meta": {"source": "api", "rank": i % 10},
    }


class VirtualItems(Sequence):
    """``make_item(1)`` .. ``make_item(count)``, made on demand: an API of a million records
    without holding them."""

    def __init__(self, count: int):
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [make_item(i + 1) for i in range(*index.indices(self.count))]
        if not -self.count <= index < self.count:
            raise IndexError(index)
        return make_item(index % self.count + 1)


@dataclass
class Logged:
    at: float  # time.monotonic() when the request arrived
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class ApiServer:
    """The API's data, credentials and request log. Tests may change ``items`` between runs."""

    items: list[dict[str, Any]]
    users: list[dict[str, Any]] = field(default_factory=lambda: [{"id": i, "login": f"user{i}"} for i in range(1, 6)])
    posts_per_user: dict[int, int] = field(default_factory=lambda: {1: 3, 2: 0, 3: 5, 5: 1})  # user 4: 404
    default_page_size: int = 100
    retry_after_seconds: int = 1
    slow_seconds: float = 2.0
    slow_from_page: int = 2
    hold_from_page: int | None = None  # slow pages from this one on wait for ``release`` (or the server's stop)
    release: threading.Event = field(default_factory=threading.Event)
    echo_from_page: int = 2
    token: str = field(default_factory=lambda: fake_secret("api_token", "tok-"))
    api_key: str = field(default_factory=lambda: fake_secret("api_key", "key-"))
    username: str = "reporter"
    password: str = field(default_factory=lambda: fake_secret("api_password", "pw-"))
    client_id: str = "portal-client"
    client_secret: str = field(default_factory=lambda: fake_secret("api_client_secret", "cs-"))
    url: str = ""
    requests: list[Logged] = field(default_factory=list)
    issued_tokens: list[str] = field(default_factory=list)
    _tries: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)

    def secrets(self) -> list[str]:
        """Every credential value, for asserting that none leaks."""
        return [self.token, self.api_key, self.password, self.client_secret, *self.issued_tokens]

    def log_for(self, prefix: str) -> list[Logged]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(prefix)]

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()
            self._tries.clear()

    def try_number(self, key: str) -> int:
        with self._lock:
            self._tries[key] = self._tries.get(key, 0) + 1
            return self._tries[key]

    def log(self, entry: Logged) -> None:
        with self._lock:
            self.requests.append(entry)


class Reply(Exception):
    """Raised by a route to answer at once (errors, auth failures, faults)."""

    def __init__(self, status: int, body: bytes | str = b"", headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status = status
        self.body = body.encode() if isinstance(body, str) else body
        self.headers = headers or {}


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one connection serves every page
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        api = self.server.api
        split = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        api.log(Logged(time.monotonic(), self.command, split.path, dict(params), dict(self.headers.items()), body))
        try:
            status, payload, headers = route(api, self.command, split.path, params, body, self.headers)
        except Reply as reply:
            status, payload, headers = reply.status, reply.body, reply.headers
        except Exception as exc:  # a bug in a route: answer, so the client does not hang on it
            status, payload, headers = 500, _json({"error": f"test server: {exc!r}"}), {}
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (timeouts)
            self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: ApiServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):  # clients giving up is part of the tests
            super().handle_error(request, client_address)


# --- routing -------------------------------------------------------------------------------

def route(api: ApiServer, method: str, path: str, params: dict[str, str], body: bytes,
          headers: Any) -> tuple[int, bytes, dict[str, str]]:
    parts = [p for p in path.split("/") if p]
    if parts == ["oauth", "token"] and method == "POST":
        return _token(api, body)
    if parts and parts[0] in AUTH_KINDS:
        _check_auth(api, parts.pop(0), params, headers)
    fault = parts.pop(0) if parts and parts[0] in FAULTS else None
    if not parts or parts[0] not in STYLES:
        raise Reply(404, _json({"error": f"no route {path}"}))
    style, collection = parts[0], "/".join(parts[1:])
    records = _collection(api, collection, params)
    page = _page_number(style, params)
    if fault:
        records = _apply_fault(api, fault, path, params, page, records)
    if fault == "loop":
        return _loop_page(api, style, path, params, records)
    if fault == "echo":
        return _echo_page(api, style, path, params, records, page)
    return _paged(api, style, path, params, records, relink=fault == "relink")


def _check_auth(api: ApiServer, kind: str, params: dict[str, str], headers: Any) -> None:
    given = headers.get("Authorization", "")
    ok = {
        "bearer": given == f"Bearer {api.token}",
        "basic": given == "Basic " + base64.b64encode(f"{api.username}:{api.password}".encode()).decode(),
        "header_key": headers.get("X-API-Key") == api.api_key,
        "query_key": params.pop("api_key", None) == api.api_key,
        "oauth": given.startswith("Bearer ") and given[7:] in api.issued_tokens,
    }[kind]
    if not ok:
        raise Reply(401, _json({"error": "unauthorized"}), {"WWW-Authenticate": "Bearer"})


def _token(api: ApiServer, body: bytes) -> tuple[int, bytes, dict[str, str]]:
    form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
    if (form.get("client_id"), form.get("client_secret"), form.get("grant_type")) != (
            api.client_id, api.client_secret, "client_credentials"):
        raise Reply(401, _json({"error": "invalid_client"}))
    token = "oat-" + secrets.token_urlsafe(18)
    with api._lock:
        api.issued_tokens.append(token)
        register_secret(f"api_oauth_token_{next(_ISSUED)}", token)
    return 200, _json({"access_token": token, "token_type": "bearer", "expires_in": 3600,
                       "scope": form.get("scope", "")}), {}


def _collection(api: ApiServer, name: str, params: dict[str, str]) -> list[dict[str, Any]]:
    if name == "items":
        since = params.get("since")
        return [r for r in api.items if r["updated_at"] > since] if since else api.items
    if name == "users":
        return api.users
    parts = name.split("/")
    if len(parts) == 3 and parts[0] == "users" and parts[2] == "posts":
        user = int(parts[1])
        if user not in api.posts_per_user:
            raise Reply(404, _json({"error": f"user {user} not found"}))
        return [{"id": user * 100 + n, "user_id": user, "title": f"post {n} of {user}"}
                for n in range(api.posts_per_user[user])]
    raise Reply(404, _json({"error": f"no collection {name}"}))


def _page_number(style: str, params: dict[str, str]) -> int:
    """1 for the first page whatever the style (offset / cursor converted)."""
    size = _size(params, 100)
    if style.startswith("offset"):
        return int(params.get("offset", 0)) // size + 1
    if style in ("cursor", "header_cursor"):
        cursor = params.get("cursor", "")
        return int(cursor[1:]) // size + 1 if cursor[1:].isdigit() else (2 if cursor else 1)
    return int(params.get("page", 1))


def _size(params: dict[str, str], default: int) -> int:
    return int(params.get("limit") or params.get("per_page") or default)


def _apply_fault(api: ApiServer, fault: str, path: str, params: dict[str, str], page: int,
                 records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    key = f"{path}?{urlencode(sorted(params.items()))}"
    if fault == "flaky" and page in (2, 3) and api.try_number(key) == 1:
        if page == 2:
            raise Reply(429, _json({"error": "slow down"}), {"Retry-After": str(api.retry_after_seconds)})
        raise Reply(500, _json({"error": "boom"}))
    if fault == "fail500" and page % 2 == 1 and api.try_number(key) == 1:
        raise Reply(500, _json({"error": "boom"}))
    if fault == "slow" and page >= api.slow_from_page:
        api._stop.wait(api.slow_seconds)
        while api.hold_from_page is not None and page >= api.hold_from_page and not api._stop.is_set() \
                and not api.release.wait(0.05):
            pass
    if fault == "malformed" and page == 2:
        raise Reply(200, b'{"data": [{"id": 1, "name": "cut')
    if fault == "empty":
        return []
    return records


def _paged(api: ApiServer, style: str, path: str, params: dict[str, str], records: list[dict[str, Any]],
           relink: bool = False) -> tuple[int, bytes, dict[str, str]]:
    size = _size(params, api.default_page_size)
    total = len(records)
    if style == "single":
        return 200, _json({"data": records}), {}
    if style.startswith("offset"):
        start = int(params.get("offset", 0))
        chunk = records[start:start + size]
        extra = {"offset": {"total": total}, "offset_more": {"has_more": start + size < total}}.get(style, {})
        return 200, _json({"data": chunk, **extra}), {}
    if style.startswith("page"):
        page = int(params.get("page", 1))
        chunk = records[(page - 1) * size: page * size]
        extra = {"total_pages": -(-total // size)} if style == "page" else {}
        return 200, _json({"data": chunk, **extra}), {}
    if style in ("cursor", "header_cursor"):
        start = int(params["cursor"][1:]) if params.get("cursor") else 0
        chunk = records[start:start + size]
        following = f"c{size if relink else start + size}" if start + size < total else None
        if style == "cursor":
            return 200, _json({"data": chunk, "cursors": {"next": following}}), {}
        return 200, _json(chunk), ({"X-Next-Cursor": following} if following else {})
    page = int(params.get("page", 1))
    chunk = records[(page - 1) * size: page * size]
    nxt = None
    if page * size < total:
        query = {k: v for k, v in params.items() if k != "page"} | {"page": str(2 if relink else page + 1)}
        nxt = f"{api.url}{path}?{urlencode(query)}"
    if style == "json_link":
        return 200, _json({"results": chunk, "next": nxt}), {}
    return 200, _json(chunk), ({"Link": f'<{nxt}>; rel="next"'} if nxt else {})


def _loop_page(api: ApiServer, style: str, path: str, params: dict[str, str],
               records: list[dict[str, Any]]) -> tuple[int, bytes, dict[str, str]]:
    """Page 1 whatever was asked, pointing at page 2 (json_link / header_link: itself)."""
    size = _size(params, api.default_page_size)
    chunk = records[:size]
    same = f"{api.url}{path}?{urlencode({k: v for k, v in params.items() if k != 'page'} | {'page': '2'})}"
    bodies = {
        "offset": {"data": chunk, "total": 10**9}, "offset_more": {"data": chunk, "has_more": True},
        "offset_bare": {"data": chunk}, "page": {"data": chunk, "total_pages": 10**9}, "page_bare": {"data": chunk},
        "cursor": {"data": chunk, "cursors": {"next": "c-again"}}, "header_cursor": chunk,
        "json_link": {"results": chunk, "next": same}, "header_link": chunk, "single": {"data": chunk},
    }
    headers = {"header_cursor": {"X-Next-Cursor": "c-again"}, "header_link": {"Link": f'<{same}>; rel="next"'}}
    return 200, _json(bodies[style]), headers.get(style, {})


def _echo_page(api: ApiServer, style: str, path: str, params: dict[str, str], records: list[dict[str, Any]],
               page: int) -> tuple[int, bytes, dict[str, str]]:
    """Pages from ``echo_from_page`` on repeat the page before it; the body says which page was asked for."""
    if not style.startswith(("offset", "page")):
        raise Reply(404, _json({"error": f"echo serves offset and page styles, not {style}"}))
    size = _size(params, api.default_page_size)
    served = min(page, api.echo_from_page - 1) if api.echo_from_page > 1 else 1
    chunk = records[(served - 1) * size: served * size]
    total = {"total": 1_000_000} if style.startswith("offset") else {"total_pages": 10_000}
    return 200, _json({"data": chunk, **total, "page": page}), {}


# --- starting and stopping -----------------------------------------------------------------

def start_api(items: int = 250, virtual: bool = False, **settings: Any) -> tuple[ApiServer, _Server]:
    """Serve ``items`` records (``virtual``: made on demand, read-only) on 127.0.0.1:<free port>."""
    records = VirtualItems(items) if virtual else [make_item(i) for i in range(1, items + 1)]
    api = ApiServer(items=records, **settings)  # type: ignore[arg-type]
    httpd = _Server(("127.0.0.1", 0), Handler)
    httpd.api = api
    api.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                     name="http-api").start()
    return api, httpd


def stop_api(api: ApiServer, httpd: _Server) -> None:
    api._stop.set()
    httpd.shutdown()
    httpd.server_close()


@contextlib.contextmanager
def running_api(items: int = 250, **settings: Any) -> Iterator[ApiServer]:
    """An API for the ``with`` block; a test module's fixture: ``with running_api() as api: yield api``."""
    api, httpd = start_api(items, **settings)
    try:
        yield api
    finally:
        stop_api(api, httpd)


def main() -> None:
    """``python -m tests.http_api --items 100000``: serve in this process (benchmarks run the API
    in a process of its own, so it does not compete with the pipeline for the GIL)."""
    import argparse

    parser = argparse.ArgumentParser(description="the REST test API on 127.0.0.1")
    parser.add_argument("--items", type=int, default=250)
    parser.add_argument("--page-size", type=int, default=100)
    args = parser.parse_args()
    api, httpd = start_api(args.items, virtual=True, default_page_size=args.page_size)
    print(api.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        stop_api(api, httpd)


if __name__ == "__main__":
    main()
