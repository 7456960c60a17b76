"""REST API sources: auth styles, paginators and resources. Names follow dlt's rest_api config
(``type`` literals, ``data_selector``, ``include_from_parent``) so a dlt user feels at home.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ingestion_core.config.models.base import (
    ConfigModel,
    Identifier,
    SecretRef,
    check_credential_keys,
    check_headers,
    iso_dates,
    url_credential_problem,
)
from ingestion_core.config.models.tables import TableBase
from ingestion_core.config.secrets import mask

DEFAULT_MAX_PAGES = 10_000


# --- auth ----------------------------------------------------------------------------------

class BearerAuth(ConfigModel):
    type: Literal["bearer"] = Field(description="Authorization: Bearer <token>.")
    token: SecretRef = Field(description="Reference to the token.")


class HttpBasicAuth(ConfigModel):
    type: Literal["http_basic"] = Field(description="HTTP basic authentication.")
    username: str = Field(description="User name (plain text or a reference).")
    password: SecretRef = Field(description="Reference to the password.")


class ApiKeyAuth(ConfigModel):
    type: Literal["api_key"] = Field(description="An API key in a header, query parameter or cookie.")
    name: str = Field("Authorization", description="Header, parameter or cookie name, e.g. X-API-Key.")
    location: Literal["header", "query", "cookie"] = Field("header", description="Where the key is sent.")
    api_key: SecretRef = Field(description="Reference to the key.")


class OAuth2ClientCredentials(ConfigModel):
    type: Literal["oauth2_client_credentials"] = Field(description="OAuth 2 client-credentials flow.")
    access_token_url: str = Field(description="Token endpoint URL.")
    client_id: str = Field(description="Client id (plain text or a reference).")
    client_secret: SecretRef = Field(description="Reference to the client secret.")
    scopes: list[str] = Field(default_factory=list, description="Scopes to request.")
    access_token_request_data: dict[str, str] = Field(
        default_factory=dict, description="Extra form fields sent to the token endpoint (e.g. audience)."
    )

    _token_url = field_validator("access_token_url")(lambda v: check_http_url(v, "access_token_url"))
    _request_data = field_validator("access_token_request_data")(
        lambda v: check_credential_keys(v, "access_token_request_data")
    )


RestAuth = Annotated[
    BearerAuth | HttpBasicAuth | ApiKeyAuth | OAuth2ClientCredentials, Field(discriminator="type")
]


# --- paginators ----------------------------------------------------------------------------

class PaginatorBase(ConfigModel):
    maximum_pages: int = Field(
        DEFAULT_MAX_PAGES, ge=1,
        description="Stop after this many pages even if the API offers more (a guard against "
        "APIs that never stop).",
    )


class SinglePage(PaginatorBase):
    type: Literal["single_page"] = Field(description="The endpoint returns everything at once.")


class OffsetPaginator(PaginatorBase):
    type: Literal["offset"] = Field(description="?offset=0&limit=100, then offset=100, ...")
    limit: int = Field(100, ge=1, description="Records per page.")
    offset_param: str = Field("offset", description="Name of the offset parameter.")
    limit_param: str = Field("limit", description="Name of the limit parameter.")
    total_path: str | None = Field(None, description="Path of the total record count in the body, e.g. 'total'.")
    has_more_path: str | None = Field(None, description="Path of a has-more flag in the body.")
    maximum_offset: int | None = Field(None, ge=1, description="Stop at this offset.")
    stop_after_empty_page: bool = Field(True, description="Stop at the first page with no records.")


class PageNumberPaginator(PaginatorBase):
    type: Literal["page_number"] = Field(description="?page=1, ?page=2, ...")
    base_page: int = Field(1, ge=0, description="Number of the first page.")
    page_param: str = Field("page", description="Name of the page parameter.")
    total_path: str | None = Field(None, description="Path of the total page count in the body.")
    has_more_path: str | None = Field(None, description="Path of a has-more flag in the body.")
    maximum_page: int | None = Field(None, ge=1, description="Stop at this page number.")
    stop_after_empty_page: bool = Field(True, description="Stop at the first page with no records.")


class CursorPaginator(PaginatorBase):
    type: Literal["cursor"] = Field(description="Each page names the cursor of the next one.")
    cursor_location: Literal["body", "header"] = Field("body", description="Where the next cursor is found.")
    cursor_path: str = Field("cursors.next", description="Path in the body (or header name) of the next cursor.")
    cursor_param: str = Field("cursor", description="Query parameter the cursor is sent in.")
    has_more_path: str | None = Field(None, description="Path of a has-more flag in the body (cursor in the body).")
    stop_after_empty_page: bool = Field(
        False, description="Stop at the first page with no records (cursor in the body)."
    )

    @model_validator(mode="after")
    def _body_options_need_body(self) -> CursorPaginator:
        if self.cursor_location == "header" and (self.has_more_path or self.stop_after_empty_page):
            raise PydanticCustomError(
                "header_cursor_option",
                "has_more_path and stop_after_empty_page apply to a cursor in the body; remove them or "
                "set cursor_location: body",
                {"at": "cursor_location"},
            )
        return self


class JsonLinkPaginator(PaginatorBase):
    type: Literal["json_link"] = Field(description="The body holds the URL of the next page.")
    next_url_path: str = Field("next", description="Path of the next page's URL in the body.")


class HeaderLinkPaginator(PaginatorBase):
    type: Literal["header_link"] = Field(description="A Link header names the next page (GitHub style).")
    links_next_key: str = Field("next", description="rel of the next link.")


Paginator = Annotated[
    SinglePage | OffsetPaginator | PageNumberPaginator | CursorPaginator | JsonLinkPaginator
    | HeaderLinkPaginator,
    Field(discriminator="type"),
]
PAGINATOR_TYPES = ("single_page", "offset", "page_number", "cursor", "json_link", "header_link")


class ResponseAction(ConfigModel):
    status_code: int | None = Field(None, ge=100, le=599, description="HTTP status this action applies to.")
    content: str | None = Field(None, description="Text the response body contains.")
    action: Literal["ignore"] = Field("ignore", description="ignore: treat the response as no records.")

    @model_validator(mode="after")
    def _has_condition(self) -> ResponseAction:
        if self.status_code is None and self.content is None:
            raise PydanticCustomError("no_condition", "a response action needs status_code, content or both")
        return self


class RestResource(TableBase):
    """One endpoint; its records become one table."""

    yaml_example: ClassVar[str | None] = "{name: orders, path: orders}"

    path: str = Field(min_length=1, description="Path under base_url, e.g. 'orders' or 'users/{id}/posts'.")
    method: Literal["GET", "POST"] = Field("GET", description="HTTP method.")
    params: dict[str, Any] = Field(default_factory=dict, description="Query parameters.")
    json_body: dict[str, Any] | None = Field(None, alias="json", description="JSON body (POST).")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers for this resource.")
    data_selector: str | None = Field(
        None, description="Path of the record list in the body, e.g. 'data.items'. Detected when left out."
    )
    paginator: Paginator | None = Field(None, description="Overrides the source's paginator.")
    cursor_param: str | None = Field(
        None, description="Query parameter that receives the last cursor value (incremental mode)."
    )
    parent: Identifier | None = Field(None, description="Resource whose records fill {placeholders} in path.")
    include_from_parent: list[str] = Field(
        default_factory=list, description="Parent fields copied into each child record."
    )
    response_actions: list[ResponseAction] = Field(
        default_factory=list, description="How to treat special responses, e.g. ignore 404."
    )

    _headers = field_validator("headers")(check_headers)
    _params = field_validator("params")(lambda v: check_credential_keys(iso_dates(v), "params"))
    _body = field_validator("json_body")(lambda v: check_credential_keys(iso_dates(v), "json"))

    @model_validator(mode="after")
    def _parent_fits(self) -> RestResource:
        if self.parent == self.name:
            raise _resource_error("own_parent", "resource '{name}' cannot be its own parent; name another "
                                  "resource in parent or remove it", "parent", name=self.name)
        if self.parent is None:
            fields = sorted(parent_fields(self))
            if fields:
                raise _resource_error(
                    "placeholder_without_parent",
                    "'{name}' uses {placeholder} but has no parent to fill it from: set parent to the resource "
                    "whose records hold {field} (e.g. parent: users for the path users/{placeholder}/posts), or "
                    "write literal braces as {literal}",
                    "parent", name=self.name, field=fields[0], placeholder="{" + fields[0] + "}",
                    literal="{{ and }}")
            if self.include_from_parent:
                raise _resource_error("include_without_parent", "include_from_parent needs a parent; set "
                                      "parent or remove include_from_parent", "include_from_parent")
        if self.cursor_param and not self.cursor:
            raise _resource_error("cursor_param_without_cursor", "cursor_param '{param}' needs cursor: the record "
                                  "field whose last value is sent in it (e.g. cursor: updated_at)", "cursor",
                                  param=self.cursor_param)
        return self


PLACEHOLDER = re.compile(r"(?<![{$])\{([A-Za-z_][A-Za-z0-9_.]*)\}(?!\})")
"""``{field}`` in a path, parameter or body; ``{{`` / ``}}`` are literal braces, ``${...}`` a secret reference."""
CONTEXTS = ("incremental.", "resources.")


def parent_fields(resource: RestResource) -> set[str]:
    """The parent fields a resource's path, params and body refer to as ``{field}``."""
    texts = [resource.path, *_strings(resource.params), *_strings(resource.json_body)]
    return {m for text in texts for m in PLACEHOLDER.findall(text) if not m.startswith(CONTEXTS)}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _resource_error(kind: str, message: str, at: str, **context: Any) -> PydanticCustomError:
    return PydanticCustomError(kind, message, {**context, "at": at})


