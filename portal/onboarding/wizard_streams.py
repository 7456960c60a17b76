"""Step 3 of the source form for databases: one table of every schema's tables and views, as an
Airbyte or Fivetran user expects. A search box, "select all", and per row: load it or not, the
estimated rows, the mode, the cursor (orderable columns only), the primary key, and "More" with
the table's other settings. Every widget writes into the draft's ``tables:`` on change."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import streamlit as st

from ingestion_core import onboarding
from ingestion_core.onboarding import Discovered, review
from portal.onboarding.widgets import (
    WIDGET_PREFIX,
    FormContext,
    render_fields,
    reset_widgets,
    seed,
    show_issues,
    widget_key,
)
from portal.shared.markdown import md_escape

STATE_KEY = "editor"
MODES = ("full", "append", "incremental", "merge", "scd2")
ROW = [0.35, 2.2, 0.9, 4.6]  # load, table, rows, mode; a second line under the mode: cursor or key, more
SETTINGS = [3.2, 1.4]
# One line of six columns does not fit a 1280 px window (820 px of page): the five mode buttons
# need ~370 px, "updated_at · TIMESTAMP" ~240 px. tests/browser/test_wizard_layout.py checks it.
ROW_OWNED = ("name", "schema", "mode", "cursor", "primary_key", "checks")


def _state() -> Any:
    return st.session_state[STATE_KEY]


def _slug(text: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "-", str(text)).strip("-") or "x"


def _tables(state: Any) -> list[Any]:
    tables = state.draft.data.get("tables")
    if not isinstance(tables, list):
        tables = state.draft.data["tables"] = []
    return tables


# --- discovery of every schema --------------------------------------------------------------

def discovered(state: Any) -> tuple[list[Any], list[str]]:
    """Every table and view of every user schema (discovered once per connection), and the
    problems met on the way."""
    draft = state.draft
    fingerprint = onboarding.connection_fingerprint(draft)
    if state.schemas is None or state.schemas_for != fingerprint:
        with st.spinner("Looking up the schemas...", show_time=True):
            state.schemas = onboarding.discover_schemas(draft, onboarding.call_timeout())
        state.schemas_for = fingerprint
    if not state.schemas.ok:
        return [], [f"{state.schemas.error} ({state.schemas.hint})"]
    found, problems = [], []
    for schema in state.schemas.items:
        tables = tables_of(state, schema, fingerprint)
        found += tables.items
        if not tables.ok:
            problems.append(f"{schema}: {tables.error} ({tables.hint})")
    return found, problems


def entry_schema(kind: str | None, schema: str | None) -> str | None:
    return None if kind == "sqlite" else schema


def tables_of(state: Any, schema: str | None, fingerprint: str) -> Discovered:
    key = f"{fingerprint}|{schema}"
    if key not in state.tables_found:
        with st.spinner(f"Looking up the tables of {schema or 'the database'}...", show_time=True):
            state.tables_found[key] = onboarding.discover_tables(state.draft, schema, onboarding.call_timeout())
        for table in state.tables_found[key].items:
            state.infos[(entry_schema(state.draft.source_type, schema), table.name)] = table
    return state.tables_found[key]


def index_of(state: Any, info: Any) -> int | None:
    kind = state.draft.source_type
    for index, entry in enumerate(_tables(state)):
        if not isinstance(entry, dict):
            continue
        name = entry.get("source_table") or entry.get("name")
        same_schema = kind == "sqlite" or entry.get("schema") == info.schema
        if name == info.name and same_schema:
            return index
    return None


# --- the table --------------------------------------------------------------------------------

def render(state: Any, ctx: FormContext) -> None:
    found, problems = discovered(state)
    for problem in problems:
        st.error(f"**Could not list the tables.** {md_escape(problem)}", icon=":material/error:")
    if problems:
        st.button("Try again", key="wiz-rediscover", icon=":material/refresh:", on_click=forget_discovery)
    if not found and not problems:
        st.info("The database has no tables or views in any schema this user may read.", icon=":material/info:")
    if found:
        _table(state, ctx, found)


def forget_discovery() -> None:
    state = _state()
    state.schemas = None
    state.tables_found.clear()


def _table(state: Any, ctx: FormContext, found: list[Any]) -> None:
    schemas = sorted({t.schema or "" for t in found})
    search, pick_all = st.columns([3, 1], vertical_alignment="bottom")
    wanted = search.text_input("Search tables", key="wiz-stream-search", placeholder="part of a name",
                               live="300ms", label_visibility="collapsed")
    shown = [t for t in found if (wanted or "").lower() in f"{t.schema or ''}.{t.name}".lower()]
    chosen = [t for t in shown if index_of(state, t) is not None]
    st.session_state["wiz-stream-all"] = bool(shown) and len(chosen) == len(shown)
    pick_all.checkbox(f"Select all {len(shown)}", key="wiz-stream-all", on_change=_select_all, args=(shown,))
    st.caption(f"{len(found)} tables and views in {len(schemas)} schema(s): {md_escape(', '.join(schemas))}. "
               f"{len(_tables(state))} chosen. Mode: {md_escape(_mode_help())}")
    header = st.columns(ROW, vertical_alignment="bottom")
    for column, title in zip(header, ("", "Table", "Rows (est.)", "Mode; cursor or primary key"), strict=True):
        column.markdown(f"**{title}**")
    for info in shown:
        _row(state, ctx, info)


def _mode_help() -> str:
    from ingestion_core.config.models.tables import MODE_HELP

    return MODE_HELP


def _row(state: Any, ctx: FormContext, info: Any) -> None:
    index = index_of(state, info)
    slug = f"{_slug(info.schema)}-{_slug(info.name)}"
    with st.container(key=f"wiz-row-{slug}"):
        load, name, rows, mode = st.columns(ROW, vertical_alignment="center")
        pick = f"wiz-pick-{slug}"
        seed(pick, index is not None)
        load.checkbox("Load", key=pick, label_visibility="collapsed", on_change=_toggle, args=(info, pick))
        title = f"{info.schema}.{info.name}" if info.schema and state.draft.source_type != "sqlite" else info.name
        name.markdown(f"**{md_escape(title)}**  \n{len(info.columns)} columns")
        rows.markdown("—" if info.row_estimate is None else f"~{info.row_estimate:,}")
        if index is None:
            return
        path = f"tables[{index}]"
        entry = _tables(state)[index]
        sub = replace(ctx, columns=list(info.columns), cursor_candidates=list(info.cursor_candidates),
                      choices={"schema": list(state.schemas.items) if state.schemas else []})
        with mode:
            _mode(state, path, entry)
        current = entry.get("mode") or _default_mode(state)
        cursor_or_key, more = st.columns(ROW)[-1].columns(SETTINGS, vertical_alignment="center")
        with cursor_or_key:
            if current == "incremental":
                _cursor(sub, path, entry, info)
            elif current in ("merge", "scd2"):
                _key(sub, path, entry)
            else:
                st.caption("no cursor or key needed")
        with more.popover("More", key=f"wiz-more-{slug}", help="This table's other settings"):
            _more(state, sub, path, info)
        show_issues(sub, path)


def _default_mode(state: Any) -> str:
    defaults = state.draft.data.get("defaults")
    return (defaults.get("mode") if isinstance(defaults, dict) else None) or "full"


def _mode(state: Any, path: str, entry: dict[str, Any]) -> None:
    key = widget_key(f"{path}.mode")
    seed(key, entry.get("mode") or _default_mode(state))
    st.segmented_control("Mode", MODES, key=key, required=True, label_visibility="collapsed",
                         on_change=_mode_changed, args=(path, key))


def _mode_changed(path: str, key: str) -> None:
    state = _state()
    entry = onboarding.get_path(state.draft.data, path)
    if isinstance(entry, dict):
        entry["mode"] = st.session_state.get(key) or _default_mode(state)
        for stale in ("cursor", "primary_key"):
            st.session_state.pop(widget_key(f"{path}.{stale}"), None)


def _cursor(ctx: FormContext, path: str, entry: dict[str, Any], info: Any) -> None:
    key = widget_key(f"{path}.cursor")
    current = entry.get("cursor")
    any_column = bool(st.session_state.get(widget_key(path, "any-cursor"))) or (
        current is not None and current not in info.cursor_candidates)
    names = [c.name for c in info.columns] if any_column else list(info.cursor_candidates)
    options: list[Any] = [None, *names]
    if current is not None and current not in options:
        options.append(current)
    types = {c.name: c.type for c in info.columns}
    seed(key, current if current in options else None)
    st.selectbox("Cursor", options, key=key, label_visibility="collapsed",
                 format_func=lambda c: "(choose)" if c is None else f"{c} · {types.get(c, '?')}",
                 on_change=_set, args=(path, "cursor", key),
                 help="The column that grows with every change: only timestamp, date and number columns are "
                      "offered. Another column needs 'Allow any column as cursor' under More.")
    warning = review.cursor_warning(info, current)
    if warning:
        st.warning(md_escape(warning), icon=":material/warning:")


def _key(ctx: FormContext, path: str, entry: dict[str, Any]) -> None:
    key = widget_key(f"{path}.primary_key")
    current = entry.get("primary_key")
    chosen = current if isinstance(current, list) else ([current] if isinstance(current, str) else [])
    names = [c.name for c in ctx.columns]
    seed(key, [c for c in chosen if c in names])
    st.multiselect("Primary key", names, key=key, label_visibility="collapsed", placeholder="(choose)",
                   on_change=_set, args=(path, "primary_key", key))


def _set(path: str, field: str, key: str) -> None:
    entry = onboarding.get_path(_state().draft.data, path)
    if not isinstance(entry, dict):
        return
    value = st.session_state.get(key)
    if value in (None, []):
        entry.pop(field, None)
    else:
        entry[field] = value


def _more(state: Any, ctx: FormContext, path: str, info: Any) -> None:
    st.checkbox("Allow any column as cursor", key=widget_key(path, "any-cursor"),
                help="A text column sorts as text ('10' before '9'): rows can be missed. Prefer a timestamp or "
                     "a number.")
    table_model = onboarding.table_model(state.draft.source_type)
    if table_model is not None:
        sub = replace(ctx, in_expander=True)
        render_fields(table_model, path, sub, skip=ROW_OWNED)


def _toggle(info: Any, key: str) -> None:
    state = _state()
    index = index_of(state, info)
    if st.session_state.get(key) and index is None:
        _add(state, info)
    elif not st.session_state.get(key) and index is not None:
        del _tables(state)[index]
    reset_widgets((WIDGET_PREFIX,))


def _add(state: Any, info: Any) -> None:
    kind = state.draft.source_type
    tables = _tables(state)
    entry = onboarding.table_entry(kind, info)
    if any(isinstance(e, dict) and e.get("name") == entry["name"] for e in tables):
        entry = {"name": f"{_slug(info.schema).lower()}_{info.name}", "source_table": info.name,
                 **{k: v for k, v in entry.items() if k != "name"}}
    tables.append(entry)


def _select_all(shown: list[Any]) -> None:
    state = _state()
    if st.session_state.get("wiz-stream-all"):
        for info in shown:
            if index_of(state, info) is None:
                _add(state, info)
    else:
        for info in shown:
            index = index_of(state, info)
            if index is not None:
                del _tables(state)[index]
    reset_widgets((WIDGET_PREFIX, "wiz-pick-"))
