"""The package a Databricks job installs: the wheel is built from this checkout by the tests,
installed (without dependencies) into a throwaway venv, and its ``ingest`` console script runs
``ingest validate`` from outside the checkout."""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

from tests.conftest import REPO
from tests.databricks_api import built_wheel, wheel_bin


def run_script(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([str(wheel_bin() / "ingest"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_wheel_holds_the_package_and_the_console_script() -> None:
    wheel = built_wheel()
    assert wheel.name == "ingestion_portal-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read("ingestion_portal-0.1.0.dist-info/entry_points.txt").decode()
    assert "[console_scripts]\ningest = ingestion_core.cli.main:main" in entry_points
    assert "[fsspec.specs]\nvolumes = ingestion_core.storage.volumes:VolumeFileSystem" in entry_points
    assert {"ingestion_core/cli/main.py", "ingestion_core/cli/job_run.py", "portal/__init__.py"} <= names
    assert not any(name.startswith(("tests/", "configs/")) for name in names)


def test_the_console_script_validates_configs_from_the_installed_wheel(ingest_env: Path, tmp_path: Path) -> None:
    configs = ingest_env / "configs"
    (configs / "sources" / "shop.yaml").write_text(
        "name: shop\nowner: market-de\nsource: {type: sqlite, path: shop.sqlite}\ntables: [{name: orders}]\n")
    result = run_script("validate", str(configs), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 of 2 files valid" in result.stderr  # the source and the repo's local_duckdb destination

    (configs / "sources" / "bad.yaml").write_text(
        "name: bad\nowner: market-de\nsource: {type: sqlite, path: x.sqlite}\ntables: [{name: t, mode: merge}]\n")
    result = run_script("validate", str(configs), cwd=tmp_path)
    assert result.returncode == 1
    assert f"{configs / 'sources' / 'bad.yaml'}:tables[0].primary_key: table 't' has mode merge" in result.stdout

    where = subprocess.run([str(wheel_bin() / "python"), "-c", "import ingestion_core; print(ingestion_core.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True,
                           env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}).stdout.strip()
    assert where.startswith(str(wheel_bin().parent)) and not where.startswith(str(REPO))


def test_the_installed_wheel_declares_the_volumes_protocol_to_fsspec(tmp_path: Path) -> None:
    """fsspec finds ``volumes://`` through the entry point, before anything imports ingestion_core."""
    code = ("import sys, fsspec; cls = fsspec.get_filesystem_class('volumes'); "
            "print(cls.__module__, cls.__name__, 'ingestion_core' in sys.modules)")
    result = subprocess.run([str(wheel_bin() / "python"), "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, timeout=120)
    assert result.stdout.split() == ["ingestion_core.storage.volumes", "VolumeFileSystem", "True"], result.stderr
