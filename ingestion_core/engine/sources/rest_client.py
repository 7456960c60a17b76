"""What a REST source hands to dlt's REST client: the HTTP session (timeout, retries, rate
limit), the auth object and the paginator, from the config models.

The session is dlt's retrying ``Client`` session (``dlt.sources.helpers.requests``): every
request, token requests included, gets the source's ``timeout_seconds``; 429, 5xx and lost
connections are retried ``retry_attempts`` times with exponential backoff starting at
``retry_backoff_seconds``, and a ``Retry-After`` header is honoured (up to
``retry_max_wait_seconds``). The rate limit paces every request, retries included, through
the session's transport adapter. Those retries are a table's whole retry budget: an error
that leaves the session is marked as having used them, and the runner does not try the table
again for it (:func:`ingestion_core.engine.errors.retry_table`).

Every paginator is wrapped in a :class:`PageGuard`: plain dlt follows an API that repeats a
page (the same records, or the same next link / cursor) forever, and has no page limit for
json_link, header_link and cursor paginators. The guard raises :class:`PagingStoppedError`
inside the extract (so dlt loads nothing of the table's run) at a page whose records are an
earlier page's, at a next reference seen before and at the default page cap; a
``maximum_pages`` of the config stops quietly. The table's :class:`PagingLog` counts pages,
records, requests and retries.

Example::

    session = http_session(config.source, config.name)
    model = config.source.paginator
    paginator = guard(build_paginator(model), model, PagingLog("orders"), "orders")
"""

from __future__ import annotations

import copy
import functools
import hashlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from requests.adapters import HTTPAdapter
from requests.exceptions import RequestException

from ingestion_core.config.models.rest import DEFAULT_MAX_PAGES, RestApiConnection
from ingestion_core.config.secrets import mask, register_secret, resolve_value
from ingestion_core.engine.errors import retries_spent

# --- the session ---------------------------------------------------------------------------


class RateLimiter:
    """At most ``per_second`` request starts per second, shared by every thread using it."""

    def __init__(self, per_second: float):
        self.interval = 1.0 / per_second
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


