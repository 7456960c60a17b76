"""The library side of the portal's "test endpoint" panel, and ``test_connection`` for REST.

:func:`probe_endpoint` sends the first request of a table (its first page, as the run would
send it) once, without retries, and returns what came back: status, headers and a body
excerpt with secrets masked, the paginator and the data selector (configured, or what dlt
detects from this response) and what the next request would be.

:func:`judge` says whether a probe passed, why not and what to do (401 / 403: the credential
references; 404: base_url and path; not JSON; TLS, DNS and timeouts each their own message):
the form's "Test endpoint" shows it, and :func:`connection_report` (``test_connection``) turns
it into a :class:`ConnectionReport`. Before any endpoint is chosen, :func:`probe_base_url`
requests base_url itself.

Example::

    probe = probe_endpoint(ConfigStore().load_source("crm_api").config, "contacts")
    probe.status, probe.paginator, probe.data_selector, probe.body_excerpt
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ingestion_core.config.models.base import SENSITIVE_HEADER
from ingestion_core.config.models.rest import PLACEHOLDER, RestResource
from ingestion_core.config.models.source_file import SourceFileBase
from ingestion_core.config.secrets import MASK, mask, mask_data, resolve_value
from ingestion_core.engine.sources import ConnectionReport
from ingestion_core.engine.sources.rest_client import (
    build_auth,
    build_paginator,
    describe_paginator,
    detect_paginator,
    http_session,
    masked_url,
)

BODY_EXCERPT = 2000


@dataclass
class EndpointProbe:
    """The first response of a table's endpoint, safe to show (secrets masked)."""

    table: str
    method: str
    url: str
    request_headers: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    reason: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body_excerpt: str = ""
    body_bytes: int = 0
    is_json: bool = False
    data_selector: str | None = None
    data_selector_detected: bool = False
    paginator: dict[str, Any] = field(default_factory=dict)
    paginator_detected: bool = False
    records_on_page: int = 0
    sample: list[Any] = field(default_factory=list)
    has_next_page: bool | None = None
    next_request: str | None = None
    duration_s: float = 0.0
    error: str | None = None
    error_kind: str | None = None  # dns | tls | timeout | unreachable | token | secret | other
    ok: bool = False  # the judgement of :func:`judge`, shared by the form and ``ingest test-connection``
    verdict: str = ""
    fix: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def probe_endpoint(config: SourceFileBase, table: str | None = None, sample_rows: int = 3) -> EndpointProbe:
    """The first request of ``table`` (default: the first enabled table without a parent).

    A child table's ``{field}`` placeholders are filled from the first record of its parent's
    first page. Never raises for an unreachable API: ``error`` / ``error_kind`` say what failed."""
    chosen = _table(config, table)
    probe = EndpointProbe(table=chosen.name, method=chosen.method, url="")
    _timed(probe, lambda: _probe(config, chosen, probe, sample_rows))
    judge(config, probe)
    return probe


def probe_base_url(config: Any) -> EndpointProbe:
    """One GET of ``base_url`` itself, with the source's headers and auth: the connection test of a
    source whose endpoints are not chosen yet (``config`` needs ``source`` and ``name`` only)."""
    probe = EndpointProbe(table="", method="GET", url="")
    _timed(probe, lambda: _probe_base_url(config, probe))
    judge(config, probe)
    return probe


def _timed(probe: EndpointProbe, call: Any) -> None:
    started = time.monotonic()
    try:
        call()
    except Exception as exc:  # report, never crash the panel
        probe.error_kind, probe.error = classify_error(exc)
    probe.duration_s = round(time.monotonic() - started, 3)


def _first_table(config: Any) -> RestResource | None:
    """The table test-connection requests: the first enabled one without a parent (None before
    any is chosen)."""
    top = [t for t in getattr(config, "tables", None) or () if t.enabled and not t.parent]
    return top[0] if top else None


