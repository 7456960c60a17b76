"""Steps 3-4 of the source form: what to load and how (database tables: the one table of
:mod:`portal.onboarding.wizard_streams`; file sets matching a glob or REST endpoints with their settings
below them), and the quality checks of each table."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pandas as pd
import streamlit as st

from ingestion_core import onboarding
from ingestion_core.config.models.checks import CHECKS, Check
from ingestion_core.onboarding import is_under, review
from portal.onboarding import wizard_streams
from portal.onboarding.widgets import (
    FormContext,
    render_fields,
    reset_widgets,
    show_issues,
    show_leftover,
    widget_key,
)
from portal.onboarding.wizard_streams import _state, _tables  # one definition for both steps
from portal.shared.markdown import code, md_escape

STATE_KEY = "editor"
STEP3_TITLES = {"filesystem": "Files", "rest_api": "Endpoints"}
_IDENTITY = re.compile(r"tables(\[\d+\](\.(name|glob|format|path))?)?")


def step_titles(kind: str | None, steps: tuple[str, ...]) -> list[str]:
    titles = list(steps)
    titles[2] = STEP3_TITLES.get(kind or "", steps[2])
    return titles


def is_entry_identity(path: str, kind: str | None) -> bool:
    """Paths that name an entry: the list itself and what names an entry."""
    return bool(_IDENTITY.fullmatch(path))


# --- step 3: what to load and how ------------------------------------------------------------

def step_tables(state: Any, ctx: FormContext, model: Any) -> None:
    kind = state.draft.source_type
    if kind is None:
        st.info("Choose a type in step 1 first.", icon=":material/info:")
        return
    if kind in CHOOSERS:
        CHOOSERS[kind](state, ctx)
        st.divider()
        step_settings(state, ctx, model)
        return
    wizard_streams.render(state, ctx)
    _typed_tables(state, ctx)
    _manual_table(state)
    for issue in missing_table_issues(state):
        st.error(f"{code(issue.path)}: {md_escape(issue.message)}", icon=":material/search_off:")
    show_leftover(ctx, ("tables",), title="To fix before going on", only=lambda i: ".checks" not in i.path)


def missing_table_issues(state: Any) -> list[Any]:
    """Chosen tables that discovery says the database does not have (schemas it could list only)."""
    if not onboarding.is_sql(state.draft.source_type) or state.schemas is None or not state.schemas.ok:
        return []
    fingerprint = onboarding.connection_fingerprint(state.draft)
    found: dict[str | None, list[str]] = {}
    for schema in state.schemas.items:
        listed = state.tables_found.get(f"{fingerprint}|{schema}")
        if listed is not None and listed.ok:
            found[_entry_schema(state.draft.source_type, schema)] = [t.name for t in listed.items]
    if state.draft.source_type == "sqlite" and found:
        found = {None: [n for names in found.values() for n in names]}
    return review.missing_tables(_tables(state), found)


def _typed_tables(state: Any, ctx: FormContext) -> None:
    """Chosen tables discovery did not list (typed by name, or from a saved file)."""
    listed = {(_entry_schema(state.draft.source_type, i.schema), i.name) for i in state.infos.values()}
    for index, entry in enumerate(_tables(state)):
        if not isinstance(entry, dict):
            continue
        name = entry.get("source_table") or entry.get("name")
        if (_entry_schema(state.draft.source_type, entry.get("schema")), name) in listed and \
                _info_for(state, entry) is not None:
            continue
        with st.container(border=True, key=f"wiz-typed-{index}"):
            text, buttons = st.columns([3, 2], vertical_alignment="center")
            text.markdown(f"**{md_escape(name)}**" + (f" ({md_escape(entry['schema'])})" if entry.get("schema")
                                                       else "") + " — typed by name, not found by discovery")
            with buttons.container(horizontal=True, horizontal_alignment="right", gap="small"):
                st.button("Look up the columns", key=f"wiz-columns-{index}", icon=":material/search:",
                          on_click=_lookup_columns, args=(entry.get("schema"), name))
                st.button("Remove", key=f"wiz-remove-{index}", on_click=_remove_table, args=(index,))
            info = _info_for(state, entry)
            sub = replace(ctx, columns=list(info.columns) if info else [],
                          cursor_candidates=list(info.cursor_candidates) if info else [])
            render_fields(onboarding.table_model(state.draft.source_type), f"tables[{index}]", sub,
                          skip=("checks",), more_label=f"More settings for {name}")
    if state.lookup_note and state.lookup_note[0] != "refused":
        kind, text = state.lookup_note
        (st.success if kind == "ok" else st.error)(md_escape(text), icon=":material/search:")


def _entry_schema(kind: str | None, schema: str | None) -> str | None:
    return None if kind == "sqlite" else schema


def _manual_table(state: Any) -> None:
    with st.expander("Add a table by name", icon=":material/add:"):
        st.text_input("Table name", key="wiz-manual-name", placeholder="schema.table",
                      help="As it is called in the database, with its schema in front (crm.orders).")
        st.button("Add table", key="wiz-manual-add", on_click=_add_manual)
        if state.lookup_note and state.lookup_note[0] == "refused":
            st.error(md_escape(state.lookup_note[1]), icon=":material/search_off:")


def _add_manual() -> None:
    """Add the typed table, unless the database was listed and does not have it (then it is
    refused with the closest names, and the typed name stays to be corrected)."""
    state = _state()
    typed = (st.session_state.get("wiz-manual-name") or "").strip()
    if not typed:  # said, not ignored: a click that adds nothing must say why
        state.lookup_note = ("refused", "Type the table's name first, with its schema in front (crm.orders), "
                                        "then press Add table.")
        return
    schema, _, name = typed.rpartition(".")
    kind = state.draft.source_type
    if not schema and state.schemas is not None and state.schemas.ok:
        schema = onboarding.default_schema(state.draft, state.schemas.items) or ""
    entry: dict[str, Any] = {"name": name}
    if kind != "sqlite" and schema:
        entry["schema"] = schema
    tables = _tables(state)
    tables.append(entry)
    _lookup_columns(entry.get("schema"), name)
    refused = [i for i in missing_table_issues(state) if is_under(i.path, f"tables[{len(tables) - 1}]")]
    if refused:
        tables.pop()
        state.lookup_note = ("refused", f"{typed} was not added: {refused[0].message}")
    else:
        st.session_state["wiz-manual-name"] = ""


def _remove_table(index: int) -> None:
    tables = _tables(_state())
    if 0 <= index < len(tables):
        del tables[index]
    reset_widgets()


def choose_files(state: Any, ctx: FormContext) -> None:
    st.caption("A file set is a glob (a pattern of file names) read into one table. `*` matches any name, "
               "`**` any sub-folder.")
    glob = st.text_input("Files (glob)", key="wiz-glob", placeholder="orders/*.csv",
                         help="Relative to the folder of the connection step (bucket_url).")
    look, add = st.columns(2)
    if look.button("Show matching files", key="wiz-list-files", icon=":material/search:"):
        with st.spinner("Listing files...", show_time=True):
            state.files = onboarding.discover_files(state.draft, glob or "", onboarding.call_timeout())
        state.lookup_note = ""
    add.button("Add as a table", key="wiz-add-files", icon=":material/add:", on_click=_add_files, disabled=not glob)
    if state.lookup_note and state.lookup_note[0] == "refused":
        st.error(md_escape(state.lookup_note[1]), icon=":material/search_off:")
    found = state.files
    if found is not None and not found.ok:
        st.error(f"**Could not list files.** {md_escape(found.error)}\n\n**What to do:** {md_escape(found.hint)}",
                 icon=":material/error:")
    elif found is not None:
        frame = pd.DataFrame([{"path": f.path, "size": _size(f.size), "modified": f.modified} for f in found.items],
                             columns=["path", "size", "modified"])
        st.caption(f"{len(frame)} file(s) match{' (first 200)' if len(frame) >= 200 else ''}.")
        st.dataframe(frame, hide_index=True, width="stretch", key="wiz-files")
    _entries(state, ctx, ("name", "glob", "format"))


def _size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return ""


def _add_files() -> None:
    """Add the glob as a table, unless the folder was listed and no file matches it (refused with
    the reason; a folder that cannot be listed is said by the listing's error, the glob added)."""
    state = _state()
    glob = (st.session_state.get("wiz-glob") or "").strip()
    if not glob:
        return
    state.files = onboarding.discover_files(state.draft, glob, onboarding.call_timeout())
    state.lookup_note = ""
    if state.files.ok and not state.files.items:
        folder = (state.draft.data.get("source") or {}).get("bucket_url") or "the folder"
        state.lookup_note = ("refused", f"{glob} was not added: no file in {folder} matches it. Check the folder "
                                        "(step 2) and the pattern: * matches any name within one folder, ** any "
                                        "sub-folder (sales/**/*.csv); Show matching files lists what a glob finds.")
        return
    _tables(state).append(onboarding.file_table_entry(glob))
    reset_widgets()


def _entries(state: Any, ctx: FormContext, fields: tuple[str, ...]) -> None:
    """The chosen entries with the fields that name them, editable, and a remove button."""
    table_model = onboarding.table_model(state.draft.source_type)
    for index, entry in enumerate(_tables(state)):
        with st.container(border=True, key=f"wiz-entry-{index}"):
            body, remove = st.columns([6, 1])
            with body:
                if isinstance(entry, dict) and table_model is not None:
                    render_fields(table_model, f"tables[{index}]", ctx, only=fields)
                else:
                    show_issues(ctx, f"tables[{index}]")
            remove.button("Remove", key=f"wiz-remove-{index}", on_click=_remove_table, args=(index,))
            if state.draft.source_type == "rest_api" and isinstance(entry, dict):
                _endpoint_panel(state, index, entry)


def choose_endpoints(state: Any, ctx: FormContext) -> None:
    st.caption("Each endpoint (resource) of the API becomes one table.")
    name, path = st.columns(2)
    name.text_input("Table name", key="wiz-endpoint-name", placeholder="orders")
    path.text_input("Path", key="wiz-endpoint-path", placeholder="orders",
                    help="The part after the base URL, e.g. orders or users/{id}/posts.")
    st.button("Add endpoint", key="wiz-endpoint-add", icon=":material/add:", on_click=_add_endpoint)
    _entries(state, ctx, ("name", "path"))


def _add_endpoint() -> None:
    path = (st.session_state.get("wiz-endpoint-path") or "").strip()
    name = (st.session_state.get("wiz-endpoint-name") or "").strip()
    if not path and not name:
        return
    guessed = re.sub(r"[^a-z0-9_]+", "_", (name or path.split("/")[0]).lower()).strip("_") or "endpoint"
    _tables(_state()).append({"name": name or guessed, "path": path or guessed})
    st.session_state["wiz-endpoint-name"] = st.session_state["wiz-endpoint-path"] = ""
    reset_widgets()


def _endpoint_panel(state: Any, index: int, entry: dict[str, Any]) -> None:
    """HOOK: the REST issue's endpoint test (first raw response, paginator, data selector)."""
    name = str(entry.get("name") or "")
    if st.button("Test endpoint", key=f"wiz-test-endpoint-{index}", icon=":material/play_arrow:"):
        with st.spinner("Calling the endpoint...", show_time=True):
            try:
                state.endpoint_tests[name] = onboarding.test_endpoint(state.draft, name, onboarding.call_timeout())
            except onboarding.EndpointTestUnavailable as exc:
                state.endpoint_tests[name] = exc
            except Exception as exc:  # shown, never raised into the page
                from ingestion_core.engine.errors import explain

                state.endpoint_tests[name] = RuntimeError(" ".join(explain(exc)))
    result = state.endpoint_tests.get(name)
    if isinstance(result, onboarding.EndpointTestUnavailable):
        st.info(f"Endpoint test not available yet ({md_escape(result)}). Save the source and use a test run "
                "to see its first rows.", icon=":material/construction:")
    elif isinstance(result, Exception):
        st.error(md_escape(result), icon=":material/error:")
    elif result is not None:
        _show_endpoint_result(result)


def _show_endpoint_result(probe: Any) -> None:
    """The probe of the REST library: its judgement (the one ``ingest test-connection`` gives),
    then status, paginator, data selector, sample and body excerpt."""
    if probe.ok:
        st.success(f"HTTP {probe.status} {md_escape(probe.reason)} from {code(probe.url)} in "
                   f"{probe.duration_s} s: {probe.records_on_page} record(s) on the first page.",
                   icon=":material/check:")
    else:
        st.error(f"**The endpoint test failed:** {md_escape(probe.verdict)}\n\n**What to do:** "
                 f"{md_escape(probe.fix)}", icon=":material/error:")
    if probe.is_json and probe.status is not None and probe.status < 400:
        st.json({k: getattr(probe, k) for k in ("data_selector", "data_selector_detected", "paginator",
                                                 "paginator_detected", "has_next_page", "next_request")}, expanded=1)
    if probe.sample and all(isinstance(r, dict) for r in probe.sample):
        st.dataframe(pd.DataFrame(probe.sample), hide_index=True, width="stretch")
    if probe.body_excerpt:
        st.code(str(probe.body_excerpt), language="json" if probe.is_json else None)


CHOOSERS = {"filesystem": choose_files, "rest_api": choose_endpoints}
IDENTITY_FIELDS = ("name", "glob", "format", "path")  # drawn by the chooser above the settings


# --- settings of files and endpoints ----------------------------------------------------------------

def _info_for(state: Any, entry: dict[str, Any]) -> Any:
    name = entry.get("source_table") or entry.get("name")
    schema = entry.get("schema") or _entry_schema(state.draft.source_type, state.schema)
    if (schema, name) in state.infos:
        return state.infos[(schema, name)]
    same_name = [info for (_, n), info in state.infos.items() if n == name]
    return same_name[0] if len(same_name) == 1 else None


def _default_mode(state: Any) -> str:
    defaults = state.draft.data.get("defaults")
    return (defaults.get("mode") if isinstance(defaults, dict) else None) or "full"


def autofill_all(state: Any) -> None:
    """What discovery knows and a table's mode needs: the first cursor candidate for
    incremental, the declared key for merge / scd2. Runs before the draft is validated."""
    for index, entry in enumerate(_tables(state)):
        if isinstance(entry, dict):
            for key in onboarding.autofill_table(entry, _info_for(state, entry), _default_mode(state)):
                st.session_state.pop(widget_key(f"tables[{index}].{key}"), None)


def step_settings(state: Any, ctx: FormContext, model: Any) -> None:
    tables = _tables(state)
    table_model = onboarding.table_model(state.draft.source_type)
    if not tables or table_model is None:
        st.info("Add at least one above.", icon=":material/info:")
        return
    default_mode = _default_mode(state)
    st.caption(f"Mode: {md_escape(_mode_help())} Tables without a mode use **{md_escape(default_mode)}** "
               "(the last step, defaults).")
    schemas = state.schemas.items if state.schemas is not None and state.schemas.ok else []
    for index, entry in enumerate(tables):
        path = f"tables[{index}]"
        if not isinstance(entry, dict):
            show_issues(ctx, path)
            continue
        info = _info_for(state, entry)
        with st.container(border=True, key=f"wiz-table-{index}"):
            _table_heading(entry, info)
            sub = replace(ctx, columns=list(info.columns) if info else [],
                          cursor_candidates=list(info.cursor_candidates) if info else [], choices={"schema": schemas})
            render_fields(table_model, path, sub, skip=("checks", *IDENTITY_FIELDS),
                          more_label=f"More settings for {entry.get('name') or 'this table'}")
    show_leftover(ctx, ("tables",), only=lambda i: ".checks" not in i.path and not is_entry_identity(i.path, None))


def _mode_help() -> str:
    from ingestion_core.config.models.tables import MODE_HELP

    return MODE_HELP


def _table_heading(entry: dict[str, Any], info: Any) -> None:
    title = f"##### {md_escape(entry.get('name') or '(no name)')}"
    details = []
    if entry.get("schema"):
        details.append(f"schema {md_escape(entry['schema'])}")
    if info is not None and info.row_estimate is not None:
        details.append(f"~{info.row_estimate:,} rows")
    if info is not None and info.primary_key:
        details.append("declared key " + md_escape(", ".join(info.primary_key)))
    st.markdown(title)
    if details:
        st.caption(" · ".join(details))


def _lookup_columns(schema: str | None, table: str | None = None) -> None:
    """Discover the schema again; the pickers are drawn afresh from the draft with its columns,
    and the answer is said in any case (a table the database lacks by the error under it)."""
    state = _state()
    found = onboarding.discover_tables(state.draft, schema, onboarding.call_timeout())
    for info in found.items:
        state.infos[(_entry_schema(state.draft.source_type, schema), info.name)] = info
    if found.ok:
        state.tables_found[f"{onboarding.connection_fingerprint(state.draft)}|{schema}"] = found
    where = ".".join(part for part in (schema, table) if part) or "the database"
    if not found.ok:
        state.lookup_note = ("error", f"Could not look up the columns of {where}: {found.error} ({found.hint})")
    elif missing_table_issues(state):
        state.lookup_note = ""  # said once, under the table (step_tables)
    else:
        state.lookup_note = ("ok", f"Looked up {len(found.items)} tables and views of {schema or 'the database'}: "
                                   "their columns are offered for cursor and primary key.")
    reset_widgets()


# --- step 4: quality checks ----------------------------------------------------------------

def step_checks(state: Any, ctx: FormContext, model: Any) -> None:
    tables = _tables(state)
    if not tables:
        st.info("Choose at least one table first.", icon=":material/info:")
        return
    st.caption("Checks run on the destination after each load. A failed *error* check marks the run as "
               "quality failed (the data is kept); a *warn* check is only recorded.")
    for index, entry in enumerate(tables):
        if not isinstance(entry, dict):
            continue
        checks = entry.get("checks") if isinstance(entry.get("checks"), list) else []
        expanded = [onboarding.expand_check(c) for c in checks]
        if expanded != checks:
            entry["checks"] = expanded
        info = _info_for(state, entry)
        with st.container(border=True, key=f"wiz-checks-{index}"):
            st.markdown(f"##### {md_escape(entry.get('name') or '(no name)')}")
            sub = replace(ctx, columns=list(info.columns) if info else [], in_expander=True)
            for number, check in enumerate(expanded):
                _check_row(sub, index, number, check)
            _add_check_row(entry, index, info)
    show_leftover(ctx, ("tables",), only=lambda i: ".checks" in i.path)


def _check_row(ctx: FormContext, index: int, number: int, check: Any) -> None:
    path = f"tables[{index}].checks[{number}]"
    kind = next(iter(check)) if isinstance(check, dict) and len(check) == 1 else None
    body, remove = st.columns([6, 1])
    with body:
        if kind in CHECKS:
            st.markdown(f"**{md_escape(kind)}**: {md_escape(Check.model_fields[kind].description or '')}")
            render_fields(CHECKS[kind], f"{path}.{kind}", ctx)
        show_issues(ctx, path)
    remove.button("Remove", key=f"wiz-check-remove-{index}-{number}", on_click=_remove_check, args=(index, number))


def _add_check_row(entry: dict[str, Any], index: int, info: Any) -> None:
    kinds = list(CHECKS)
    pick, add = st.columns([3, 1], vertical_alignment="bottom")
    pick.selectbox("Add a check", kinds, key=f"wiz-check-kind-{index}",
                   format_func=lambda k: f"{k}: {Check.model_fields[k].description or ''}")
    add.button("Add check", key=f"wiz-check-add-{index}", icon=":material/add:", on_click=_add_check, args=(index,))
    key = entry.get("primary_key") or (list(info.primary_key) if info is not None else [])
    if key and not _has_key_checks(entry, key):
        st.button(f"Add not-null and unique checks on {', '.join(key)}", key=f"wiz-check-suggest-{index}",
                  icon=":material/auto_fix_high:", on_click=_add_key_checks, args=(index, list(key)))


def _has_key_checks(entry: dict[str, Any], key: list[str]) -> bool:
    kinds = {next(iter(c)) for c in entry.get("checks") or [] if isinstance(c, dict) and c}
    return {"not_null", "unique"} <= kinds


def _check_prefill(kind: str, entry: dict[str, Any], info: Any) -> dict[str, Any]:
    fields = CHECKS[kind].model_fields
    key = entry.get("primary_key") or (list(info.primary_key) if info is not None else [])
    first = key[0] if key else (info.columns[0].name if info is not None and info.columns else None)
    prefill: dict[str, Any] = {}
    if "column" in fields and first:
        prefill["column"] = entry.get("cursor") if kind == "freshness" and entry.get("cursor") else first
    if "columns" in fields and (key or first):
        prefill["columns"] = list(key) or [first]
    if kind == "row_count":
        prefill["min"] = 1
    return prefill


def _add_check(index: int) -> None:
    state = _state()
    entry = _tables(state)[index]
    kind = st.session_state.get(f"wiz-check-kind-{index}") or "row_count"
    checks = entry.setdefault("checks", [])
    checks.append({kind: _check_prefill(kind, entry, _info_for(state, entry))})
    reset_widgets()


def _add_key_checks(index: int, key: list[str]) -> None:
    entry = _tables(_state())[index]
    checks = entry.setdefault("checks", [])
    checks += [{"not_null": {"column": column}} for column in key] + [{"unique": {"columns": list(key)}}]
    reset_widgets()


def _remove_check(index: int, number: int) -> None:
    entry = _tables(_state())[index]
    checks = entry.get("checks") or []
    if 0 <= number < len(checks):
        del checks[number]
    if not checks:
        entry.pop("checks", None)
    reset_widgets()

