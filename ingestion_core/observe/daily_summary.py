"""The daily summary e-mail: one HTML table of the day's real runs (source, status, rows,
duration, checks), to the e-mail channels of ``configs/notifications.yaml``, next to the
failure alerts. Sent once per day (remembered with the alerts in ``alerts/sent.json``):
``ingest alerts --summary`` (yesterday by default) from cron, or the local scheduler at
``daily_summary:`` in the notifications file.

Example::

    rows = summary_rows(load_run_data(), date(2026, 1, 5), ["sales", "crm"])
    html = render_html(rows, date(2026, 1, 5))
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from ingestion_core.common import settings
from ingestion_core.common.atomic import atomic_write_text
from ingestion_core.config.secrets import mask
from ingestion_core.observe.alerts import EmailChannel, NotificationConfig, send_email
from ingestion_core.observe.run_metrics import RunData, human_duration, json_list

COLOURS = {"success": "#1a7f37", "quality_failed": "#9a6700", "no run": "#57606a"}


@dataclass(frozen=True)
class SummaryRow:
    source: str
    status: str  # of the day's latest run, or "no run"
    runs: int
    rows: int
    duration_s: float
    checks_passed: int
    checks_failed: int
    run_id: str | None = None
    message: str = ""

    @property
    def checks(self) -> str:
        total = self.checks_passed + self.checks_failed
        return f"{self.checks_passed}/{total} passed" if total else "-"


def summary_rows(data: RunData, day: date, sources: list[str] | None = None) -> list[SummaryRow]:
    """Per source, the real runs started on ``day`` (UTC): the latest one's status and checks,
    rows and time of them all; ``sources`` with no run that day are listed as ``no run``."""
    start = datetime.combine(day, time(), UTC)
    runs = data.real[(data.real["started_at"] >= start) & (data.real["started_at"] < start + timedelta(days=1))]
    rows = []
    for source, group in runs.groupby("source", sort=True):
        latest = group.iloc[0]
        checks = [q for value in data.tables[data.tables["run_id"] == latest["run_id"]]["quality"]
                  for q in json_list(value) if q.get("status") in ("pass", "fail")]
        error = latest["error"] if isinstance(latest["error"], dict) else {}
        rows.append(SummaryRow(str(source), str(latest["status"]), len(group), int(group["rows_total"].fillna(0).sum()),
                               float(group["duration_s"].fillna(0).sum()),
                               sum(q["status"] == "pass" for q in checks), sum(q["status"] == "fail" for q in checks),
                               str(latest["run_id"]), mask(error.get("message") or "")))
    seen = {r.source for r in rows}
    rows += [SummaryRow(s, "no run", 0, 0, 0.0, 0, 0) for s in sorted(set(sources or ()) - seen)]
    return rows


def render_html(rows: list[SummaryRow], day: date) -> str:
    """The e-mail's HTML: a heading with the totals, then one table row per source."""
    ok = sum(r.status == "success" for r in rows)
    head = "".join(f"<th style='text-align:left;padding:4px 8px'>{h}</th>"
                   for h in ("Source", "Status", "Rows", "Duration", "Checks", "Runs", "Error"))
    body = "".join(
        "<tr>" + "".join(f"<td style='padding:4px 8px'>{cell}</td>" for cell in (
            html.escape(r.source),
            f"<span style='color:{COLOURS.get(r.status, '#cf222e')}'>{html.escape(r.status.replace('_', ' '))}</span>",
            f"{r.rows:,}", human_duration(r.duration_s) if r.runs else "-", r.checks, r.runs,
            html.escape(r.message[:200]))) + "</tr>" for r in rows)
    return (f"<html><body><h2>Ingestion on {day:%Y-%m-%d} (UTC)</h2><p>{ok} of {len(rows)} sources succeeded, "
            f"{sum(r.rows for r in rows):,} rows loaded.</p><table style='border-collapse:collapse' border='1'>"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></body></html>")


def render_text(rows: list[SummaryRow], day: date) -> str:
    lines = [f"Ingestion on {day:%Y-%m-%d} (UTC)"]
    lines += [f"{r.source}: {r.status}, {r.rows:,} rows, {human_duration(r.duration_s) if r.runs else '-'}, "
              f"checks {r.checks}" for r in rows]
    return "\n".join(lines) + "\n"


def send_summary(config: NotificationConfig, rows: list[SummaryRow], day: date, *, dry_run: bool = False,
                 force: bool = False) -> list[dict[str, Any]]:
    """Send the summary of ``day`` to every e-mail channel, once per day (``force``: again)."""
    state_path = settings.data_dir() / "alerts" / "sent.json"
    sent: dict[str, str] = json.loads(state_path.read_text()) if state_path.exists() else {}
    key = f"summary:{day:%Y-%m-%d}"
    if key in sent and not force:
        return []
    results = []
    for channel in (c for c in config.channels if isinstance(c, EmailChannel)):
        try:
            if not dry_run:
                _send(channel, rows, day)
            results.append({"channel": channel.name, "day": f"{day:%Y-%m-%d}", "sources": len(rows), "ok": True})
        except Exception as exc:  # one channel failing must not stop the others
            results.append({"channel": channel.name, "day": f"{day:%Y-%m-%d}", "ok": False, "error": mask(exc)})
    if results and all(r["ok"] for r in results) and not dry_run:
        sent[key] = datetime.now(UTC).isoformat()
        atomic_write_text(state_path, json.dumps(sent, indent=1))
    return results


def _send(channel: EmailChannel, rows: list[SummaryRow], day: date) -> None:
    ok, idle = sum(r.status == "success" for r in rows), sum(r.status == "no run" for r in rows)
    failed = len(rows) - ok - idle
    subject = (f"[ingestion] daily summary {day:%Y-%m-%d}: {ok} of {len(rows)} sources succeeded"
               + (f", {failed} did not" if failed else "") + (f", {idle} did not run" if idle else ""))
    send_email(channel, subject, render_text(rows, day), render_html(rows, day))


def as_dicts(rows: list[SummaryRow]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]