_LIMITERS: dict[tuple[str, str, float], RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def rate_limiter(source: str, base_url: str, per_second: float) -> RateLimiter:
    """One limiter per source and API in this process: tables loading in parallel share it."""
    key = (source, base_url, per_second)
    with _LIMITERS_LOCK:
        return _LIMITERS.setdefault(key, RateLimiter(per_second))


class ApiAdapter(HTTPAdapter):
    """The transport adapter: waits for the rate limiter before every request it sends, and
    makes ``response.json()`` parse the body once (dlt reads it for the records and again in the
    paginator), with orjson when the body allows."""

    def __init__(self, limiter: RateLimiter | None, log: PagingLog | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.limiter = limiter
        self.log = log

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if self.limiter:
            self.limiter.wait()
        if self.log:
            self.log.sent(tries=1)
        response = super().send(request, *args, **kwargs)
        response.json = _parsed_once(response)
        return response


def _parsed_once(response: Any) -> Any:
    import orjson

    parse = response.json
    parsed: list[Any] = []

    def json(**kwargs: Any) -> Any:
        if kwargs:
            return parse(**kwargs)
        if not parsed:
            try:
                parsed.append(orjson.loads(response.content))
            except orjson.JSONDecodeError:  # not UTF-8, NaN, integers past 64 bits...: what requests does
                try:
                    parsed.append(parse())
                except ValueError as exc:
                    raise _not_json(response, exc) from None  # the page and URL, not the parser's error
        return parsed[0]

    return json


def _not_json(response: Any, exc: ValueError) -> ValueError:
    """requests' JSONDecodeError, saying which page of which resource (when a guard numbered it) and
    which URL (masked) answered something that is not JSON."""
    from requests.exceptions import JSONDecodeError

    page, resource = getattr(response, "page_of", (None, None))
    what = f"page {page} of '{resource}'" if page else "the answer"
    error = JSONDecodeError(getattr(exc, "msg", str(exc)), getattr(exc, "doc", ""), getattr(exc, "pos", 0))
    error.args = (f"{what} is not valid JSON ({exc}); it was requested as {masked_url(response.url)}",)
    return error


def http_session(connection: RestApiConnection, source: str, retries: bool = True, log: PagingLog | None = None) -> Any:
    """dlt's retrying requests session with the source's timeout, retry and rate-limit settings.

    ``retries=False``: one try per request (test-connection answers at once). ``log``: counts the
    requests and tries. A request error that leaves the session has used up its retries (it is
    marked so: :func:`ingestion_core.engine.errors.retry_table` does not try the table again for it)."""
    from dlt.sources.helpers.requests import Client

    client = Client(
        request_timeout=connection.timeout_seconds,
        raise_for_status=False,  # dlt's REST client raises (after response actions) itself
        request_max_attempts=connection.retry_attempts + 1 if retries else 1,
        request_backoff_factor=connection.retry_backoff_seconds,
        request_max_retry_delay=connection.retry_max_wait_seconds,
        respect_retry_after_header=True,
    )
    session = client.session
    limiter = None
    if connection.rate_limit_per_second:
        limiter = rate_limiter(source, connection.base_url, connection.rate_limit_per_second)
    adapter = ApiAdapter(limiter, log, pool_maxsize=4)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.send = _retries_spent(session.send, log)  # outside the retrying send dlt installed
    session.merge_environment_settings = _per_host(session.merge_environment_settings)
    return session


def _retries_spent(send: Any, log: PagingLog | None) -> Any:
    @functools.wraps(send)  # keeps dlt's ``send.retry`` (tenacity) visible
    def spent_send(request: Any, **kwargs: Any) -> Any:
        if log:
            log.sent(requests=1)
        try:
            return send(request, **kwargs)
        except RequestException as exc:
            retries_spent(exc)
            raise

    return spent_send


def _per_host(merge: Any) -> Any:
    """requests reads the proxy variables of the whole environment before every request; the
    answer only depends on the scheme and host, so it is worked out once per host."""
    from urllib.parse import urlsplit

    known: dict[tuple[str, str], dict[str, Any]] = {}

    def merge_environment_settings(url: str, proxies: Any, stream: Any, verify: Any, cert: Any) -> dict[str, Any]:
        if proxies or stream is not None or verify is not None or cert is not None:
            return merge(url, proxies, stream, verify, cert)
        key = urlsplit(url)[:2]
        if key not in known:
            known[key] = merge(url, proxies, stream, verify, cert)
        return dict(known[key])  # the caller adds its own keys to it

    return merge_environment_settings


# --- auth ----------------------------------------------------------------------------------

def build_auth(auth: Any, session: Any) -> Any:
    """dlt's auth object for an auth model, with its references resolved (never logged)."""
    if auth is None:
        return None
    from dlt.sources.helpers.rest_client import auth as dlt_auth

    values = resolve_value(auth.model_dump(exclude={"type"}))
    if auth.type == "bearer":
        built = dlt_auth.BearerTokenAuth(token=values["token"])
    elif auth.type == "http_basic":
        built = dlt_auth.HttpBasicAuth(username=values["username"], password=values["password"])
    elif auth.type == "api_key" and auth.location == "cookie":
        built = _cookie_auth_class()(name=values["name"], api_key=values["api_key"], location="header")
    elif auth.type == "api_key":
        built = dlt_auth.APIKeyAuth(name=values["name"], api_key=values["api_key"], location=values["location"])
    else:
        data = dict(values["access_token_request_data"])
        if values["scopes"]:
            data["scope"] = " ".join(values["scopes"])
        built = _oauth_class()(
            access_token_url=values["access_token_url"], client_id=values["client_id"],
            client_secret=values["client_secret"], access_token_request_data=data, session=session,
        )
    return built.resolve()  # values are given: no lookup in dlt's config providers


def _cookie_auth_class() -> type:
    from dlt.sources.helpers.rest_client.auth import APIKeyAuth

    class CookieKeyAuth(APIKeyAuth):
        """An API key sent as a cookie (dlt's APIKeyAuth has no cookie location)."""

        def __call__(self, request: Any) -> Any:
            cookie = f"{self.name}={self.api_key}"
            existing = request.headers.get("Cookie")
            request.headers["Cookie"] = f"{existing}; {cookie}" if existing else cookie
            return request

    return CookieKeyAuth


def _oauth_class() -> type:
    from dlt.sources.helpers.rest_client.auth import OAuth2ClientCredentials

    class MaskedOAuth2ClientCredentials(OAuth2ClientCredentials):
        """dlt's client-credentials flow; the access token it obtains is masked everywhere."""

        def parse_native_representation(self, value: Any) -> None:
            super().parse_native_representation(value)
            if isinstance(value, str):
                register_secret(value)

    return MaskedOAuth2ClientCredentials


# --- paginators ----------------------------------------------------------------------------

def build_paginator(model: Any) -> Any:
    """dlt's paginator for a paginator model (None: detect from the first response)."""
    if model is None:
        return None
    from dlt.sources.helpers.rest_client import paginators as p

    kind = model.type
    if kind == "single_page":
        return p.SinglePagePaginator()
    if kind == "offset":
        maximum = model.maximum_offset
        if not (model.total_path or model.has_more_path or model.stop_after_empty_page or maximum):
            maximum = model.limit * model.maximum_pages  # dlt wants one stop condition; the guard caps anyway
        return p.OffsetPaginator(
            limit=model.limit, offset_param=model.offset_param, limit_param=model.limit_param,
            total_path=model.total_path, maximum_offset=maximum, has_more_path=model.has_more_path,
            stop_after_empty_page=model.stop_after_empty_page,
        )
    if kind == "page_number":
        maximum = model.maximum_page
        if not (model.total_path or model.has_more_path or model.stop_after_empty_page or maximum):
            maximum = model.base_page + model.maximum_pages
        return p.PageNumberPaginator(
            base_page=model.base_page, page_param=model.page_param, total_path=model.total_path,
            maximum_page=maximum, has_more_path=model.has_more_path,
            stop_after_empty_page=model.stop_after_empty_page,
        )
    if kind == "cursor" and model.cursor_location == "header":
        return p.HeaderCursorPaginator(cursor_key=model.cursor_path, cursor_param=model.cursor_param)
    if kind == "cursor":
        return p.JSONResponseCursorPaginator(
            cursor_path=model.cursor_path, cursor_param=model.cursor_param,
            stop_after_empty_page=model.stop_after_empty_page, has_more_path=model.has_more_path,
        )
    if kind == "json_link":
        return p.JSONLinkPaginator(next_url_path=model.next_url_path)
    return p.HeaderLinkPaginator(links_next_key=model.links_next_key)


def describe_paginator(paginator: Any) -> dict[str, Any]:
    """Type and settings of a dlt paginator, for people (the test-endpoint panel, logs)."""
    if paginator is None:
        return {"type": None, "settings": "detected from the first response"}
    if isinstance(paginator, PageGuard):
        paginator = paginator.inner
        if paginator is None:
            return {"type": None, "settings": "detected from the first response"}
    names = {
        "SinglePagePaginator": "single_page", "OffsetPaginator": "offset", "PageNumberPaginator": "page_number",
        "JSONResponseCursorPaginator": "cursor", "HeaderCursorPaginator": "cursor",
        "JSONLinkPaginator": "json_link", "HeaderLinkPaginator": "header_link",
    }
    name = type(paginator).__name__
    return {"type": names.get(name, name), "settings": mask(str(paginator))}


class PagingStoppedError(RuntimeError):
    """A resource stopped following pages: the API repeated itself (the same records, or a next
    link / cursor already followed) or the default page cap was hit. Raised while extracting, so
    dlt loads nothing of the table's run."""


@dataclass
class PagingStop:
    """A resource that stopped at its own ``maximum_pages`` while the API offered more."""

    resource: str
    page: int  # number of the page (1-based) where it stopped
    url: str  # masked


@dataclass
class PagingLog:
    """What the paginators and the HTTP session of one table did, shared by every copy of its
    guards (a child resource paginates once per parent record)."""

    table: str
    pages: dict[str, int] = field(default_factory=dict)  # per resource (a child's parent has its own)
    records: dict[str, int] = field(default_factory=dict)
    paginators: dict[str, str] = field(default_factory=dict)
    stops: list[PagingStop] = field(default_factory=list)
    requests: int = 0  # requests the session was asked to send
    tries: int = 0  # requests sent, retries included
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, resource: str, paginator: str, records: int) -> None:
        with self.lock:
            self.pages[resource] = self.pages.get(resource, 0) + 1
            self.records[resource] = self.records.get(resource, 0) + records
            self.paginators[resource] = paginator

    def add(self, stop: PagingStop) -> None:
        with self.lock:
            self.stops.append(stop)

    def sent(self, tries: int = 0, requests: int = 0) -> None:
        with self.lock:
            self.tries += tries
            self.requests += requests

    @property
    def retries(self) -> int:
        return self.tries - self.requests


class PageGuard:
    """Wraps a dlt paginator (or detects one from the first response, as dlt does) and raises
    :class:`PagingStoppedError` at a page whose records are those of an earlier page (their
    primary keys, when the table has one), at a next link / cursor already followed, and at the
    default page cap. A ``maximum_pages`` set in the config stops quietly (noted in the log).

    Records, not bodies, are compared: an API that ignores the page parameter often echoes the
    page asked for or a fresh timestamp, so its bodies never repeat. An empty page is the end of
    the data, never a repeat.

    Subclassing dlt's ``BasePaginator`` is done on first use (:func:`guard`), to keep dlt
    out of import time; this class holds the logic."""

    def __init__(self, inner: Any, max_pages: int = DEFAULT_MAX_PAGES, explicit_cap: bool = False,
                 log: PagingLog | None = None, resource: str = "", primary_key: tuple[str, ...] = (),
                 configured: bool = True):
        self.inner = inner
        self.max_pages = max_pages
        self.explicit_cap = explicit_cap
        self.log = log or PagingLog(resource)
        self.resource = resource
        self.primary_key = primary_key
        self.configured = configured
        self._has_next_page = True
        self._reset()

    def _reset(self) -> None:
        self.pages = 0
        self.seen: dict[bytes, int] = {}  # digest of a page's records -> its page number
        self.references: set[str] = set()
        self.stopped: PagingStop | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> PageGuard:
        return type(self)(copy.deepcopy(self.inner, memo), self.max_pages, self.explicit_cap, self.log,
                          self.resource, self.primary_key, self.configured)

    @property
    def has_next_page(self) -> bool:
        return self.stopped is None and self.inner is not None and self.inner.has_next_page

    def init_request(self, request: Any) -> None:
        self._reset()
        request.hooks["response"].insert(0, self._number_page)  # this request's own hooks (requests.Request)
        if self.inner is not None:
            self.inner.init_request(request)

    def _number_page(self, response: Any, *args: Any, **kwargs: Any) -> None:
        """Tells the response which page of which resource it is (errors about the page name it)."""
        response.page_of = (self.pages + 1, self.resource)

    def update_state(self, response: Any, data: Any = None) -> None:
        self.pages += 1
        if data:
            digest = records_digest(data, self.primary_key)
            earlier = self.seen.setdefault(digest, self.pages)
            if earlier != self.pages:
                self._fail(response, f"the records of page {self.pages} are the records of page {earlier}")
        if self.inner is None:
            self.inner = detect_paginator(response)
        self.inner.update_state(response, data)
        self.log.count(self.resource, type(self.inner).__name__, len(data) if isinstance(data, list) else bool(data))
        if not self.inner.has_next_page:
            return
        reference = getattr(self.inner, "_next_reference", None)
        if reference is not None:
            key = str(reference)
            if key in self.references or key == response.request.url:
                name = "cursor" if "Cursor" in type(self.inner).__name__ else "link"
                self._fail(response, f"the next {name} points at a page already read")
            self.references.add(key)
            self.references.add(response.request.url)
        if self.pages >= self.max_pages and not self.explicit_cap:
            self._fail(response, f"the default page cap ({self.max_pages} pages) was reached while the API "
                                 "still offered more", cap=True)
        if self.pages >= self.max_pages:
            self.stopped = PagingStop(self.resource, self.pages, masked_url(response.request.url))
            self.log.add(self.stopped)

    def update_request(self, request: Any) -> None:
        if self.stopped is None and self.inner is not None:
            self.inner.update_request(request)

    def _fail(self, response: Any, detail: str, cap: bool = False) -> None:
        where = f"'{self.resource}'" + ("" if self.resource == self.log.table else f" (parent of '{self.log.table}')")
        raise PagingStoppedError(  # the URL last: masking reads a query's secret up to the next space
            f"{where} stopped at page {self.pages}: {detail}. Nothing of the table was loaded; "
            f"{paging_fix(self.inner, self.configured, cap)}. Page {self.pages} was requested as "
            f"{masked_url(response.request.url)}"
        )

    def __str__(self) -> str:
        return f"{self.inner if self.inner is not None else 'auto'} (at most {self.max_pages} pages)"


def records_digest(data: Any, primary_key: tuple[str, ...]) -> bytes:
    """A digest of a page's records in their order: of their primary keys when the table has one
    (records whose other fields change on every request still repeat), else of the records."""
    import orjson

    records = data if isinstance(data, list) else [data]
    if primary_key and all(isinstance(r, dict) for r in records):
        records = [[r.get(k) for k in primary_key] for r in records]
    try:
        text = orjson.dumps(records)
    except TypeError:  # integers past 64 bits and the like
        text = repr(records).encode()
    return hashlib.blake2b(text, digest_size=16).digest()


PAGING_SETTINGS = {
    "OffsetPaginator": "offset_param / limit_param / limit", "PageNumberPaginator": "page_param / base_page",
    "JSONResponseCursorPaginator": "cursor_path / cursor_param", "HeaderCursorPaginator": "cursor_path / cursor_param",
    "JSONLinkPaginator": "next_url_path", "HeaderLinkPaginator": "links_next_key",
}
"""The paginator settings that decide which page is asked for next, per dlt paginator."""


def paging_fix(inner: Any, configured: bool, cap: bool) -> str:
    """What to change when a paginator stopped: maximum_pages for the cap; for a paginator dlt
    detected, a ``paginator`` to set; else the settings that pick the next page."""
    if cap:
        unset = "" if configured else ", on a paginator of the table: none is set, dlt detected one"
        return (f"if the API really has more pages, set paginator.maximum_pages higher{unset} (a maximum_pages you "
                "set is a deliberate limit: the pages read are then loaded)")
    name = type(inner).__name__
    if not configured:
        found = f"no paginator is set, so dlt detected one from the first response: {describe_paginator(inner)['type']}"
        if name == "PageNumberPaginator" and inner.base_index == 0:
            total = f", total_path: {inner.total_path}" if inner.total_path else ""
            return (f"{found} counting pages from 0 ({inner.param_name}=1 is its second page); this API's unnumbered "
                    f"first page is page 1: set paginator: {{type: page_number, base_page: 1{total}}} on the table "
                    "or the source")
        return f"{found}; set paginator on the table (its type and settings, see docs/rest-sources.md)"
    settings = PAGING_SETTINGS.get(name, "the paginator settings")
    return f"the API seems to ignore or loop the paginator's parameter: check {settings} against the API's docs"


def masked_url(url: str) -> str:
    """A URL fit for messages: sensitive query values (api_key, token...) and known secrets masked."""
    from dlt.sources.helpers.rest_client.redaction import sanitize_url

    return mask(sanitize_url(url))


def detect_paginator(response: Any) -> Any:
    """dlt's own choice of paginator for a response (what ``RESTClient.detect_paginator`` does)."""
    from dlt.sources.helpers.rest_client.detector import PaginatorFactory
    from dlt.sources.helpers.rest_client.paginators import SinglePagePaginator

    paginator, _ = PaginatorFactory().create_paginator(response)
    return paginator or SinglePagePaginator()


_GUARD_CLASS: type | None = None


def guard(inner: Any, model: Any, log: PagingLog, resource: str, primary_key: tuple[str, ...] = ()) -> Any:
    """A :class:`PageGuard` that is also a dlt ``BasePaginator`` (dlt's config checks the type).
    ``model`` None: no paginator configured (dlt detects one)."""
    global _GUARD_CLASS
    if _GUARD_CLASS is None:
        from dlt.sources.helpers.rest_client.paginators import BasePaginator

        _GUARD_CLASS = type("GuardedPaginator", (PageGuard, BasePaginator), {})
    max_pages = model.maximum_pages if model is not None else DEFAULT_MAX_PAGES
    explicit = model is not None and "maximum_pages" in model.model_fields_set
    return _GUARD_CLASS(inner, max_pages, explicit, log, resource, tuple(primary_key), model is not None)
