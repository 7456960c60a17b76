"""Shared fixtures. Every test runs with INGEST_CONFIG_DIR / INGEST_RUNS_DIR / INGEST_DATA_DIR /
INGEST_SECRETS_FILE pointing into its own temp folder, so the suite never writes into the
checkout."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest_plugins = ["tests.security.scanner_plugin", "tests.services", "tests.objectstores"]

REPO = Path(__file__).resolve().parent.parent
REPO_CONFIGS = REPO / "configs"


def services_required() -> bool:
    """`.ci/run` sets INGEST_REQUIRE_SERVICES=1, CI sets CI=true: then a missing server fails."""
    return any(os.environ.get(n, "").lower() in ("1", "true", "yes") for n in ("INGEST_REQUIRE_SERVICES", "CI"))


def skip_or_fail(reason: str) -> None:
    if services_required():
        pytest.fail(f"{reason} (services are required: INGEST_REQUIRE_SERVICES / CI is set)")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def ingest_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder per test: configs/ (with the repo's destinations), runs/, .ingest/."""
    project = tmp_path / "project"
    (project / "configs" / "sources").mkdir(parents=True)
    shutil.copytree(REPO_CONFIGS / "destinations", project / "configs" / "destinations")
    monkeypatch.setenv("INGEST_CONFIG_DIR", str(project / "configs"))
    monkeypatch.setenv("INGEST_RUNS_DIR", str(project / "runs"))
    monkeypatch.setenv("INGEST_DATA_DIR", str(project / ".ingest"))
    monkeypatch.setenv("INGEST_SECRETS_FILE", str(project / ".ingest" / "secrets.toml"))
    monkeypatch.delenv("INGEST_ACTOR", raising=False)
    return project
