"""What the source form says back: schedules in words and their next runs, the summary, a failed
connection test attached to its field, and tables the database does not have."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingestion_core.config.store import validate_source_data
from ingestion_core.engine.sources import ConnectionReport
from ingestion_core.onboarding import review

TUESDAY_NOON = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("cron", "kind", "words"), [
    (None, "none", "not scheduled"),
    ("15 * * * *", "hourly", "every hour at :15"),
    ("0 6 * * *", "daily", "daily at 06:00 UTC"),
    ("30 7 * * 1", "weekly", "weekly on Mon at 07:30 UTC"),
    ("0 6 1 * *", "custom", "cron 0 6 1 * * (UTC)"),
    ("0 6 * * 1-5", "custom", "cron 0 6 * * 1-5 (UTC)"),
])
def test_a_cron_is_a_preset_when_it_is_one_and_says_itself_in_words(cron, kind, words) -> None:
    assert review.schedule_of(cron).kind == kind
    assert review.describe_schedule(cron) == words
    if kind not in ("none", "custom"):
        assert review.schedule_of(cron).cron() == cron  # the picker writes back what it read


def test_next_runs_are_read_in_the_time_zone() -> None:
    runs = review.next_runs("0 6 * * *", "Europe/Berlin", 3, after=TUESDAY_NOON)
    assert [r.isoformat() for r in runs] == ["2026-12-09T06:00:00+01:00", "2026-12-10T06:00:00+01:00",
                                             "2026-12-11T06:00:00+01:00"]


def test_the_summary_names_tables_modes_and_the_next_run() -> None:
    model, issues = validate_source_data({
        "name": "sales", "owner": "market-de", "schedule": "0 6 * * *",
        "source": {"type": "postgres", "host": "db", "database": "sales"},
        "tables": [{"name": "customers", "schema": "crm", "mode": "incremental", "cursor": "updated_at"},
                   {"name": "orders", "schema": "crm", "mode": "merge", "primary_key": ["id"]}]})
    assert model is not None, issues
    assert review.summary(model, after=TUESDAY_NOON) == (
        "2 tables from crm; customers incremental on updated_at; orders merged on id; "
        "daily at 06:00 UTC, next run Wed 06:00")


@pytest.mark.parametrize(("reason", "path"), [
    ('FATAL: password authentication failed for user "ana"', "source.password"),
    ("fe_sendauth: no password supplied", "source.password"),
    ('connection to server at "127.0.0.1", port 1 failed: Connection refused', "source.port"),
    ('FATAL: database "sale" does not exist', "source.database"),
    ("could not translate host name \"dbx\" to address", "source.host"),
])
def test_a_failed_test_is_attached_to_the_field_to_fix(reason, path) -> None:
    report = ConnectionReport(False, reason, "the server refused the credentials: check username and the "
                                             "password reference (the secrets file or environment variable it "
                                             "points to)")
    typed = review.connection_issues(report, {"source.password": "x"})
    assert [i.path for i in typed] == [path]  # what the server said wins over the hint's words
    assert "the password you typed" in typed[0].message and "reference" not in typed[0].message
    assert "password reference" in review.connection_issues(report, {})[0].message  # a reference was not typed
    assert review.connection_issues(ConnectionReport(True, "connected", ""), {}) == []


def test_a_missing_table_names_the_closest_ones() -> None:
    found = {"crm": ["contacts", "contracts", "notes"]}
    issues = review.missing_tables([{"name": "contact", "schema": "crm"}, {"name": "notes", "schema": "crm"},
                                    {"name": "x", "schema": "public"}], found)
    assert [(i.path, i.message) for i in issues] == [
        ("tables[0].name", "table 'contact' is not in schema crm: did you mean 'contacts', 'contracts'?")]
