"""REST (``api``) rows of the Excel job sheet: the connection from ``[sources.<name>]`` and the
settings of the sheet's extra columns.

- Auth: ``token`` (bearer), ``api_key`` with ``api_key_header`` / ``api_key_name`` /
  ``header_name`` (its header, e.g. ``x-cg-demo-api-key``), a key named like the header itself
  (``x-cg-demo-api-key = "..."``), a secret header of ``[sources.<name>.headers]``, a secret
  query parameter of ``[sources.<name>.params]``, or ``username`` / ``password`` (basic). The
  sheet's ``auth_type`` column picks the style when given.
- ``[sources.<name>.params]``: the query parameters of every endpoint of the source;
  ``[sources.<name>.headers]``: headers sent with every request.
- Columns: ``pagination_type`` -> the resource's paginator, ``page_size`` -> its page size,
  ``rate_limit`` -> ``rate_limit_per_second`` of the source.

Every value of the section that is not used is returned with the reason, never left out silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ingestion_core.config.excel.sheet import text

SENSITIVE = re.compile(r"(auth|token|key|secret|password|passwd|pwd|signature|sig)", re.I)
HEADER_NAME_KEYS = ("api_key_header", "api_key_name", "header_name", "auth_header")
LOCATION_KEYS = ("api_key_location", "api_key_in")
SECRET_VALUE_KEYS = ("token", "api_key", "access_token", "apikey", "key")
SIZE_PARAMS = ("per_page", "page_size", "pageSize", "limit", "size", "count")

PAGINATION_TYPES: dict[str, str | None] = {
    "offset": "offset", "page": "page_number", "page_number": "page_number", "paged": "page_number",
    "cursor": "cursor", "link": "header_link", "link_header": "header_link", "header_link": "header_link",
    "json_link": "json_link", "next_url": "json_link", "next": "json_link", "none": "single_page",
    "single": "single_page", "single_page": "single_page", "auto": None,
}
AUTH_TYPES = {"bearer": "bearer", "token": "bearer", "api_key": "api_key", "apikey": "api_key",
              "header": "api_key", "query": "api_key", "basic": "http_basic", "http_basic": "http_basic",
              "none": "none"}
RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:(?:/|per)\s*(s|sec|second|m|min|minute|h|hour)s?)?\s*$", re.I)
PER_SECOND = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


@dataclass
class RestConnection:
    """``source:`` of an api source, with what its section and rows left out (key -> reason)
    and what the import decided for the user to know."""

    connection: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def ref(source: str, *path: str) -> str:
    return "${secrets.sources." + ".".join((source, *path)) + "}"



# --- the sheet's columns, one row ------------------------------------------------------------

def row_settings(cells: dict[str, Any], table: dict[str, Any], reasons: list[str]) -> dict[str, Any]:
    """pagination_type / page_size (onto ``table``), auth_type / rate_limit (returned: they are
    the source's); a value that cannot be read is a reason to skip the row."""
    extras: dict[str, Any] = {}
    pagination = text(cells.get("pagination_type")).lower().replace("-", "_").replace(" ", "_")
    if pagination and pagination not in PAGINATION_TYPES:
        reasons.append(f"pagination_type '{text(cells.get('pagination_type'))}' is unknown; use one of "
                       f"{', '.join(PAGINATION_TYPES)} or leave it empty (detected from the first response)")
    elif PAGINATION_TYPES.get(pagination):
        table["paginator"] = {"type": PAGINATION_TYPES[pagination]}
    size = text(cells.get("page_size"))
    if size and not size.isdigit():
        reasons.append(f"page_size '{size}' is not a whole number; write e.g. 100 or leave it empty")
    elif size:
        extras["page_size"] = int(size)
        if table.get("paginator", {}).get("type") == "offset":
            table["paginator"]["limit"] = int(size)
    auth = text(cells.get("auth_type")).lower().replace("-", "_").replace(" ", "_")
    if auth and auth not in AUTH_TYPES:
        reasons.append(f"auth_type '{text(cells.get('auth_type'))}' is unknown; use one of {', '.join(AUTH_TYPES)}")
    elif auth:
        extras["auth_type"] = auth
    rate = text(cells.get("rate_limit"))
    if rate:
        per_second = rate_per_second(rate)
        if per_second is None:
            reasons.append(f"rate_limit '{rate}' is not a rate; write requests per second (e.g. 5), or 30/min")
        else:
            extras["rate_limit"] = (rate, per_second)
    return extras


def rate_per_second(value: str) -> float | None:
    match = RATE.match(value)
    if not match or float(match[1]) <= 0:
        return None
    return float(match[1]) / PER_SECOND[(match[2] or "s").lower()]


# --- the connection ------------------------------------------------------------------------

def rest_connection(source: str, section: dict[str, Any], rows: list[dict[str, Any]]) -> RestConnection:
    """The connection of an api source from its section and the extras of its rows."""
    base_key = "base_url" if "base_url" in section else "url"
    result = RestConnection({"type": "rest_api", "base_url": text(section.get(base_key))})
    used = {base_key}
    params = section.get("params") if isinstance(section.get("params"), dict) else {}
    headers = section.get("headers") if isinstance(section.get("headers"), dict) else {}
    used |= {"params"} if params else set()
    used |= {"headers"} if headers else set()
    auth_type = _source_auth_type(rows, result)
    auth, auth_used = _auth(source, section, params, headers, auth_type, result)
    if auth:
        result.connection["auth"] = auth
    used |= auth_used
    for name, value in headers.items():
        if f"headers.{name}" not in auth_used:
            _plain_header(source, name, value, result)
    for name, value in params.items():
        if f"params.{name}" not in auth_used:
            _plain_param(source, name, value, result)
    _rate_limit(rows, result)
    for key in section:
        if key not in used:
            result.dropped[key] = "auth_type none: the API is called without credentials" \
                if auth_type == "none" and SENSITIVE.search(key) else _why_unused(key, section[key])
    return result


def _source_auth_type(rows: list[dict[str, Any]], result: RestConnection) -> str | None:
    kinds = [r["auth_type"] for r in rows if r.get("auth_type")]
    if len(set(kinds)) > 1:
        result.notes.append(f"the rows give different auth_type values ({', '.join(sorted(set(kinds)))}); the "
                            f"source uses '{kinds[0]}' (one connection has one auth)")
    return kinds[0] if kinds else None


def _auth(source: str, section: dict[str, Any], params: dict[str, Any], headers: dict[str, Any],
          auth_type: str | None, result: RestConnection) -> tuple[dict[str, Any] | None, set[str]]:
    """The auth block and the section keys it used."""
    style = AUTH_TYPES.get(auth_type or "")
    if style == "none":
        return None, set()
    header_key = next((k for k in HEADER_NAME_KEYS if k in section), None)
    header_name = text(section[header_key]) if header_key else None
    secret, used, name, location = _secret_of(source, section, params, headers)
    if header_key:
        used.add(header_key)
    location_key = next((k for k in LOCATION_KEYS if k in section), None)
    if location_key:
        location = text(section[location_key]).lower()
        used.add(location_key)
    if style == "http_basic" or (style is None and secret is None and "username" in section and "password" in section):
        if "username" in section and "password" in section:
            return {"type": "http_basic", "username": section["username"],
                    "password": ref(source, "password")}, {"username", "password"}
        result.notes.append("auth_type basic needs username and password in the section; no auth imported")
        return None, set()
    if secret is None:
        if style:
            result.notes.append(f"auth_type {auth_type} but the section holds no token or key; no auth imported")
        return None, set()
    if style == "bearer" or (style is None and used & {"token", "access_token"}):
        return {"type": "bearer", "token": secret}, used
    auth = {"type": "api_key", "api_key": secret, "name": header_name or name or "Authorization",
            "location": "query" if auth_type == "query" else location or "header"}
    if auth["name"] == "Authorization" and not (header_name or name):
        result.notes.append("the api key is sent in the header Authorization (the section names no other); if "
                            "the API expects its own header, add api_key_header = \"<its name>\"")
    if auth["location"] == "header":
        del auth["location"]
    return auth, used


def _secret_of(source: str, section: dict[str, Any], params: dict[str, Any],
               headers: dict[str, Any]) -> tuple[str | None, set[str], str | None, str | None]:
    """(reference, keys used, header / parameter name, location) of the section's credential."""
    for key in SECRET_VALUE_KEYS:
        if key in section and not isinstance(section[key], dict):
            return ref(source, key), {key}, None, None
    for key in section:
        if "-" in key and SENSITIVE.search(key) and not isinstance(section[key], dict):
            return ref(source, key), {key}, key, "header"
    for name in headers:
        if SENSITIVE.search(name):
            return ref(source, "headers", name), {f"headers.{name}"}, name, "header"
    for name in params:
        if SENSITIVE.search(name):
            return ref(source, "params", name), {f"params.{name}"}, name, "query"
    return None, set(), None, None


def _plain_header(source: str, name: str, value: Any, result: RestConnection) -> None:
    if SENSITIVE.search(name):
        result.dropped[f"headers.{name}"] = "a second credential header; one connection has one auth"
        return
    result.connection.setdefault("headers", {})[name] = text(value)


def _plain_param(source: str, name: str, value: Any, result: RestConnection) -> None:
    if SENSITIVE.search(name):
        result.dropped[f"params.{name}"] = "a second credential parameter; one connection has one auth"
        return
    if isinstance(value, (dict, list)):
        result.dropped[f"params.{name}"] = "a nested value is not a query parameter"
        return
    result.params[name] = value


def _rate_limit(rows: list[dict[str, Any]], result: RestConnection) -> None:
    rates = [r["rate_limit"] for r in rows if r.get("rate_limit")]
    if not rates:
        return
    raw, per_second = min(rates, key=lambda r: r[1])
    result.connection["rate_limit_per_second"] = round(per_second, 6)
    result.notes.append(f"rate_limit '{raw}' -> rate_limit_per_second {round(per_second, 6)} (a bare number is "
                        "read as requests per second; write 30/min in the sheet for per minute)")
    if len({r[1] for r in rates}) > 1:
        result.notes.append("the rows give different rate_limit values; the source keeps the lowest")


def _why_unused(key: str, value: Any) -> str:
    if isinstance(value, dict):
        return "a subsection the import does not know (known: params, headers)"
    if SENSITIVE.search(key):
        return "a second credential; one connection has one auth"
    return "not a setting of an api source (base_url, token, api_key, api_key_header, username, password, params, " \
           "headers)"


def apply_rows(tables: list[dict[str, Any]], rows: list[dict[str, Any]], params: dict[str, Any]) -> list[str]:
    """The section's params onto every resource, and page_size where the paginator is not
    offset; returns what the user should know."""
    notes = []
    for table, extras in zip(tables, rows, strict=True):
        if params:
            table["params"] = {**params, **table.get("params", {})}
        size = extras.get("page_size")
        paginator = table.get("paginator", {}).get("type")
        if size is None or paginator == "offset":
            continue
        if paginator == "single_page":
            notes.append(f"table {table['name']}: page_size {size} left out (pagination_type none has no pages)")
            continue
        key = next((k for k in SIZE_PARAMS if k in table.get("params", {})), "per_page")
        table.setdefault("params", {})[key] = size
        notes.append(f"table {table['name']}: page_size {size} sent as the query parameter {key}")
    return notes
