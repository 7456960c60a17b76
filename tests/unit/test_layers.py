"""The structure holds: the import-linter contracts of pyproject.toml ([tool.importlinter]) are
kept, a forbidden import breaks the build with the contract's name, no module reaches itself
through a cycle of imports, and the public entry points survive the packages they moved into."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

import ingestion_core

REPO = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).parent / "lint-imports"


def lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=240)


def test_the_contracts_are_kept() -> None:
    result = lint(REPO)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The two packages and the contracts, in a folder of their own to plant an import into."""
    for package in ("ingestion_core", "portal"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


PLANTED = [
    # (module, import planted into it, the contract that must name it)
    ("ingestion_core/common/settings.py", "import streamlit", "The library never imports Streamlit or the portal"),
    ("ingestion_core/observe/records.py", "import portal", "The library never imports Streamlit or the portal"),
    ("ingestion_core/engine/errors.py", "import ingestion_core.pipeline.runner", "Library stages"),
    ("ingestion_core/config/models/tables.py", "import ingestion_core.config.store",
     "Config models import nothing above them"),
    ("ingestion_core/quality/target.py", "import ingestion_core.quality.checks", "No import cycle"),
    ("portal/shared/data.py", "import portal.sources.test_run", "Portal layers"),
]


@pytest.mark.parametrize(("module", "statement", "contract"), PLANTED,
                         ids=[p[0].rsplit("/", 1)[-1] + ":" + p[1] for p in PLANTED])
def test_a_forbidden_import_breaks_the_contract_that_names_it(copy: Path, module: str, statement: str,
                                                              contract: str) -> None:
    path = copy / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{statement}  # planted by the test\n", encoding="utf-8")
    result = lint(copy)
    assert result.returncode != 0, result.stdout[-3000:]
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken.replace("\n", " "), result.stdout[-3000:]


def module_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each a cycle of imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return groups


def test_no_module_imports_itself_through_a_cycle() -> None:
    """Stricter than the siblings contract: a package's __init__ and its own modules count too
    (imports inside functions included; modules loaded by name from a registry do not)."""
    graph = grimp.build_graph("ingestion_core", "portal", cache_dir=None)
    assert module_cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("a", "a.b", "a.c", "a.d"):
        graph.add_module(module)
    graph.add_import(importer="a.b", imported="a.c")
    graph.add_import(importer="a.c", imported="a.b")
    graph.add_import(importer="a.d", imported="a.b")
    assert module_cycles(graph) == [["a.b", "a.c"]]


def test_the_public_entry_points_keep_working() -> None:
    from ingestion_core.cli.main import main
    from ingestion_core.config.store import ConfigStore
    from ingestion_core.engine.sources import test_connection
    from ingestion_core.pipeline.runner import preview_source, run_source

    assert ingestion_core.run_source is run_source
    assert ingestion_core.preview_source is preview_source
    assert ingestion_core.ConfigStore is ConfigStore
    assert ingestion_core.test_connection is test_connection
    assert ingestion_core.main is main
    with pytest.raises(AttributeError, match="no attribute 'runner'"):
        _ = ingestion_core.runner
    result = subprocess.run([sys.executable, "-m", "ingestion_core", "--help"], capture_output=True, text=True,
                            timeout=120, cwd=REPO)
    assert result.returncode == 0 and "usage: ingest" in result.stdout, result.stderr


def test_no_module_imports_through_its_own_packages_init() -> None:
    """``from ingestion_core.onboarding import discovery`` inside ``onboarding/probing.py`` runs the
    package's ``__init__``, which imports ``probing``: a cycle grimp records as a plain submodule
    import. A module names its sibling module itself (``from ingestion_core.onboarding.discovery import x``)."""
    import ast

    found = []
    for path in [*(REPO / "ingestion_core").rglob("*.py"), *(REPO / "portal").rglob("*.py")]:
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                continue
            init = REPO / Path(*node.module.split(".")) / "__init__.py"
            ancestor = module.startswith(node.module + ".") and not module.endswith("__init__")
            if ancestor and init.is_file() and imports_its_own_modules(init, node.module):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: from {node.module} import ...")
    assert not found, found


def imports_its_own_modules(init: Path, package: str) -> bool:
    """The package's ``__init__`` imports modules of the package itself (a registry such as
    ``engine/sources/__init__.py`` that loads its kinds by name does not)."""
    import ast

    for node in ast.walk(ast.parse(init.read_text(encoding="utf-8"))):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
            [a.name for a in node.names] if isinstance(node, ast.Import) else [])
        if any(name.startswith(package + ".") for name in names):
            return True
    return False
