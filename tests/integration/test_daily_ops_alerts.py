"""The daily summary e-mail (an HTML table) received by a local SMTP sink, from the CLI and from
the local scheduler at its cron; and a schema-drift alert after a real run added a column,
shown on the Overview too."""

from __future__ import annotations

import email
import email.policy
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from streamlit.testing.v1 import AppTest

from ingestion_core.cli.main import main
from ingestion_core.observe.alerts import NotificationConfig, incidents, send_alerts
from ingestion_core.observe.records import RunRecord, TableResult, write_record
from ingestion_core.observe.run_metrics import load_run_data
from ingestion_core.pipeline.scheduler import Scheduler
from tests.integration import test_alerts

DAY = date(2026, 1, 5)
smtp = test_alerts.smtp  # the local SMTP sink (aiosmtpd)
OVERVIEW = Path(__file__).resolve().parents[2] / "pages" / "overview.py"


def notifications(project: Path, port: int, extra: str = "") -> None:
    (project / "configs" / "notifications.yaml").write_text(
        f"channels:\n  - {{type: email, name: ops, smtp_host: 127.0.0.1, smtp_port: {port}, starttls: false, "
        "sender: ingest@example.com, to: [ops@example.com]}\n" + extra)


def record(source: str, status: str, rows: int, hour: int, quality: list[dict] | None = None) -> None:
    started = datetime(DAY.year, DAY.month, DAY.day, hour, tzinfo=UTC)
    write_record(RunRecord(
        run_id=f"{source}-{hour}", kind="run", source=source, source_type="sqlite", owner="market-de",
        destination="local_duckdb", destination_type="duckdb", dataset=source, actor="scheduler", status=status,
        started_at=started, ended_at=started + timedelta(seconds=75), duration_s=75.0, rows_total=rows,
        tables=[TableResult(name="orders", mode="full", status=status, rows=rows, quality=quality or [])]))


def source(project: Path, name: str) -> None:
    (project / "configs" / "sources" / f"{name}.yaml").write_text(
        f"name: {name}\nowner: market-de\nsource: {{type: sqlite, path: shop.sqlite}}\n"
        "tables:\n  - {name: orders, mode: full}\n")


def summary_table(text: str) -> str:
    message = email.message_from_string(text, policy=email.policy.default)
    html = next(p for p in message.walk() if p.get_content_type() == "text/html")
    return html.get_payload(decode=True).decode()


def test_the_daily_summary_email_is_an_html_table_sent_once_per_day(ingest_env: Path, smtp, capsys) -> None:
    controller, sink = smtp
    notifications(ingest_env, controller.port)
    for name in ("sales", "crm", "hr"):
        source(ingest_env, name)
    record("sales", "success", 1200, 6, [{"check": "not_null", "status": "pass"},
                                         {"check": "unique", "status": "fail"}])
    record("crm", "failed", 0, 7)

    assert main(["alerts", "--summary", "--day", "2026-01-05"]) == 0
    assert len(sink.messages) == 1
    message = email.message_from_string(sink.messages[0], policy=email.policy.default)
    assert message["Subject"] == "[ingestion] daily summary 2026-01-05: 1 of 3 sources succeeded, 1 did not, 1 did " \
        "not run"
    html = summary_table(sink.messages[0])
    assert "<th style='text-align:left;padding:4px 8px'>Checks</th>" in html
    for cell in ("sales", "success", "1,200", "1 min 15 s", "1/2 passed", "crm", "failed", "hr", "no run"):
        assert f">{cell}<" in html, cell
    assert main(["alerts", "--summary", "--day", "2026-01-05"]) == 0  # once per day
    assert len(sink.messages) == 1
    said = capsys.readouterr().err
    assert "sent already (--force sends it again)" in said and "no e-mail channel" not in said


def test_the_summary_without_an_email_channel_says_so_and_where_to_add_one(ingest_env: Path, capsys) -> None:
    source(ingest_env, "sales")
    assert main(["alerts", "--summary", "--day", "2026-01-05"]) == 0
    said = capsys.readouterr().err
    assert "no e-mail channel is configured in" in said and "notifications.yaml" in said
    assert "sent already" not in said


def test_the_scheduler_sends_the_summary_at_its_cron(ingest_env: Path, smtp) -> None:
    controller, sink = smtp
    notifications(ingest_env, controller.port, "daily_summary: '0 7 * * *'\n")
    source(ingest_env, "sales")
    record("sales", "success", 10, 6)
    clock_now = {"now": datetime(2026, 1, 6, 6, 59, tzinfo=UTC)}
    scheduler = Scheduler(actor="scheduler", clock=lambda: clock_now["now"])
    scheduler.tick()
    scheduler.wait()
    assert sink.messages == []
    clock_now["now"] = datetime(2026, 1, 6, 7, 0, 10, tzinfo=UTC)
    scheduler.tick()
    scheduler.wait()
    subjects = [email.message_from_string(m, policy=email.policy.default)["Subject"] for m in sink.messages]
    assert subjects == ["[ingestion] daily summary 2026-01-05: 1 of 1 sources succeeded"]
    assert ">10<" in summary_table(sink.messages[0])


def test_a_column_added_raises_a_schema_drift_alert_and_shows_on_the_overview(ingest_env: Path, smtp) -> None:
    controller, sink = smtp
    with sqlite3.connect(ingest_env / "shop.sqlite") as con:
        con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, amount REAL)")
        con.executemany("INSERT INTO orders VALUES (?, ?)", [(i, i / 2) for i in range(20)])
    source(ingest_env, "shop")
    assert main(["run", "shop"]) == 0
    with sqlite3.connect(ingest_env / "shop.sqlite") as con:
        con.execute("ALTER TABLE orders ADD COLUMN email TEXT")
        con.execute("UPDATE orders SET email = 'a@example.com'")
    assert main(["run", "shop"]) == 0

    found = [i for i in incidents(load_run_data(), {}, datetime.now(UTC)) if i.event == "schema_drift"]
    assert len(found) == 1 and "orders: added: email (text)" in found[0].summary
    config = NotificationConfig.model_validate({"channels": [
        {"type": "email", "name": "ops", "smtp_host": "127.0.0.1", "smtp_port": controller.port, "starttls": False,
         "sender": "a@example.com", "to": ["b@example.com"]}]})
    assert [r["event"] for r in send_alerts(config, found)] == ["schema_drift"]
    assert "Subject: [ingestion] schema drift: shop" in sink.messages[0]
    assert send_alerts(config, found) == []  # once per incident

    page = AppTest.from_file(str(OVERVIEW), default_timeout=60)
    page.run()
    assert not page.exception
    drift = [i.value for i in page.info if "columns changed" in i.value]
    assert len(drift) == 1 and "shop.orders" in drift[0] and r"added: email \(text\)" in drift[0]
