"""What to do after an error no rule knows: the hint points at the run log only when that log
was written (issue 14: "see the run log for details" was shown for a test run that never wrote
one), else it is a plain generic fix; where it failed (a code trail) goes to the portal's log,
never into the hint an analyst reads (QA: a psycopg2 file:line trail shown as "What to do")."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import pytest

from ingestion_core.engine.errors import (
    ODBC_DRIVER_HINT,
    UNKNOWN_ERROR_HINT,
    MissingDriverError,
    explain,
    for_typed_secrets,
)
from portal.sources import preview_jobs
from tests.conftest import REPO


def _fail_deep_inside() -> None:
    raise RuntimeError("something nobody foresaw (password=hunter2)")


def _caught() -> BaseException:
    try:
        _fail_deep_inside()
    except RuntimeError as exc:
        return exc
    raise AssertionError("unreachable")


def test_without_a_log_the_hint_is_a_plain_fix_and_the_trail_goes_to_the_log(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for log in (None, str(tmp_path / "never-written.log")):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="ingestion_core.errors"):
            message, hint = explain(_caught(), log)
        assert message.startswith("RuntimeError: something nobody foresaw")
        assert hint == UNKNOWN_ERROR_HINT and "host, port" in hint and "portal's log" in hint
        assert not re.search(r"\.py:\d+", hint)
        logged = caplog.text
        assert "test_error_hints.py:" in logged and "in _fail_deep_inside" in logged
        assert "hunter2" not in hint + message + logged


def test_with_a_written_log_the_hint_names_its_path(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text("...")
    assert explain(_caught(), str(log))[1] == f"the run log has the details: {log}"


def test_a_test_run_that_fails_before_its_record_says_where(ingest_env: Path) -> None:
    shutil.copy(REPO / "configs" / "sources" / "demo_shop.yaml", ingest_env / "configs" / "sources")
    job, _ = preview_jobs.start_preview("demo_shop", actor="")  # refused before any record or log exists
    assert job.wait(120)
    assert job.record is None
    message, hint = job.error
    assert message == "ValueError: a run needs an actor (who starts it)"
    assert hint == UNKNOWN_ERROR_HINT, hint


def _refused() -> BaseException:
    try:
        raise RuntimeError('FATAL: password authentication failed for user "ana"')
    except RuntimeError as exc:
        return exc


def test_a_refused_login_hint_says_how_the_password_was_given() -> None:
    _, hint = explain(_refused())
    assert "the password reference (the secrets file or environment variable it points to)" in hint
    typed = for_typed_secrets(hint, {"source.password": "s3cr3t"})
    assert typed == "the server refused the credentials: check username and the password you typed"
    assert for_typed_secrets(hint, {}) == hint == for_typed_secrets(hint, {"source.password": ""})
    assert for_typed_secrets("check host and port", {"source.password": "x"}) == "check host and port"


def test_a_tls_handshake_error_has_its_own_hint() -> None:
    try:
        raise RuntimeError("connection to server at \"127.0.0.1\", port 5 failed: received invalid response to "
                           "SSL negotiation: H")
    except RuntimeError as exc:
        hint = explain(exc)[1]
    assert "host and port point at the database server itself" in hint and "sslmode" in hint


@pytest.mark.parametrize("error", [
    RuntimeError("('01000', \"[01000] [unixODBC][Driver Manager]Can't open lib 'ODBC Driver 18 for SQL Server' : "
                 "file not found (0) (SQLDriverConnect)\")"),
    MissingDriverError("the mssql driver 'pyodbc' cannot be loaded (libodbc.so.2: cannot open shared object file); "
                       "install it: apt-get install unixodbc and Microsoft's 'ODBC Driver 18 for SQL Server'"),
])
def test_a_missing_odbc_driver_says_to_ask_the_platform_team(error: BaseException) -> None:
    hint = explain(error)[1]
    assert hint == ODBC_DRIVER_HINT
    assert '"ODBC Driver 18 for SQL Server"' in hint and "msodbcsql18" in hint and "platform team" in hint


def test_a_login_refused_by_the_odbc_driver_is_about_the_credentials() -> None:
    error = RuntimeError("('28000', \"[28000] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]Login failed for "
                         "user 'reader'. (18456)\")")
    assert explain(error)[1].startswith("the server refused the credentials")


def test_another_missing_driver_names_the_platform_team() -> None:
    hint = explain(MissingDriverError("the postgres driver 'psycopg2' cannot be loaded (No module named "
                                      "'psycopg2'); install it: pip install psycopg2-binary"))[1]
    assert "ask your platform team" in hint and "docs/operations.md" in hint


@pytest.mark.parametrize("message", [
    "NoCredentialsError: Unable to locate credentials",
    "ValueError: Must provide either a connection_string or account_name with credentials!!",
    "DefaultAzureCredential failed to retrieve a token from the included credentials.",
    "google.auth.exceptions.DefaultCredentialsError: Your default credentials were not found.",
])
def test_a_run_with_credentials_off_on_a_machine_without_any_says_how_to_give_access(message: str) -> None:
    try:
        raise RuntimeError(message)
    except RuntimeError as exc:
        hint = explain(exc)[1]
    assert hint.startswith("the source's Credentials are off, so this machine's own credentials are used")
    assert "turn Credentials on" in hint and "run log" not in hint
