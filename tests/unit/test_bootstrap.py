"""`make run` installs only what the portal needs (requirements.txt); `make test` adds the test
tools (requirements-dev.txt). Runs scripts/bootstrap.sh against a venv whose pip records what it
was asked to install."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPILE = "-m compileall -q ingestion_core"  # the package's bytecode, written on every bootstrap


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("python", "pip"):
        script = bin_dir / tool
        script.write_text(f'#!/bin/sh\necho "$@" >> "{tmp_path}/pip-calls"\n')
        script.chmod(0o755)
    # --test goes on to npm (Azurite) after the Python packages: stop it there
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "npm").write_text("#!/bin/sh\nexit 7\n")
    (tools / "npm").chmod(0o755)
    return tmp_path / "venv"


def _checkout(tmp: Path) -> Path:
    """A copy of the files bootstrap.sh reads, without the checkout's own stamps: whether this
    machine already ran `npm ci` (tests/node/node_modules) must not change what the test sees."""
    root = tmp / "checkout"
    if not root.exists():
        for name in ("scripts/bootstrap.sh", "requirements.txt", "requirements-dev.txt", "pyproject.toml",
                     "tests/node/package-lock.json"):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, root / name)
    return root


def _bootstrap(venv: Path, *args: str) -> list[str]:
    calls = venv.parent / "pip-calls"
    calls.unlink(missing_ok=True)
    env = {**os.environ, "INGEST_VENV": str(venv), "PATH": f"{venv.parent / 'tools'}:{os.environ['PATH']}"}
    root = _checkout(venv.parent)
    done = subprocess.run(["bash", str(root / "scripts/bootstrap.sh"), *args], env=env, cwd=root,
                          capture_output=True, text=True)
    assert done.returncode == (7 if "--test" in args else 0), done.stderr
    return calls.read_text().splitlines() if calls.exists() else []


def test_make_run_installs_only_the_portal_requirements(venv: Path) -> None:
    calls = _bootstrap(venv)
    installs = [c for c in calls if " -r " in f" {c}"]
    assert installs and all("requirements-dev.txt" not in c for c in calls), calls
    assert any("-r requirements.txt" in c for c in installs)
    assert _bootstrap(venv) == [COMPILE]  # nothing changed: nothing reinstalled, the bytecode refreshed


def test_bootstrap_writes_the_packages_bytecode(venv: Path) -> None:
    """With PYTHONDONTWRITEBYTECODE set, Python never writes it: each `ingest` process compiled
    the ~60 modules it imports again (0.09 s CPU of an `ingest preview`)."""
    assert _bootstrap(venv)[-1] == COMPILE


def test_make_test_adds_the_test_tools(venv: Path) -> None:
    _bootstrap(venv)
    calls = _bootstrap(venv, "--test")
    assert any("-r requirements-dev.txt" in c for c in calls), calls
