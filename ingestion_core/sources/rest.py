"""REST APIs through dlt's ``rest_api`` source and REST client: one resource per table.

A table of a ``rest_api`` source becomes an entry of dlt's ``RESTAPIConfig``; a child table
(``parent:``) brings its ancestors along, so dlt fills ``{field}`` in its path, params and body
from each parent record (the ancestors are read, not loaded: they are tables of their own).
A child always reads all of its parent's records; only the child's own cursor is incremental.

What dlt does not do by itself, this module adds:

- the session: a timeout on every request, retries with backoff and Retry-After, a rate
  limit (:mod:`ingestion_core.rest_client`);
- a :class:`~ingestion_core.rest_client.PageGuard` around every paginator: a page cap and
  repeated-page / repeated-link detection; after the load, a table that stopped for that
  reason fails with the reason (its rows stay loaded, none twice);
- previews read only the pages needed for ``limit`` rows, however large the API.

Example (what the runner does for one table)::

    ctx = BuildContext(config, config.tables[0], config.settings_for(config.tables[0]), "duckdb")
    resource = get_source_kind("rest_api").resource(ctx)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from ingestion_core.models.rest import CONTEXTS, PLACEHOLDER, RestResource
from ingestion_core.models.source_file import SourceFileBase
from ingestion_core.rest_client import PagingLog, PagingStop, build_auth, build_paginator, guard, http_session
from ingestion_core.secrets import resolve_value
from ingestion_core.sources import BuildContext, ConnectionReport, lookback_lag, reads_incrementally, register_source


class PagingStoppedError(RuntimeError):
    """A resource stopped following pages because the API repeated itself or the page cap was
    hit; the pages read before were loaded (once)."""


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
        resources = rest_api_resources(rest_api_config(ctx.config, table, log, reads_incrementally(ctx)))
        resource = next(r for r in resources if r.name == table.name)
        _remember_log(ctx.config.name, table.name, log)
        if ctx.limit:
            # add_limit counts pages and does not limit child resources: take the first rows here
            resource = dlt.resource(first_rows(resource, ctx.limit), name=table.name)
        resource.backend = "rest_api"  # type: ignore[attr-defined]
        return resource

    def test_connection(self, config: SourceFileBase) -> ConnectionReport:
        from ingestion_core.rest_preview import connection_report

        return connection_report(config)


# --- dlt's RESTAPIConfig from the models ---------------------------------------------------

def rest_api_config(config: SourceFileBase, table: RestResource, log: PagingLog, incremental: bool) -> dict[str, Any]:
    """dlt's ``RESTAPIConfig`` for one table and its ancestors, secrets resolved (never log it)."""
    source = config.source
    session = http_session(source, config.name)  # type: ignore[arg-type]
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
        "paginator": guard(inner, model, log, table.name),
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


def first_rows(resource: Any, limit: int) -> Iterator[list[Any]]:
    """The first ``limit`` rows of a resource as one batch; no page past them is requested."""
    rows: list[Any] = []
    iterator = iter(resource)
    try:
        for row in iterator:
            rows.append(row)
            if len(rows) >= limit:
                break
    finally:
        close = getattr(iterator, "close", None)
        if close:
            close()
    if rows:
        yield rows


# --- after the load: a resource that stopped paging early fails its table ------------------

_LOGS: dict[tuple[str, str, int], PagingLog] = {}
_LOGS_LOCK = threading.Lock()
_HOOK_LOCK = threading.Lock()


def _remember_log(source: str, table: str, log: PagingLog) -> None:
    # the runner builds, extracts and runs the after-load hooks of a table in one thread;
    # logs of threads that ended (a failed extract never reaches the hook) are dropped here
    alive = {t.ident for t in threading.enumerate()}
    with _LOGS_LOCK:
        for key in [k for k in _LOGS if k[2] not in alive]:
            del _LOGS[key]
        _LOGS[(source, table, threading.get_ident())] = log


def _register_paging_check() -> None:
    from ingestion_core import runner

    with _HOOK_LOCK:
        if check_paging not in runner.AFTER_TABLE_LOAD:
            runner.AFTER_TABLE_LOAD.append(check_paging)


def check_paging(pipeline: Any, plan: Any, table: Any, result: Any) -> None:
    """Log what the paginators did; raise :class:`PagingStoppedError` when a resource stopped
    early (a repeated page or link, or the default page cap), so the table ends failed with the
    reason while the rows it read stay loaded."""
    from ingestion_core.run_log import LOGGER

    with _LOGS_LOCK:
        log = _LOGS.pop((plan.config.name, table.name, threading.get_ident()), None)
    if log is None:
        return
    for resource, pages in log.pages.items():
        LOGGER.info("%s: %s read %d page(s), %d record(s) with %s", table.name, resource, pages,
                    log.records.get(resource, 0), log.paginators.get(resource))
    problems = []
    for stop in log.stops:
        if stop.kind == "page_cap" and stop.explicit_cap:
            LOGGER.warning("%s: %s stopped at maximum_pages (%d) as configured; the API offered more",
                           table.name, stop.resource, stop.page)
        else:
            problems.append(stop)
    if problems:
        raise PagingStoppedError(paging_message(problems[0], table.name, len(problems)))


def paging_message(stop: PagingStop, table: str, count: int) -> str:
    where = f"'{stop.resource}'" + ("" if stop.resource == table else f" (parent of '{table}')")
    more = f" ({count - 1} more stop(s) like it in the run log)" if count > 1 else ""
    if stop.kind == "page_cap":
        return (f"{where} stopped at page {stop.page}, the default page cap, while the API still offered "
                f"more ({stop.url}); the {stop.page} pages read were loaded. If the API really has more, set "
                f"paginator.maximum_pages higher{more}")
    fix = ("the API seems to ignore the paginator's parameter: check the paginator settings (the parameter "
           "names, e.g. offset_param / page_param / cursor_param) against the API's documentation")
    return (f"{where} stopped at page {stop.page}: {stop.detail} ({stop.url}). The pages before were loaded "
            f"once; {fix}{more}")
