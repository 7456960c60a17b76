"""REST APIs through dlt's ``rest_api`` source and REST client: one resource per table.

A table of a ``rest_api`` source becomes an entry of dlt's ``RESTAPIConfig``; a child table
(``parent:``) brings its ancestors along, so dlt fills ``{field}`` in its path, params and body
from each parent record (the ancestors are read, not loaded: they are tables of their own).
A child always reads all of its parent's records; only the child's own cursor is incremental.

What dlt does not do by itself, this module adds:

- the session: a timeout on every request, retries with backoff and Retry-After, a rate
  limit (:mod:`ingestion_core.engine.sources.rest_client`);
- a :class:`~ingestion_core.engine.sources.rest_client.PageGuard` around every paginator: a page cap and
  repeated-records / repeated-link detection, raised inside the extract, so a table that stopped
  for that reason fails with the reason and loads nothing of the run;
- one retry budget per table: the session's request retries; after the table, the retries used
  are written to the run record (``request_retries``);
- previews read only the pages needed for ``limit`` rows, however large the API.

Example (what the runner does for one table)::

    ctx = BuildContext(config, config.tables[0], config.settings_for(config.tables[0]), "duckdb")
    resource = get_source_kind("rest_api").resource(ctx)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from ingestion_core.config.models.rest import CONTEXTS, PLACEHOLDER, RestResource
from ingestion_core.config.models.source_file import SourceFileBase
from ingestion_core.config.secrets import resolve_value
from ingestion_core.engine.sources import (
    BuildContext,
    ConnectionReport,
    lookback_lag,
    reads_incrementally,
    register_source,
)
from ingestion_core.engine.sources.rest_client import (
    PagingLog,
    PagingStoppedError,
    build_auth,
    build_paginator,
    guard,
    http_session,
)

__all__ = ["PagingStoppedError", "RestConfigError", "RestSource", "rest_api_config"]


class RestConfigError(ValueError):
    """The tables of a REST source do not fit together (e.g. a parent that does not exist)."""


@register_source("rest_api")
class RestSource:
    def resource(self, ctx: BuildContext) -> Any:
        import dlt
        from dlt.sources.rest_api import rest_api_resources

        _register_paging_check()
        table: RestResource = ctx.table  # type: ignore[assignment]
        log = PagingLog(table.name)
        _remember_log(ctx.config.name, table.name, log)  # before the config: a missing secret is a failure too
        resources = rest_api_resources(rest_api_config(ctx.config, table, log, reads_incrementally(ctx)))
        resource = next(r for r in resources if r.name == table.name)
        if ctx.limit:
            # add_limit counts pages and does not limit child resources: take the first rows here
            resource = dlt.resource(first_rows(resource, ctx.limit, table.name, ctx.cancel), name=table.name)
        elif arrow_path(ctx):
            from ingestion_core.engine.sources.rest_arrow import arrow_resource

            return arrow_resource(resource, table.name, ctx.pipeline, ctx.cancel,
                                  table.cursor if reads_incrementally(ctx) else None)
        resource.backend = "rest_api"  # type: ignore[attr-defined]
        return resource

    def test_connection(self, config: SourceFileBase) -> ConnectionReport:
        from ingestion_core.engine.sources.rest_preview import connection_report

        return connection_report(config)


ARROW_MODES = ("full", "append", "incremental")
"""Modes whose tables go through dlt's Arrow path (merge and scd2 stay on the JSON path: their
child tables need dlt's root ids and row hashes)."""
ARROW_DESTINATIONS = {("duckdb", "parquet"), ("filesystem", "parquet")}
"""(destination type, loader file format) the Arrow path is proven on (tests/integration/
test_rest_arrow.py: the same tables and rows as the JSON path); filesystem parquet covers Delta
tables too. JSONL files and Databricks stay on the JSON path."""


