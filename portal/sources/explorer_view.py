"""The preview explorer of the Test & run page: SQL over the source's preview DuckDB (read-only,
external access off, a row cap and a timeout: :mod:`ingestion_core.pipeline.explorer`), a table picker
that fills a starter query, and a table's sample as CSV or Parquet."""

from __future__ import annotations

from typing import Any

import streamlit as st

from ingestion_core.pipeline import explorer
from ingestion_core.pipeline.explorer import ExplorerError
from portal.shared.markdown import md_escape
from portal.sources import preview_jobs

MAX_ROWS = 1000
TIMEOUT_S = 10.0
SQL_KEY = "explorer-sql"
TABLE_KEY = "explorer-table"
RESULT_KEY = "explorer-result"  # (source, sql, QueryResult | error text)
SOURCE_KEY = "explorer-source"  # the source the widgets above were filled for


def render(name: str) -> None:
    job = preview_jobs.current(name)
    if job is not None and job.running:
        st.info("A test run is writing the preview right now: the explorer opens when it has finished.",
                icon=":material/hourglass_top:")
        return
    if job is not None:
        job.wait(preview_jobs.CLOSE_WAIT_S)  # a test run that has just ended closes the file after its results are in
    try:
        tables = explorer.preview_tables(name)
    except ExplorerError as exc:
        st.warning(md_escape(str(exc)), icon=":material/warning:")
        return
    if not tables:
        st.info("**No preview yet.** Press **Test run** first: its rows land in a local DuckDB file you can "
                "query here.", icon=":material/info:")
        return
    _follow_source(name, tables)
    st.caption(f"SQL over the preview's tables (bare names work). Read only: files, settings and other "
               f"databases are off limits. At most {MAX_ROWS:,} rows come back; a query is stopped after "
               f"{TIMEOUT_S:g} s.")
    pick, sql = st.columns([1, 3])
    table = pick.selectbox("Table", tables, key=TABLE_KEY, on_change=_starter_query,
                           help="Picking a table fills a starter query")
    _downloads(pick, name, table)
    sql.text_area("SQL", key=SQL_KEY, height=130)
    sql.button("Run query", key="explorer-run", type="primary", icon=":material/play_arrow:",
               on_click=_run, args=(name,))
    _result(name)


def starter_query(table: str) -> str:
    return f'SELECT * FROM "{table}" LIMIT 100'  # as the user guide shows it


def _follow_source(name: str, tables: list[str]) -> None:
    """Fresh widgets for another source (or a preview whose tables changed)."""
    if st.session_state.get(SOURCE_KEY) == name and st.session_state.get(TABLE_KEY) in tables:
        return
    st.session_state[SOURCE_KEY] = name
    st.session_state[TABLE_KEY] = tables[0]
    st.session_state[SQL_KEY] = starter_query(tables[0])
    st.session_state.pop(RESULT_KEY, None)


def _starter_query() -> None:
    st.session_state[SQL_KEY] = starter_query(st.session_state[TABLE_KEY])


def _run(name: str) -> None:
    sql = st.session_state.get(SQL_KEY) or ""
    try:
        result: Any = explorer.query_preview(name, sql, max_rows=MAX_ROWS, timeout_s=TIMEOUT_S)
    except ExplorerError as exc:
        result = str(exc)
    st.session_state[RESULT_KEY] = (name, sql, result)


def _result(name: str) -> None:
    kept = st.session_state.get(RESULT_KEY)
    if not kept or kept[0] != name:
        return
    _, _, result = kept
    if isinstance(result, str):
        st.error(md_escape(result), icon=":material/block:")
        return
    with st.container(key="explorer-rows"):
        st.dataframe(result.rows, hide_index=True)
    more = f" (capped at {MAX_ROWS:,}: the query matched more; add a WHERE or a LIMIT)" if result.truncated else ""
    st.caption(f"{result.rows.num_rows:,} rows{more} in {result.duration_s:.2f} s.")


def _downloads(column: Any, name: str, table: str) -> None:
    for fmt, mime in (("csv", "text/csv"), ("parquet", "application/vnd.apache.parquet")):
        column.download_button(f"{table} as {fmt.upper() if fmt == 'csv' else 'Parquet'}", key=f"explorer-{fmt}",
                               mime=mime,
                               data=lambda fmt=fmt: explorer.export_table(name, table, fmt),
                               file_name=f"{name}_{table}.{fmt}", icon=":material/download:", width="stretch",
                               on_click="ignore", help=f"The table's rows (up to 100,000) as a {fmt.upper()} file")
