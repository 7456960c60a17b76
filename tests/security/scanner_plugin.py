"""The session-wide secrets scan (a pytest plugin, loaded from tests/conftest.py).

At start: the session's fake secrets are made (``INGEST_TEST_SECRET_*``; the fixtures of tests/services.py,
tests/http_api.py and tests/objectstores.py read them). During the run: every ``INGEST_*`` path a test
used is noted; server folders are scanned just before the fixtures remove them (``scan_before_removal``);
browser page text is scanned when a screenshot is taken (``scan_page_text``). At the end: pytest's basetemp,
those paths, files of the checkout and of the temp dir changed during the session are scanned for every
secret value (plain, URL-encoded, base64). A hit fails the session and names the file and the secret,
never the value. ``INGEST_SECRET_SCAN=0`` turns the end-of-session scan off (for debugging only).
"""

from __future__ import annotations

import fnmatch
import os
import tempfile
import time
from pathlib import Path

import pytest

from tests.security.scanner import Scanner, ScanResult, fake_secret, scan_paths, session_secrets

REPO = Path(__file__).resolve().parents[2]
# Made at session start: every credential a test server needs, and the values tests type into forms
# (name: prefix, suffix). Database passwords end with characters a URL must encode, as real ones do.
URL_SPECIAL = "+/=@:"
SESSION_SECRETS = {
    "postgres_password": ("", URL_SPECIAL), "mariadb_password": ("", URL_SPECIAL), "api_token": ("tok-", ""),
    "api_key": ("key-", ""), "api_password": ("pw-", ""), "api_client_secret": ("cs-", ""),
    "form_password": ("", URL_SPECIAL), "wrong_password": ("", URL_SPECIAL),
}
REPO_SKIP = (".venv", ".git", "node_modules", "__pycache__", ".ruff_cache")
# Folders of /tmp that are not the suite's: the machinery running the sessions, other pytest sessions.
TMP_SKIP = ("bash_jobs.*", "bash_tool_*", "prompts", "pytest-of-*", "hsperfdata_*", "systemd-private-*",
            ".X11-unix", ".ICE-unix")

_started = time.time()
_used_paths: set[Path] = set()
_early = ScanResult()


def scan_before_removal(path: Path) -> None:
    """Scan a folder a fixture is about to delete (a server's data and logs); the hits count at session end."""
    _early.add(scan_paths([path], session_secrets()))


def scan_page_text(text: str, where: str) -> None:
    """Scan a browser page's text (taken with a screenshot) that may not be saved anywhere."""
    Scanner(session_secrets()).scan_text(text, where, _early)


def pytest_configure(config: pytest.Config) -> None:
    global _started
    _started = time.time() - 2  # file times may lag the clock by a tick
    for name, (prefix, suffix) in SESSION_SECRETS.items():
        fake_secret(name, prefix, suffix)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):  # type: ignore[no-untyped-def]
    try:
        return (yield)
    finally:
        _note_ingest_paths()


def _note_ingest_paths() -> None:
    for name, value in os.environ.items():
        if name.startswith("INGEST_") and not name.startswith("INGEST_TEST_SECRET_"):
            path = Path(value.removeprefix("file://"))
            if value and path.is_absolute() and path.exists():
                _used_paths.add(path)


def _tmp_roots(temp: Path) -> list[Path]:
    """The entries of the temp dir that may hold the suite's files."""
    return [entry for entry in temp.iterdir()
            if not any(fnmatch.fnmatch(entry.name, p) for p in TMP_SKIP) and not _owned_by_other_process(entry)]


def _owned_by_other_process(folder: Path) -> bool:
    """A server folder (tests/services.py) of another live test session."""
    try:
        owner = int((folder / "owner.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    if owner == os.getpid():
        return False
    try:
        os.kill(owner, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def session_scan(config: pytest.Config) -> ScanResult:
    """Everything the session produced, scanned for the session's secrets."""
    values = session_secrets()
    result = ScanResult()
    result.add(_early)
    factory = getattr(config, "_tmp_path_factory", None)
    basetemp = factory.getbasetemp() if factory is not None and factory._basetemp is not None else None
    scan_paths([basetemp] if basetemp else [], values, into=result)
    scan_paths(sorted(_used_paths), values, into=result)
    scan_paths(_tmp_roots(Path(tempfile.gettempdir())), values, since=_started, skip_names=TMP_SKIP, into=result)
    repo_roots = [p for p in REPO.iterdir() if p.name not in REPO_SKIP]
    scan_paths(repo_roots, values, since=_started, skip_names=REPO_SKIP, into=result)
    return result


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("INGEST_SECRET_SCAN", "1").lower() in ("0", "false", "no", "off"):
        return
    result = session_scan(session.config)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("")  # ends the progress line
    write = reporter.write_line if reporter is not None else print
    for hit in result.hits:
        write(f"secret scan: LEAK {hit}")
    write(result.summary())
    if result.hits and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