def arrow_path(ctx: BuildContext) -> bool:
    """A full read of a replace / append table into DuckDB, Parquet or Delta files, with schema
    evolution ``evolve`` and no lookback: on by default (``INGEST_REST_ARROW=0`` turns it off),
    unless the runner fell back to dicts."""
    from ingestion_core.common import settings

    return (settings.rest_arrow() and ctx.backend_override != "dicts" and bool(ctx.pipeline)
            and (ctx.destination_type, ctx.file_format) in ARROW_DESTINATIONS and ctx.settings.mode in ARROW_MODES
            and not ctx.table.lookback and ctx.settings.schema_evolution == "evolve")


# --- dlt's RESTAPIConfig from the models ---------------------------------------------------

def rest_api_config(config: SourceFileBase, table: RestResource, log: PagingLog, incremental: bool) -> dict[str, Any]:
    """dlt's ``RESTAPIConfig`` for one table and its ancestors, secrets resolved (never log it)."""
    source = config.source
    session = http_session(source, config.name, log=log)  # type: ignore[arg-type]
    client: dict[str, Any] = {"base_url": source.base_url, "session": session}  # type: ignore[attr-defined]
    if source.headers:  # type: ignore[attr-defined]
        client["headers"] = resolve_value(dict(source.headers))  # type: ignore[attr-defined]
    if source.auth is not None:  # type: ignore[attr-defined]
        client["auth"] = build_auth(source.auth, session)  # type: ignore[attr-defined]
    chain = resource_chain(config, table)
    return {"client": client, "resources": [
        endpoint_resource(config, item, log, incremental and item is table) for item in chain
    ]}


def resource_chain(config: SourceFileBase, table: RestResource) -> list[RestResource]:
    """The table with its ancestors, root first."""
    by_name = {t.name: t for t in config.tables}  # type: ignore[attr-defined]
    chain = [table]
    while chain[0].parent:
        parent = by_name.get(chain[0].parent)
        if parent is None:
            raise RestConfigError(
                f"table '{chain[0].name}' has parent '{chain[0].parent}', but the source has no table of that "
                f"name; its tables are {', '.join(by_name)}. Set parent to one of them"
            )
        if parent in chain:
            raise RestConfigError(f"tables {', '.join(t.name for t in chain)} are each other's parents; "
                                  "remove parent from one of them")
        chain.insert(0, parent)
    return chain


def endpoint_resource(config: SourceFileBase, table: RestResource, log: PagingLog, incremental: bool) -> dict[str, Any]:
    """One entry of ``resources`` in dlt's config."""
    from dlt.common.jsonpath import compile_path
    from dlt.sources.helpers.rest_client.detector import single_entity_path
    from dlt.sources.helpers.rest_client.paginators import SinglePagePaginator

    parent = table.parent
    model = table.paginator or config.source.paginator  # type: ignore[attr-defined]
    inner = build_paginator(model)
    if model is None and single_entity_path(table.path):
        inner = SinglePagePaginator()  # what dlt picks for users/{id}; the guard replaces its own choice
    endpoint: dict[str, Any] = {
        "path": fill_from_parent(table.path, parent), "method": table.method,
        "params": fill_from_parent(resolve_value(dict(table.params)), parent),
        "paginator": guard(inner, model, log, table.name, tuple(table.primary_key or ())),
    }
    if table.data_selector:
        endpoint["data_selector"] = compile_path(table.data_selector)  # dlt would parse the text on every page
    if table.headers:
        endpoint["headers"] = fill_from_parent(resolve_value(dict(table.headers)), parent)
    if table.json_body is not None:
        endpoint["json"] = fill_from_parent(resolve_value(table.json_body), parent)
    if table.response_actions:
        endpoint["response_actions"] = [a.model_dump(exclude_none=True) for a in table.response_actions]
    if incremental:
        endpoint["incremental"] = {"cursor_path": table.cursor, "initial_value": table.initial_value}
        if table.cursor_param:
            endpoint["incremental"]["start_param"] = table.cursor_param
        if table.lookback:
            endpoint["incremental"]["lag"] = lookback_lag(table, table.initial_value)
    resource: dict[str, Any] = {"name": table.name, "endpoint": endpoint}
    if parent and table.include_from_parent:
        resource["include_from_parent"] = list(table.include_from_parent)
    return resource