def _table(config: SourceFileBase, name: str | None) -> RestResource:
    if name is not None:
        found = [t for t in config.tables if t.name == name]  # type: ignore[attr-defined]
        if not found:
            raise KeyError(f"{config.name} has no table named {name}; its tables are "
                           f"{', '.join(t.name for t in config.tables)}")  # type: ignore[attr-defined]
        return found[0]
    top = _first_table(config)
    if top is None:
        raise KeyError(f"{config.name} has no enabled table without a parent to test")
    return top


def _probe(config: SourceFileBase, table: RestResource, probe: EndpointProbe, sample_rows: int) -> None:
    from dlt.sources.helpers.rest_client.utils import join_url
    from requests import Request

    source = config.source
    session = http_session(source, config.name, retries=False)  # type: ignore[arg-type]
    values = _parent_values(config, table)
    params = dict(table.params)
    if table.cursor and table.initial_value is not None:  # the first incremental run sends initial_value
        values = {**values, "incremental": {"start_value": table.initial_value, "initial_value": table.initial_value,
                                            "last_value": table.initial_value}}
        if table.cursor_param:
            params[table.cursor_param] = table.initial_value
    model = table.paginator or source.paginator  # type: ignore[attr-defined]
    paginator = build_paginator(model)
    request = Request(
        method=table.method, url=join_url(source.base_url, _fill(table.path, values)),  # type: ignore[attr-defined]
        headers={**resolve_value(dict(source.headers)), **resolve_value(dict(table.headers))},  # type: ignore[attr-defined]
        params=_fill(resolve_value(params), values),
        json=_fill(resolve_value(table.json_body), values) if table.json_body is not None else None,
        auth=build_auth(source.auth, session),  # type: ignore[attr-defined]
    )
    if paginator is not None:
        paginator.init_request(request)
    response = _send(session, request, probe)
    _read_response(probe, response, table, paginator, request, sample_rows)


def _probe_base_url(config: Any, probe: EndpointProbe) -> None:
    from requests import Request

    source = config.source
    session = http_session(source, config.name, retries=False)
    request = Request(method="GET", url=source.base_url, headers=resolve_value(dict(source.headers)),
                      auth=build_auth(source.auth, session))
    _read_head(probe, _send(session, request, probe))


def _send(session: Any, request: Any, probe: EndpointProbe) -> Any:
    probe.url = mask(request.url)
    prepared = session.prepare_request(request)  # applies auth (an OAuth token request happens here)
    probe.url = masked_url(prepared.url)
    probe.request_headers = masked_headers(prepared.headers)
    return session.send(prepared)


def _read_head(probe: EndpointProbe, response: Any) -> Any:
    """Status, headers and a body excerpt; the body as JSON, or None when it is not JSON."""
    probe.status, probe.reason = response.status_code, str(response.reason or "")
    probe.headers = masked_headers(response.headers)
    probe.body_bytes = len(response.content)
    probe.body_excerpt = mask(response.text[:BODY_EXCERPT])
    try:
        body = response.json()
    except ValueError:
        return None
    probe.is_json = True
    return body


def _read_response(probe: EndpointProbe, response: Any, table: RestResource, paginator: Any, request: Any,
                   sample_rows: int) -> None:
    from dlt.common import jsonpath
    from dlt.sources.helpers.rest_client.detector import find_response_page_data

    body = _read_head(probe, response)
    probe.paginator = describe_paginator(paginator)
    if not probe.is_json or response.status_code >= 400:
        return
    selector = table.data_selector
    if selector is None:
        probe.data_selector_detected = True
        selector = ".".join(find_response_page_data(body)[0])
    probe.data_selector = selector
    found = jsonpath.find_values(selector, body)
    data = found[0] if isinstance(found, list) and len(found) == 1 else found
    data = data if isinstance(data, list) else ([] if data is None else [data])
    probe.records_on_page = len(data)
    probe.sample = mask_data(data[:sample_rows])
    if paginator is None:
        probe.paginator_detected = True
        paginator = detect_paginator(response)
        probe.paginator = describe_paginator(paginator)
    _next_request(probe, paginator, response, data, request)


