"""Alerts for operations: e-mail (SMTP) and a generic webhook, for failed, quality-failed and
late sources and schema drift (columns added, removed or retyped), sent once per incident.

The channels live in ``configs/notifications.yaml`` (credentials by reference). An incident is
the latest real run of a source that did not succeed (keyed by its run id), or a source that is
late against its schedule (keyed by the due time it missed); the keys already sent are kept in
``INGEST_DATA_DIR/alerts/sent.json`` so a scheduler can call :func:`send_alerts` every few
minutes without repeating itself (``ingest alerts``).
"""

from __future__ import annotations

import json
import smtplib
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from ingestion_core.common import settings
from ingestion_core.config.models.base import ConfigModel, Cron, SecretRef, check_headers, url_credential_problem
from ingestion_core.config.secrets import mask, resolve_value
from ingestion_core.observe.run_metrics import RunData, failing_sources, freshness

Event = Literal["failed", "quality_failed", "late", "schema_drift"]
STATUS_EVENT = {"failed": "failed", "partial": "failed", "abandoned": "failed", "quality_failed": "quality_failed"}


class EmailChannel(ConfigModel):
    type: Literal["email"] = Field(description="E-mail through an SMTP server.")
    name: str = Field(description="Name of the channel, for people.")
    smtp_host: str = Field(description="SMTP server host.")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port.")
    starttls: bool = Field(True, description="Upgrade the connection with STARTTLS.")
    username: str | None = Field(None, description="SMTP user (plain text or a reference).")
    password: SecretRef | None = Field(None, description="Reference to the SMTP password.")
    sender: str = Field(description="From address.")
    to: list[str] = Field(min_length=1, description="Recipients.")


class WebhookChannel(ConfigModel):
    type: Literal["webhook"] = Field(description="An HTTP POST of a JSON body (Teams, Slack, your own service).")
    name: str = Field(description="Name of the channel, for people.")
    url: str = Field(description="URL to POST to; a token in it only as a reference, e.g. ${secrets.hook.url}.")
    headers: dict[str, str] = Field(default_factory=dict, description="Headers; credentials by reference.")

    _headers = field_validator("headers")(check_headers)

    @field_validator("url")
    @classmethod
    def _no_literal_token(cls, value: str) -> str:
        problem = url_credential_problem(value)
        if problem:
            raise ValueError(f"the webhook url holds {problem}; reference the whole URL instead: "
                             "${secrets.<channel>.url}")
        return value

    timeout_seconds: float = Field(10.0, gt=0, le=120, description="Request timeout.")


class NotificationConfig(ConfigModel):
    version: Literal[1] = Field(1, description="Format version of this file.")
    channels: list[Annotated[EmailChannel | WebhookChannel, Field(discriminator="type")]] = Field(
        default_factory=list, description="Where alerts go.")
    events: list[Event] = Field(default_factory=lambda: ["failed", "quality_failed", "late", "schema_drift"],
                                description="Which incidents raise an alert.")
    sources: list[str] = Field(default_factory=list, description="Only these sources (default: all).")
    daily_summary: Cron | None = Field(
        None, description="When the local scheduler e-mails the summary of the day before (HTML table: source, "
        "status, rows, duration, checks), as cron in UTC, e.g. '0 7 * * *'. `ingest alerts --summary` sends it too.")


@dataclass(frozen=True)
class Incident:
    key: str
    source: str
    event: str
    summary: str
    hint: str = ""
    run_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "event": self.event, "summary": mask(self.summary), "hint": self.hint,
                "run_id": self.run_id}


def load_notifications(path: Path | None = None) -> NotificationConfig:
    from ingestion_core.config.store import parse_yaml

    path = path or settings.config_dir() / "notifications.yaml"
    if not path.exists():
        return NotificationConfig()
    data, issues = parse_yaml(path.read_text(encoding="utf-8"))
    if issues:
        raise ValueError(f"{path}: {issues[0].message}")
    return NotificationConfig.model_validate(data or {})