def fill_from_parent(value: Any, parent: str | None) -> Any:
    """``{id}`` -> ``{resources.<parent>.id}``, dlt's syntax for a parent record's field."""
    if parent is None:
        return value
    if isinstance(value, str):
        return PLACEHOLDER.sub(
            lambda m: m[0] if m[1].startswith(CONTEXTS) else "{resources." + parent + "." + m[1] + "}", value
        )
    if isinstance(value, dict):
        return {k: fill_from_parent(v, parent) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_from_parent(v, parent) for v in value]
    return value


def first_rows(resource: Any, limit: int, name: str, cancel: threading.Event | None = None) -> Iterator[list[Any]]:
    """The first ``limit`` rows of a resource as one batch (the preview's one chunk: its
    ``add_limit(1)``); no page past them is requested, nor once ``cancel`` is set (checked before
    every row: a slow API's test run stops at its next page, not at the limit)."""
    from ingestion_core.common.cancellation import raise_if_cancelled

    rows: list[Any] = []
    iterator = iter(resource)
    try:
        for row in iterator:
            if cancel is not None:
                raise_if_cancelled(cancel, name)
            rows.append(row)
            if len(rows) >= limit:
                break
    finally:
        close = getattr(iterator, "close", None)
        if close:
            close()
    if rows:
        yield rows


# --- after the table: what the paginators and the session did -----------------------------

_LOGS: dict[tuple[str, str, int], PagingLog] = {}
_LOGS_LOCK = threading.Lock()
_HOOK_LOCK = threading.Lock()


def _remember_log(source: str, table: str, log: PagingLog) -> None:
    # the runner builds, extracts and runs the after-table hooks of a table in one thread; a
    # second attempt of the table carries the requests of the first over (one budget, one count);
    # logs of threads that ended (a cancelled run) are dropped here
    alive = {t.ident for t in threading.enumerate()}
    key = (source, table, threading.get_ident())
    with _LOGS_LOCK:
        for stale in [k for k in _LOGS if k[2] not in alive]:
            del _LOGS[stale]
        earlier = _LOGS.get(key)
        if earlier is not None:
            log.sent(tries=earlier.tries, requests=earlier.requests)
        _LOGS[key] = log


def _register_paging_check() -> None:
    from ingestion_core.engine import hooks

    with _HOOK_LOCK:
        if check_paging not in hooks.AFTER_TABLE_LOAD:
            hooks.AFTER_TABLE_LOAD.append(check_paging)
        if count_failed_requests not in hooks.AFTER_TABLE_FAILED:
            hooks.AFTER_TABLE_FAILED.append(count_failed_requests)


def _take_log(plan: Any, table: Any, result: Any) -> PagingLog | None:
    with _LOGS_LOCK:
        log = _LOGS.pop((plan.config.name, table.name, threading.get_ident()), None)
    if log is not None:
        result.request_retries = log.retries
    return log


def check_paging(pipeline: Any, plan: Any, table: Any, result: Any) -> None:
    """Log what the paginators did (and a warning for a configured ``maximum_pages`` that cut
    the API short); record the request retries. Loops and the default page cap never get here:
    the guard raised during the extract (:class:`PagingStoppedError`)."""
    from ingestion_core.observe.run_log import LOGGER

    log = _take_log(plan, table, result)
    if log is None:
        return
    for resource, pages in log.pages.items():
        LOGGER.info("%s: %s read %d page(s), %d record(s) with %s", table.name, resource, pages,
                    log.records.get(resource, 0), log.paginators.get(resource))
    for stop in log.stops:
        LOGGER.warning("%s: %s stopped at maximum_pages (%d) as configured; the API offered more after %s",
                       table.name, stop.resource, stop.page, stop.url)


def count_failed_requests(plan: Any, table: Any, result: Any) -> None:
    """After a failed table: the request retries it used, for the run record."""
    _take_log(plan, table, result)
