"""docs/architecture.md matches the code: every package and module of the library is on the page,
and every dotted name it uses (``engine.hooks.AFTER_TABLE_LOAD``, ``pipeline.runner``) is a real
module, or a real name in one."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGE = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
PACKAGES = sorted(p.name for p in (REPO / "ingestion_core").iterdir() if (p / "__init__.py").exists())
DOTTED = re.compile(rf"(?<![/\w.])(?:ingestion_core\.)?((?:{'|'.join(PACKAGES)})(?:\.[A-Za-z_]\w*)+)")
FILES = (".py", ".md", ".yml", ".yaml", ".json", ".toml")


def resolve(dotted: str) -> object:
    """The module (longest importable prefix under ingestion_core), then its attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        path = REPO / "ingestion_core" / Path(*parts[:cut])
        if not (path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()):
            continue
        found: object = importlib.import_module("ingestion_core." + ".".join(parts[:cut]))
        for attribute in parts[cut:]:
            found = getattr(found, attribute)
        return found
    raise ModuleNotFoundError(dotted)


def test_the_page_names_every_package_and_module() -> None:
    modules = [p for p in (REPO / "ingestion_core").rglob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert len(modules) > 60
    # a module by its path inside its stage package: `runner.py`, `sources/rest.py`, `models/tables.py`
    inside = {p: p.relative_to(REPO / "ingestion_core").parts for p in modules}
    missing = [str(p.relative_to(REPO)) for p, parts in inside.items()
               if f"`{'/'.join(parts[1:]) if len(parts) > 1 else parts[0]}`" not in PAGE]
    assert not missing, f"docs/architecture.md does not say what these are: {missing}"
    assert not [p for p in PACKAGES if f"ingestion_core/{p}/" not in PAGE]


@pytest.mark.parametrize("dotted", sorted({d for d in DOTTED.findall(PAGE) if not d.endswith(FILES)}))
def test_every_dotted_name_on_the_page_exists(dotted: str) -> None:
    resolve(dotted.rstrip("."))


def test_a_name_that_is_not_there_is_caught() -> None:
    with pytest.raises((ModuleNotFoundError, AttributeError)):
        resolve("engine.plan.NoSuchPlan")
    with pytest.raises((ModuleNotFoundError, AttributeError)):
        resolve("pipeline.no_such_module")
    with pytest.raises(ModuleNotFoundError):
        resolve("nowhere.at_all")