class RestApiConnection(ConfigModel):
    """Connection part of a REST source (resources are its tables)."""

    base_url: str = Field(description="Common prefix of every endpoint, e.g. https://api.example.com/v1/.")
    headers: dict[str, str] = Field(default_factory=dict, description="Headers sent with every request.")
    auth: RestAuth | None = Field(None, description="How requests authenticate.")
    paginator: Paginator | None = Field(
        None, description="How pages are followed. Detected from the first response when left out."
    )
    timeout_seconds: float = Field(30.0, gt=0, le=3600, description="Timeout of every request.")
    rate_limit_per_second: float | None = Field(None, gt=0, description="Most requests per second.")
    retry_attempts: int = Field(5, ge=0, le=20, description="Retries on 429, 5xx and connection errors.")
    retry_backoff_seconds: float = Field(1.0, ge=0, description="First wait between retries; doubles each time.")
    retry_max_wait_seconds: float = Field(
        300.0, ge=0, le=3600,
        description="Longest wait between retries; a longer Retry-After from the API is cut to it.",
    )

    _headers = field_validator("headers")(check_headers)

    _base_url = field_validator("base_url")(lambda v: check_http_url(v, "base_url"))


def check_http_url(value: str, field: str) -> str:
    """An http(s) URL without literal credentials in it."""
    if not value.startswith(("http://", "https://")):
        raise PydanticCustomError(
            "bad_url", "{field} '{value}' must start with http:// or https://, e.g. https://api.example.com/v1/",
            {"field": field, "value": mask(value[:200])},
        )
    problem = url_credential_problem(value)
    if problem:
        raise PydanticCustomError(
            "secret_literal",
            "{field} holds {problem}; remove it from the URL and use auth (e.g. type: api_key with "
            "location: query and api_key: ${secrets.<source>.api_key})",
            {"field": field, "problem": problem},
        )
    return value
