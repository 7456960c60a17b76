"""The docs say what the code does: the config reference is the generator's output and covers
every field of every model; the architecture names the real CLI commands, env vars and files."""

from __future__ import annotations

import argparse
import functools
import importlib.util
import re
import sys
import typing
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import BaseModel

from ingestion_core.cli import main as cli
from ingestion_core.common import settings
from ingestion_core.config.models import DestinationConfig
from ingestion_core.config.models.checks import CHECKS, Check
from ingestion_core.config.models.source_file import SOURCE_FILE_MODELS

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "docs" / "config-reference.md"
ARCHITECTURE = REPO / "docs" / "architecture.md"
REGENERATE = ".venv/bin/python scripts/gen_config_reference.py"


@functools.cache
def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_config_reference", REPO / "scripts" / "gen_config_reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def models_in(annotation: typing.Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in models_in(arg)]


def every_model() -> list[type[BaseModel]]:
    """Each config model reachable from a source or destination file, found independently of
    the generator."""
    todo = [*SOURCE_FILE_MODELS.values(), *models_in(DestinationConfig), Check, *CHECKS.values()]
    seen: list[type[BaseModel]] = []
    while todo:
        model = todo.pop(0)
        if model not in seen:
            seen.append(model)
            todo += [m for info in model.model_fields.values() for m in models_in(info.annotation)]
    return seen


def sections(markdown: str) -> dict[str, str]:
    """Heading text -> the text up to the next heading."""
    parts = re.split(r"^#{2,3} (.+)$", markdown, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@functools.cache
def generated_reference() -> str:
    return load_generator().render()


def test_config_reference_is_generated_from_the_models() -> None:
    committed = REFERENCE.read_text(encoding="utf-8") if REFERENCE.exists() else ""
    assert committed == generated_reference(), (
        f"docs/config-reference.md is out of date with the models; regenerate it: {REGENERATE}"
    )


@pytest.mark.parametrize("model", every_model(), ids=lambda m: m.__name__)
def test_config_reference_lists_every_field(model: type[BaseModel]) -> None:
    by_heading = sections(generated_reference())
    heading = "Source file" if model in SOURCE_FILE_MODELS.values() else model.__name__
    assert heading in by_heading, f"no section '{heading}' in docs/config-reference.md"
    missing = [info.alias or name for name, info in model.model_fields.items()
               if f"| `{info.alias or name}` |" not in by_heading[heading]]
    assert not missing, f"{model.__name__}: fields {missing} missing from its section"


def test_config_reference_lists_every_check_kind_and_mode() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    for kind in CHECKS:
        assert f"[`{kind}`]" in text
    for mode in ("full", "append", "incremental", "merge", "scd2"):
        assert f"| `{mode}` |" in text


def test_architecture_names_every_cli_command() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    subparsers = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = [name for name in subparsers.choices if f"ingest {name}" not in text]
    assert not missing, f"docs/architecture.md does not describe: {missing}"


def test_architecture_names_every_environment_variable() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    used = set(re.findall(r"INGEST_[A-Z_]+", Path(settings.__file__).read_text(encoding="utf-8")))
    assert used, "settings.py reads no INGEST_* variable?"
    assert not [v for v in sorted(used) if v not in text]


@pytest.mark.parametrize("doc", ["architecture.md", "config-reference.md", "user-guide.md", "operations.md"])
def test_docs_name_only_files_that_exist(doc: str) -> None:
    """A path in backticks (`ingestion_core/x.py`, `pages/home.py`...) is a file of the repo."""
    text = (REPO / "docs" / doc).read_text(encoding="utf-8")
    paths = re.findall(r"`((?:ingestion_core|portal|pages|scripts|tests|docs)/[\w./-]+|app\.py)`", text)
    missing = sorted({p for p in paths if not (REPO / p).exists()})
    assert not missing, f"docs/{doc} names files that do not exist: {missing}"
