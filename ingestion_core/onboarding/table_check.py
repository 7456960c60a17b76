"""Whether a saved database source's tables exist: the Sources list asks discovery, with a short
timeout, and remembers the answer per source file revision. An unreachable server is *unknown*,
never *invalid*.

Example::

    checks = check_sources(store, ["crm", "shop"])   # waits 3 s at most in all
    checks["crm"].state    # "missing": checks["crm"].issues names the table and the closest names
    checks["shop"].note    # "not checked: server unreachable"
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ingestion_core.config.store import ConfigNotFoundError, ConfigStore
from ingestion_core.config.validation import ConfigIssue
from ingestion_core.onboarding.drafts import is_sql
from ingestion_core.onboarding.review import missing_tables

CHECK_TIMEOUT_S = 3.0
KEEP_S = {"ok": 300.0, "missing": 300.0, "unknown": 30.0}  # an unreachable server is asked again sooner
UNREACHABLE = "not checked: server unreachable"
NO_ANSWER_YET = "not checked yet: no answer within {:g} s (shown on a later refresh)"


def check_timeout() -> float:
    """Seconds the Sources list waits for the table checks in all (``INGEST_TABLE_CHECK_TIMEOUT_S``)."""
    try:
        return max(0.1, float(os.environ.get("INGEST_TABLE_CHECK_TIMEOUT_S", CHECK_TIMEOUT_S)))
    except ValueError:
        return CHECK_TIMEOUT_S


@dataclass(frozen=True)
class TableCheck:
    """``state``: ok (every table found), missing (``issues`` name them), unknown (``note`` says
    why) or none (not a database source, or not valid)."""

    state: str
    issues: list[ConfigIssue] = field(default_factory=list)
    note: str = ""
    checked_at: float = field(default_factory=time.monotonic)

    @property
    def label(self) -> str:
        return {"ok": "all found", "missing": "missing", "none": "-"}.get(self.state, self.note)


_cache: dict[tuple[str, str, str], TableCheck] = {}
_pending: dict[tuple[str, str, str], threading.Thread] = {}
_lock = threading.Lock()


def check_table_names(config: object) -> TableCheck:
    """Ask the database for its table names in each schema the file names (may block: see
    :func:`check_sources` for the bounded, cached form)."""
    from ingestion_core.onboarding.discovery import table_names

    kind = config.source_type  # type: ignore[attr-defined]
    if not is_sql(kind):
        return TableCheck("none")
    if kind == "sqlite" and not _sqlite_file(config).is_file():  # connecting would create an empty file
        return TableCheck("unknown", note=f"not checked: file {config.source.path} not found")  # type: ignore[attr-defined]
    schemas = {None if kind == "sqlite" else t.schema_ for t in config.tables}  # type: ignore[attr-defined]
    try:
        found = {schema: table_names(config, schema) for schema in schemas}
    except Exception as exc:
        return TableCheck("unknown", note=_why_unknown(exc))
    entries = [{"name": t.name, "schema": None if kind == "sqlite" else t.schema_, "source_table": t.source_table}
               for t in config.tables]  # type: ignore[attr-defined]
    issues = missing_tables(entries, found)
    return TableCheck("missing", issues) if issues else TableCheck("ok")


def _sqlite_file(config: object) -> Path:
    from ingestion_core.common import settings

    return Path(settings.resolve_local_path(config.source.path))  # type: ignore[attr-defined]


def _why_unknown(exc: BaseException) -> str:
    from ingestion_core.config.secrets import SecretNotFoundError

    if isinstance(exc, SecretNotFoundError):
        return "not checked: a secret it needs is not set"
    if type(exc).__name__ == "MissingDriverError":
        return "not checked: its database driver is not installed"
    return UNREACHABLE


def check_sources(store: ConfigStore, names: list[str], timeout: float | None = None) -> dict[str, TableCheck]:
    """The table check of each source, asked in parallel and waited for at most ``timeout``
    seconds in all (:func:`check_timeout`); a check still running is "unknown" now and cached
    when it ends."""
    timeout = check_timeout() if timeout is None else timeout
    from ingestion_core.common import preload

    preload.load_heavy_modules()  # never imported first by a check thread while another imports them
    keys, threads = {}, []
    for name in names:
        key = _key(store, name)
        if key is None:
            continue
        keys[name] = key
        with _lock:
            cached = _cache.get(key)
            if cached is not None and time.monotonic() - cached.checked_at < KEEP_S.get(cached.state, 30.0):
                continue
            if key not in _pending:
                _pending[key] = threading.Thread(target=_check_into_cache, args=(store, name, key), daemon=True,
                                                 name=f"table-check-{name}")
                _pending[key].start()
            threads.append(_pending[key])
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    with _lock:
        return {name: _cache.get(key) or TableCheck("unknown", note=NO_ANSWER_YET.format(timeout))
                for name, key in keys.items()}


def forget_checks() -> None:
    """Ask every database again on the next listing (the Refresh button)."""
    with _lock:
        _cache.clear()


def _key(store: ConfigStore, name: str) -> tuple[str, str, str] | None:
    try:
        _, revision = store.read("sources", name)
    except ConfigNotFoundError:
        return None
    return str(store.root), name, revision


def _check_into_cache(store: ConfigStore, name: str, key: tuple[str, str, str]) -> None:
    try:
        loaded = store.load("sources", name)
        check = check_table_names(loaded.config) if loaded.config is not None else TableCheck("none")
    except Exception as exc:
        check = TableCheck("unknown", note=_why_unknown(exc))
    with _lock:
        _cache[key] = check
        _pending.pop(key, None)