def _next_request(probe: EndpointProbe, paginator: Any, response: Any, data: list[Any], request: Any) -> None:
    try:
        paginator.update_state(response, data)
    except Exception as exc:  # e.g. total_path not in the body: say so instead of failing the probe
        probe.paginator["problem"] = mask(str(exc))[:500]
        return
    probe.has_next_page = bool(paginator.has_next_page)
    if probe.has_next_page:
        paginator.update_request(request)
        from requests import Request

        following = Request(method=request.method, url=request.url, params=request.params).prepare()
        probe.next_request = masked_url(following.url)


def _parent_values(config: SourceFileBase, table: RestResource) -> dict[str, Any]:
    """The first record of the parent's first page (for a child's placeholders)."""
    if not table.parent:
        return {}
    parent = _table(config, table.parent)
    probe = probe_endpoint(config, parent.name, sample_rows=1)
    if probe.error or not probe.sample:
        raise LookupError(f"the parent '{parent.name}' gave no record to fill {table.path} from "
                          f"({probe.error or f'HTTP {probe.status}, {probe.records_on_page} records'})")
    return probe.sample[0]


def _fill(value: Any, record: dict[str, Any]) -> Any:
    if not record or value is None:
        return value
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda m: str(_lookup(record, m[1], m[0])), value)
    if isinstance(value, dict):
        return {k: _fill(v, record) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, record) for v in value]
    return value


def _lookup(record: dict[str, Any], path: str, default: str) -> Any:
    parts = path.split(".")
    if parts[0] == "resources" and "resources" not in record:  # dlt's own syntax: resources.<parent>.<field>
        parts = parts[2:]
    node: Any = record
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def masked_headers(headers: Any) -> dict[str, str]:
    """Headers with credential-like names hidden and known secret values masked."""
    return {k: MASK if SENSITIVE_HEADER.search(k) else mask(v) for k, v in headers.items()}


# --- errors --------------------------------------------------------------------------------

def classify_error(exc: BaseException) -> tuple[str, str]:
    """(kind, masked message) of a failed request: dns, tls, timeout, unreachable, token, secret, other."""
    import requests

    from ingestion_core.config.secrets import SecretNotFoundError
    from ingestion_core.engine.errors import describe

    text = describe(exc)
    chain = _chain(exc)
    names = " ".join(type(e).__name__ for e in chain) + " " + " ".join(str(e) for e in chain)
    if any(isinstance(e, SecretNotFoundError) for e in chain):
        return "secret", mask(str(exc))
    if any(isinstance(e, requests.exceptions.SSLError) for e in chain) or "SSL" in names or "CERTIFICATE" in names:
        return "tls", text
    if "NameResolutionError" in names or "gaierror" in names or "Name or service not known" in names:
        return "dns", text
    if any(isinstance(e, requests.exceptions.Timeout) for e in chain):
        return "timeout", text
    if any(isinstance(e, requests.exceptions.HTTPError) for e in chain):
        return "token", text  # raised by the OAuth token request (other requests are not raised)
    if any(isinstance(e, requests.exceptions.ConnectionError) for e in chain):
        return "unreachable", text
    return "other", text


def _chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def connection_report(config: Any) -> ConnectionReport:
    """``test_connection`` of a REST source: one request to the first resource, or to base_url
    when no resource is chosen yet (``config`` may then be a connection without tables)."""
    table = _first_table(config)
    probe = probe_base_url(config) if table is None else probe_endpoint(config, table.name)
    details = {"url": probe.url, "status": probe.status, "table": probe.table or None,
               "records_on_first_page": probe.records_on_page, "paginator": probe.paginator.get("type"),
               "data_selector": probe.data_selector}
    return ConnectionReport(probe.ok, probe.verdict, probe.fix, details=details)


