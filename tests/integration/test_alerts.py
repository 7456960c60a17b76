"""Alerts to a local SMTP sink (aiosmtpd) and a local HTTP receiver: failed, quality-failed and
late sources, each sent once per incident; credentials by reference, never in the message."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from ingestion_core.cli.main import main
from ingestion_core.config.secrets import store_secret
from ingestion_core.observe.alerts import NotificationConfig, incidents, send_alerts
from ingestion_core.observe.records import ErrorInfo, RunRecord, TableResult, write_record
from ingestion_core.observe.run_metrics import load_run_data
from tests.services import free_port

TOKEN = "hook-token-" + "z" * 16
DB_PASSWORD = "db-pass-" + "q" * 12


class Sink:
    def __init__(self):
        self.messages: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.content.decode())
        return "250 OK"


@pytest.fixture
def smtp():
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, sink
    controller.stop()


@pytest.fixture
def receiver():
    received: list[tuple[dict, dict]] = []
    status = {"code": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append((dict(self.headers), body))
            self.send_response(status["code"])
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received, status
    server.shutdown()


def run(source: str, hours_ago: float, status: str, message: str = "") -> None:
    started = datetime.now(UTC) - timedelta(hours=hours_ago)
    write_record(RunRecord(
        run_id=f"{source}-{hours_ago}", kind="run", source=source, source_type="postgres", owner="t",
        destination="local_duckdb", destination_type="duckdb", dataset=source, actor="cron", status=status,
        started_at=started, ended_at=started + timedelta(minutes=1),
        tables=[TableResult(name="t", mode="full", status="success" if status == "success" else "failed")],
        error=ErrorInfo(error_class="OperationalError", message=message, hint="check the password reference")
        if message else None))


def config(smtp, url: str) -> NotificationConfig:
    controller, _ = smtp
    store_secret("${secrets.hook.token}", TOKEN)
    return NotificationConfig.model_validate({"channels": [
        {"type": "email", "name": "ops", "smtp_host": "127.0.0.1", "smtp_port": controller.port, "starttls": False,
         "sender": "alerts@example.com", "to": ["ops@example.com"]},
        {"type": "webhook", "name": "hook", "url": url, "headers": {"Authorization": "Bearer ${secrets.hook.token}"}},
    ]})


def test_each_incident_sent_once_to_every_channel(ingest_env: Path, smtp, receiver) -> None:
    url, received, _ = receiver
    run("sales", 1, "failed", f"password authentication failed for user app ({DB_PASSWORD})")
    run("crm", 2, "quality_failed")
    run("hr", 40, "success")  # hourly schedule -> late
    store_secret("${secrets.sales.password}", DB_PASSWORD)  # registered: masked everywhere from now on
    schedules = {"sales": None, "crm": None, "hr": "0 * * * *"}
    cfg = config(smtp, url)
    first = send_alerts(cfg, incidents(load_run_data(), schedules, datetime.now(UTC)))
    assert sorted((r["channel"], r["event"], r["source"]) for r in first) == [
        ("hook", "failed", "sales"), ("hook", "late", "hr"), ("hook", "quality_failed", "crm"),
        ("ops", "failed", "sales"), ("ops", "late", "hr"), ("ops", "quality_failed", "crm")]
    assert len(smtp[1].messages) == 3, smtp[1].messages
    assert len(received) == 3, [(b["source"], b["event"]) for _, b in received]
    mail = next(m for m in smtp[1].messages if "sales" in m)
    assert "Subject: [ingestion] failed: sales" in mail and "check the password reference" in mail
    assert received[0][0]["Authorization"] == f"Bearer {TOKEN}"
    everything = json.dumps([r[1] for r in received]) + "".join(smtp[1].messages) + json.dumps(first)
    assert DB_PASSWORD not in everything and TOKEN not in everything
    again = send_alerts(cfg, incidents(load_run_data(), schedules, datetime.now(UTC)))
    assert again == [] and len(smtp[1].messages) == 3  # once per incident
    run("sales", 0.5, "failed", "timeout")  # a new failure is a new incident
    assert [r["source"] for r in send_alerts(cfg, incidents(load_run_data(), schedules, datetime.now(UTC)))] == [
        "sales", "sales"]


def test_failed_channel_is_retried_next_time(ingest_env: Path, smtp, receiver) -> None:
    url, _received, status = receiver
    run("sales", 1, "failed", "boom")
    cfg = config(smtp, url)
    status["code"] = 500
    results = send_alerts(cfg, incidents(load_run_data(), {}, datetime.now(UTC)))
    assert {r["channel"]: r["ok"] for r in results} == {"ops": True, "hook": False}
    status["code"] = 200
    assert [r["channel"] for r in send_alerts(cfg, incidents(load_run_data(), {}, datetime.now(UTC)))] == [
        "ops", "hook"]


def test_literal_webhook_token_is_refused() -> None:
    with pytest.raises(ValueError, match="reference"):
        NotificationConfig.model_validate({"channels": [
            {"type": "webhook", "name": "h", "url": "https://hooks.example.com/x?token=abcdef123456"}]})


def test_cli_alerts_reads_the_notifications_file(ingest_env: Path, smtp, capsys) -> None:
    run("sales", 1, "failed", "boom")
    (ingest_env / "configs" / "notifications.yaml").write_text(
        f"channels:\n  - {{type: email, name: ops, smtp_host: 127.0.0.1, smtp_port: {smtp[0].port}, "
        "starttls: false, sender: a@example.com, to: [b@example.com]}\n")
    assert main(["alerts", "--dry-run"]) == 0
    assert "would send to ops: failed sales" in capsys.readouterr().out and smtp[1].messages == []
    assert main(["alerts"]) == 0
    assert len(smtp[1].messages) == 1
