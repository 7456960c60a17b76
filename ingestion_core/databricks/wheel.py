"""The wheel a Databricks job installs: this package, with the ``ingest`` console script.

:func:`build_wheel` builds it from a source checkout (the folder holding pyproject.toml) with
pip and setuptools, in a copy of the checkout so that no ``build/`` or ``*.egg-info`` folder is
left behind; ``pip wheel . --no-deps -w dist`` does the same by hand.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import ingestion_core

DISTRIBUTION = "ingestion-portal"  # the wheel's package name (python_wheel_task.package_name)
ENTRY_POINT = "ingest"
_SOURCES = ("pyproject.toml", "requirements.txt", "README.md", "ingestion_core", "portal")


def source_checkout() -> Path | None:
    """The checkout this package runs from, when it runs from one."""
    root = Path(ingestion_core.__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and f'name = "{DISTRIBUTION}"' in pyproject.read_text(encoding="utf-8"):
        return root
    return None


def build_wheel(out_dir: Path, project: Path | None = None) -> Path:
    """Build the wheel into ``out_dir``; returns its path."""
    project = project or source_checkout()
    if project is None:
        raise FileNotFoundError("no source checkout to build the wheel from: pass --wheel PATH (build it in the "
                                "checkout with: pip wheel . --no-deps -w dist)")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ingest-wheel-") as tmp:
        for name in _SOURCES:
            source = project / name
            if source.is_dir():
                shutil.copytree(source, Path(tmp) / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            elif source.is_file():
                shutil.copy2(source, Path(tmp) / name)
        before = set(out_dir.glob("*.whl"))
        result = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", tmp, "--no-deps", "--no-build-isolation", "--no-index",
             "--quiet", "-w", str(out_dir)], capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"building the wheel failed: {(result.stderr or result.stdout).strip()[-1500:]}")
    wheels = set(out_dir.glob("ingestion_portal-*.whl"))
    return sorted(wheels - before or wheels)[-1]