def judge(config: Any, probe: EndpointProbe) -> EndpointProbe:
    """Fill ``ok``, ``verdict`` and ``fix`` of a probe: what the form's endpoint test and
    ``ingest test-connection`` say about it. A probe of base_url itself (``table`` empty) passes
    on any answer but refused credentials, rate limiting and server errors: base_url need not be
    an endpoint."""
    probe.ok, probe.verdict, probe.fix = _judgement(config, probe)
    return probe


def _judgement(config: Any, probe: EndpointProbe) -> tuple[bool, str, str]:
    if probe.error_kind:
        reason, mitigation = _ERROR_TEXTS[probe.error_kind](config, probe)
        return False, reason, mitigation
    status = probe.status or 0
    if status in (401, 403):
        return False, f"the API refused the credentials (HTTP {status} from {probe.url})", credential_hint(config)
    if status == 429 or status >= 500:
        return (False, f"the API is overloaded or rate limiting (HTTP {status})",
                "try again later; set rate_limit_per_second to stay under the API's limit")
    if not probe.table:
        return True, f"{probe.url} answered HTTP {status}; test each endpoint in the next step", ""
    if status == 404:
        return (False, f"HTTP 404: {probe.url} does not exist",
                f"check base_url and the path of table '{probe.table}': the request went to {probe.url}")
    if status >= 400:
        return (False, f"the API answered HTTP {status} {probe.reason} for {probe.url}",
                f"check the params, headers and method of table '{probe.table}' against the API's documentation "
                f"(answer: {probe.body_excerpt[:200]})")
    if not probe.is_json:
        kind = next((v for k, v in probe.headers.items() if k.lower() == "content-type"), "no Content-Type")
        return (False, f"{probe.url} did not answer JSON ({kind})",
                "check base_url and path: they must point at the API, not at a web page")
    return True, f"HTTP {status}, {probe.records_on_page} record(s) on the first page", ""


def credential_hint(config: Any) -> str:
    auth = config.source.auth  # type: ignore[attr-defined]
    if auth is None:
        return "the API wants credentials: add auth (bearer, api_key, http_basic or oauth2_client_credentials)"
    refs = {"bearer": f"auth.token ({auth.model_dump().get('token')})",
            "http_basic": f"auth.username and auth.password ({auth.model_dump().get('password')})",
            "api_key": f"auth.api_key ({auth.model_dump().get('api_key')}), sent as "
                       f"{auth.model_dump().get('location')} '{auth.model_dump().get('name')}'",
            "oauth2_client_credentials": f"auth.client_id and auth.client_secret "
                                         f"({auth.model_dump().get('client_secret')}) and scopes"}[auth.type]
    return (f"check the token reference: {refs}; the secrets file or environment variable it points to must "
            "hold a valid, unexpired credential with read access")


_ERROR_TEXTS = {
    "dns": lambda c, p: (f"the host of {c.source.base_url} cannot be resolved ({p.error})",
                         "check base_url for typos; the host must be reachable from this machine (proxy, VPN)"),
    "tls": lambda c, p: (f"the TLS (https) handshake with {c.source.base_url} failed ({p.error})",
                         "the server's certificate is not trusted here (self-signed, expired or the wrong host): "
                         "check base_url, or install the company CA certificate (REQUESTS_CA_BUNDLE)"),
    "timeout": lambda c, p: (f"the API did not answer within {c.source.timeout_seconds} s ({p.error})",
                             "try again later, or raise timeout_seconds if the API is slow"),
    "unreachable": lambda c, p: (f"cannot connect to {c.source.base_url} ({p.error})",
                                 "check base_url (host and port) and that the API is reachable from this machine"),
    "token": lambda c, p: (f"the token endpoint refused the client credentials ({p.error})",
                           "check auth.access_token_url, auth.client_id and the secret behind auth.client_secret"),
    "secret": lambda c, p: (p.error or "a secret is missing", "set the secret the message names"),
    "other": lambda c, p: (p.error or "the request failed", "see the message"),
}
