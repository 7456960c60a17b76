"""The bundled demo works out of the box: generate it, preview and run both demo sources."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ingestion_core.config.store import ConfigStore
from ingestion_core.demo import generate_demo
from ingestion_core.pipeline.runner import preview_source, run_source

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo(ingest_env: Path) -> Path:
    for path in (REPO / "configs" / "sources").glob("demo_*.yaml"):
        shutil.copy(path, ingest_env / "configs" / "sources" / path.name)
    generate_demo(ingest_env / "demo" / "data")
    return ingest_env


@pytest.mark.parametrize("source", ["demo_shop", "demo_files"])
def test_demo_source_previews_and_runs(demo: Path, source: str) -> None:
    config = ConfigStore().load_source(source).config
    preview = preview_source(config, actor="newcomer", limit=50)
    assert preview.record.status in ("success", "quality_failed"), preview.record.error
    assert all(0 < t.rows <= 50 for t in preview.record.tables)
    assert all(preview.samples[t.name] for t in preview.record.tables)
    record = run_source(config, actor="newcomer")
    assert record.status in ("success", "quality_failed"), record.error
    assert all(t.rows > 0 for t in record.tables)
