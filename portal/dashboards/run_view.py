"""One run, drilled into: outcome, who or what triggered it, timings per phase, per-table results,
the error with what to do, quality results, a log excerpt, the config snapshot (references only)
and its diff against the previous run of the same source. Input: ``run_metrics.run_detail``."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from ingestion_core.config.secrets import mask
from ingestion_core.observe import run_metrics as rm
from ingestion_core.observe.records import RunRecord, TableResult
from portal.dashboards.dashboard_widgets import STATUS_ICONS, code, kind_label, status_label
from portal.shared.components import relative_time, run_error
from portal.shared.markdown import md_escape


def render_run(detail: dict[str, Any], key: str) -> None:
    record: RunRecord = detail["record"]
    status = detail.get("status", record.status)
    st.subheader(f"{record.source}: {kind_label(record.kind)} {record.run_id}", anchor=False)
    cells = st.columns(5)
    cells[0].metric("Status", status_label(status), border=True)
    figures = rm.record_figures(record)
    cells[1].metric("Duration", rm.human_duration(figures["seconds"]), border=True)
    cells[2].metric("Records", rm.human_count(figures["records"]), border=True, help=child_rows_help(figures))
    cells[3].metric("Data", rm.human_bytes(figures["bytes"]), border=True)
    cells[4].metric("Records per second", rm.human_count(figures["records_per_s"]), border=True)
    st.markdown(_provenance(record))
    _errors(record, status)
    _phases(record)
    st.markdown("**Tables**")
    st.dataframe(tables_frame(record.tables), key=f"{key}_tables", hide_index=True, placeholder="-")
    checks = [{"table": t.name, **q} for t in record.tables for q in t.quality]
    if checks:
        st.markdown("**Quality checks**")
        st.dataframe(checks_frame(checks), key=f"{key}_checks", hide_index=True, placeholder="-")
    log, config, diff = st.tabs(["Log excerpt", "Config snapshot", "Config diff"])
    with log:
        if detail["log_excerpt"]:
            st.caption(f"Last {len(detail['log_excerpt'])} lines of {code(record.log_path)}")
            st.code(mask("\n".join(detail["log_excerpt"])), language="log")
        else:
            st.caption("No log file here: it was pruned, or the run ran on another machine "
                       f"({code(record.log_path or 'no log path recorded')}).")
    with config:
        st.caption("The source's YAML as it was saved for this run: secrets appear only as references.")
        st.code(mask(record.config_snapshot) or "# no snapshot recorded", language="yaml")
    with diff:
        _diff(detail)


def child_rows_help(figures: dict[str, float]) -> str:
    return (f"Records the source yielded; {rm.human_count(figures['child_rows'])} more rows went into child tables "
            "(nested lists unpacked by dlt)" if figures["child_rows"] else "Records the source yielded")


def _provenance(record: RunRecord) -> str:
    started = "{} ({})".format(*relative_time(record.started_at))
    ended = "{} ({})".format(*relative_time(record.ended_at)) if record.ended_at else "not yet"
    limit = f", limit {record.limit:,} rows per table" if record.limit else ""
    return (f"Triggered by **{record.trigger}** as **{md_escape(record.actor)}** on {code(record.host)} "
            f"(pid {record.pid}) · started {started} · ended {ended}  \n"
            f"{kind_label(record.kind).capitalize()}{limit} of **{md_escape(record.source)}** ({record.source_type}, "
            f"owner {md_escape(record.owner)}) into **{md_escape(record.destination)}** ({record.destination_type}) "
            f"dataset {code(record.dataset)} · config {code(record.config_hash or '-')}")


def _errors(record: RunRecord, status: str) -> None:
    errors = ([("the run", record.error)] if record.error else []) + [
        (f"table {t.name}", t.error) for t in record.tables if t.error]
    for where, error in errors:
        run_error(where, error, icon=STATUS_ICONS.get(status, ":material/error:"), show_class=True)
    if status == "abandoned":
        st.warning("**Abandoned**: the record still says running, but its process is gone (or silent for 30 min). "
                   "The load may be half done: run the source again; incremental tables resume from the last "
                   "committed state.", icon=":material/help:")


def _phases(record: RunRecord) -> None:
    if not record.phases:
        return
    cells = st.columns(len(rm.PHASES))
    for cell, phase in zip(cells, rm.PHASES, strict=True):
        timing = record.phases.get(phase)
        cell.metric(phase.capitalize(), rm.human_duration(timing.duration_s if timing else None),
                    f"{timing.pct:.0f}% of the time" if timing else None, delta_color="off", delta_arrow="off")


def tables_frame(tables: list[TableResult]) -> pd.DataFrame:
    """Per-table results of one run, as the drill-down shows them."""
    return pd.DataFrame([{
        "table": t.name, "mode": t.mode, "status": status_label(t.status),
        "records": t.rows_so_far if t.status == "running" else rm.records_of(t.rows, t.records),  # growing live
        "child rows": t.rows - rm.records_of(t.rows, t.records),
        "bytes": t.bytes,
        "files": t.files, "seconds": round(t.duration_s, 1), "backend": t.backend, "attempts": t.attempts,
        **{f"{p} s": round(t.phases[p].duration_s, 1) if p in t.phases else None for p in rm.PHASES},
        "checks failed": sum(q.get("status") == "fail" for q in t.quality),
        "error": mask(t.error.message) if t.error else None,
    } for t in tables], columns=["table", "mode", "status", "records", "child rows", "bytes", "files", "seconds",
                                 "backend",
                                 "attempts", *[f"{p} s" for p in rm.PHASES], "checks failed", "error"])


def checks_frame(checks: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([{
        "table": c["table"], "check": c.get("name") or c.get("check"), "status": c.get("status"),
        "severity": c.get("severity"), "observed": rm.as_text(c.get("observed")),
        "threshold": rm.as_text(c.get("threshold")), "message": mask(c.get("message") or ""),
    } for c in sorted(checks, key=lambda c: rm.OUTCOME_RANK.get(c.get("status"), 3))])


def _diff(detail: dict[str, Any]) -> None:
    previous = detail["previous_run_id"]
    if previous is None:
        st.caption("The first recorded run of this source: there is no earlier config to compare with.")
    elif not detail["config_diff"]:
        st.caption(f"Same config as the previous run {code(previous)}.")
    else:
        st.caption(f"What changed in the source's YAML since the previous run {code(previous)}.")
        st.code(mask("\n".join(detail["config_diff"])), language="diff")
