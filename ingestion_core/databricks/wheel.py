"""The wheel a Databricks job installs: this package, with the ``ingest`` console script.

:func:`build_wheel` builds it from a source checkout (the folder holding pyproject.toml) with
pip and setuptools, in a copy of the checkout so that no ``build/`` or ``*.egg-info`` folder is
left behind; ``pip wheel . --no-deps -w dist`` does the same by hand. :func:`deploy_wheel` keeps
one build per content of the sources (``INGEST_DATA_DIR/wheels/<fingerprint>/``), so deploying
again from an unchanged checkout uploads nothing new.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import ingestion_core
from ingestion_core.common import settings

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


def sources_fingerprint(project: Path) -> str:
    """SHA-256 over the names and bytes of every file the wheel is built from."""
    digest = hashlib.sha256()
    for name in _SOURCES:
        root = project / name
        files = [root] if root.is_file() else sorted(root.rglob("*")) if root.is_dir() else []
        for path in files:
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                digest.update(path.relative_to(project).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def deploy_wheel(cache_dir: Path | None = None, project: Path | None = None) -> Path:
    """The wheel to deploy: built from the checkout once per content of its sources."""
    project = project or source_checkout()
    if project is None:
        raise FileNotFoundError("no source checkout to build the wheel from: deploy with ingest deploy --wheel PATH "
                                "(build it in the checkout with: pip wheel . --no-deps -w dist)")
    folder = (cache_dir or settings.data_dir() / "wheels") / sources_fingerprint(project)[:16]
    built = sorted(folder.glob("ingestion_portal-*.whl")) if folder.is_dir() else []
    return built[-1] if built else build_wheel(folder, project)


def wheel_file_name(project: Path | None = None) -> str:
    """The file name the wheel gets (what a job's settings name), without building it."""
    import tomllib
    from importlib.metadata import PackageNotFoundError, version

    project = project or source_checkout()
    if project is not None:
        number = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    else:
        try:
            number = version(DISTRIBUTION)
        except PackageNotFoundError:
            number = "0.0.0"
    return f"{DISTRIBUTION.replace('-', '_')}-{number}-py3-none-any.whl"