def incidents(data: RunData, schedules: dict[str, str | None], now: datetime,
              since: dict[str, datetime] | None = None, timezones: dict[str, str] | None = None) -> list[Incident]:
    """Open incidents: sources whose latest real run failed, and sources late on schedule."""
    found = []
    for row in failing_sources(data).to_dict("records"):
        event = STATUS_EVENT.get(row["status"], "failed")
        found.append(Incident(key=f"{event}:{row['run_id']}", source=row["source"], event=event,
                              summary=f"{row['source']}: last run {row['run_id']} ended {row['status']}: "
                                      f"{row['message'] or ''}".rstrip(": "),
                              hint=row["hint"] or "", run_id=row["run_id"]))
    for row in freshness(data, schedules, now, since=since, timezones=timezones).to_dict("records"):
        if row["state"] == "late":
            found.append(Incident(key=f"late:{row['source']}:{row['due_by']:%Y-%m-%dT%H:%M}", source=row["source"],
                                  event="late", summary=f"{row['source']} is late: no successful run since "
                                  f"{row['last_success'] or 'ever'} (due by {row['due_by']:%Y-%m-%d %H:%M} UTC, "
                                  f"schedule {row['schedule']})",
                                  hint="open the source's last run for its error, or run it now"))
    return found + drift_incidents(data)


def drift_incidents(data: RunData) -> list[Incident]:
    """A ``schema_drift`` incident per latest real run whose tables added, removed or retyped columns."""
    from ingestion_core.observe.schema_drift import schema_drift

    drift = schema_drift(data)
    found = []
    for run_id, group in drift.groupby("run_id", sort=False):
        changes = "; ".join(f"{row['table']}: {row['summary']}" for row in group.to_dict("records"))
        source = group["source"].iloc[0]
        found.append(Incident(key=f"schema_drift:{run_id}", source=source, event="schema_drift",
                              summary=f"{source}: the columns changed in run {run_id}: {changes}",
                              hint="check that downstream reports and checks still fit; a removed or retyped "
                                   "column may need a change there", run_id=str(run_id)))
    return found


def send_alerts(config: NotificationConfig, open_incidents: list[Incident], dry_run: bool = False) -> list[dict]:
    """Send each incident not sent before to every channel; returns what was done. An incident
    is marked sent once every channel took it (a failed channel is tried again next time)."""
    state_path = settings.data_dir() / "alerts" / "sent.json"
    sent: dict[str, str] = json.loads(state_path.read_text()) if state_path.exists() else {}
    results = []
    for incident in open_incidents:
        wanted = incident.event in config.events and (not config.sources or incident.source in config.sources)
        if incident.key in sent or not wanted:
            continue
        delivered = [_deliver(channel, incident, dry_run) for channel in config.channels]
        results += delivered
        if delivered and all(r["ok"] for r in delivered) and not dry_run:
            sent[incident.key] = datetime.now().isoformat()
    if not dry_run:
        from ingestion_core.common.atomic import atomic_write_text

        atomic_write_text(state_path, json.dumps(sent, indent=1))
    return results


def _deliver(channel: EmailChannel | WebhookChannel, incident: Incident, dry_run: bool) -> dict[str, Any]:
    try:
        if not dry_run:
            SENDERS[channel.type](channel, incident)
        return {"channel": channel.name, **incident.as_dict(), "ok": True}
    except Exception as exc:  # one channel failing must not stop the others
        return {"channel": channel.name, **incident.as_dict(), "ok": False, "error": mask(exc)}


def _send_email(channel: EmailChannel, incident: Incident) -> None:
    send_email(channel, f"[ingestion] {incident.event.replace('_', ' ')}: {incident.source}",
               f"{mask(incident.summary)}\n\nWhat to do: {incident.hint}\n")


def send_email(channel: EmailChannel, subject: str, text: str, html: str | None = None) -> None:
    """One e-mail through the channel's SMTP server (an HTML alternative when ``html``)."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"], message["To"] = channel.sender, ", ".join(channel.to)
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    with smtplib.SMTP(channel.smtp_host, channel.smtp_port, timeout=15) as smtp:
        if channel.starttls:
            smtp.starttls()
        if channel.username and channel.password:
            smtp.login(resolve_value(channel.username), resolve_value(channel.password))
        smtp.send_message(message)


def _send_webhook(channel: WebhookChannel, incident: Incident) -> None:
    import requests

    response = requests.post(resolve_value(channel.url), json={"text": mask(incident.summary), **incident.as_dict()},
                             headers=resolve_value(channel.headers), timeout=channel.timeout_seconds)
    response.raise_for_status()


SENDERS = {"email": _send_email, "webhook": _send_webhook}
