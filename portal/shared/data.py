"""Cached reads of the config dir for the pages.

Configs change on disk (the CLI, git, another browser tab), so every cached read is keyed
on a fingerprint of the files it depends on: a changed, added or removed file is a new key
and is read at once; the TTL only bounds how long stale entries stay in memory.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ingestion_core.common import settings
from ingestion_core.config.store import ConfigStore, SourceSummary

Fingerprint = tuple[tuple[str, int, int, int], ...]
WATCHED_KINDS = ("sources", "destinations")  # a source's validity depends on the destinations too


def config_fingerprint(root: Path) -> Fingerprint:
    """(file, mtime_ns, size, inode) of every source and destination file under ``root``.

    The inode catches an atomic rewrite (temp file + rename) within one mtime tick.
    """
    entries = []
    for kind in WATCHED_KINDS:
        folder = root / kind
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.yaml")):
            try:
                stat = path.stat()
            except FileNotFoundError:  # deleted between glob and stat
                continue
            entries.append((f"{kind}/{path.name}", stat.st_mtime_ns, stat.st_size, stat.st_ino))
    return tuple(entries)


@st.cache_data(ttl=600, max_entries=32, show_spinner=False)
def _list_sources(root: str, fingerprint: Fingerprint) -> list[SourceSummary]:
    return ConfigStore(root).list_sources()


def source_summaries(root: Path | None = None) -> list[SourceSummary]:
    """Every configured source with its validation status (``ConfigStore.list_sources``)."""
    root = root or settings.config_dir()
    return _list_sources(str(root), config_fingerprint(root))


def refresh_sources() -> None:
    """Forget every cached listing (the Refresh button)."""
    _list_sources.clear()


def template_names(root: Path | None = None) -> list[str]:
    """The templates under ``<config dir>/templates/`` (file names without .yaml)."""
    return ConfigStore(root or settings.config_dir()).names("templates")


@st.cache_data(ttl=15, max_entries=8, show_spinner=False)
def _last_runs(runs_dir: str) -> dict[str, dict]:
    from ingestion_core.onboarding import last_runs

    return last_runs()


def last_runs() -> dict[str, dict]:
    """The newest run record of each source (cached for a few seconds; Refresh clears it)."""
    return _last_runs(settings.runs_dir())


def refresh_runs() -> None:
    _last_runs.clear()
