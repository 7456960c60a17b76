"""The heavy third-party modules (dlt, pandas, pyarrow, DuckDB, SQLAlchemy), imported once, in
one thread, before any other thread can import them.

Why: Python locks each module on its own while it imports it. ``from dlt.common.versioned_state
import x`` takes the lock of ``dlt.common.versioned_state`` first and then imports its parents;
if another thread is inside ``import dlt`` at that moment (holding ``dlt``, about to import
``dlt.common``), each waits for a lock the other holds: one gets ``_DeadlockError``, the other a
half-initialized module ("cannot import name 'json' from partially initialized module
'dlt.common.json'"). A lock of our own around ``import dlt`` cannot stop a plain ``import`` in
another thread, so every code path that starts threads which use these modules, or that may
run while such threads start (the portal's page threads), calls :func:`load_heavy_modules`
first: the first caller imports them all, every other caller waits on the same lock until it is
done, and from then on each ``import`` is a lookup in ``sys.modules``.

The garbage collector is paused while they import: the ~280,000 objects they make are nearly all
kept for the life of the process, yet with it running each import of a ~1 s preload set off
collections that walked them again (3 full and 30 middle ones: 0.15-0.2 s of a whole ``ingest
preview`` process's CPU, measured with ``gc.callbacks``). Then those objects are moved out of the
garbage collector's reach (``gc.freeze``): they live as long as the process anyway, and a full
collection walks every tracked object while holding the GIL. Streamlit runs one after every script
and fragment run (``runner.postScriptGC``), so with them tracked each half-second poll of a test
run's progress stopped every thread for ~0.2 s (more on a busy machine): a first test run in the
portal took twice its time in the CLI.

Entry points: :func:`ingestion_core.pipeline.runner.run_source` and ``preview_source`` (so the CLI, the
Databricks job and the portal's test runs), which import what every run needs and their source
reader's modules; the run-control and onboarding calls a page makes, and the portal, which
starts :func:`load_in_background` once its first page is drawn: those import every reader's.

Example::

    load_in_background()     # returns at once; the imports go on in a daemon thread
    load_heavy_modules()     # waits for that thread (or imports, when nobody has started)
    load_heavy_modules("sql")  # a SQL source's run: the core and the SQL reader's modules
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import sys
import threading
import time
from collections.abc import Iterator

# Top-level packages first: a package another thread starts on its own is then imported whole
# before anything here reaches into its submodules.
CORE_MODULES = (
    "numpy", "pyarrow", "pandas", "duckdb", "sqlalchemy", "dlt",
    # dlt's submodules the library imports inside functions, and those its pipelines load lazily
    "dlt.common.json", "dlt.common.versioned_state", "dlt.common.jsonpath", "dlt.common.libs.pyarrow",
    "dlt.common.libs.pandas", "dlt.common.storages", "dlt.pipeline", "dlt.pipeline.helpers", "dlt.extract",
    "dlt.normalize", "dlt.load", "dlt.destinations", "dlt.destinations.impl.duckdb.duck",
    "pyarrow.compute", "pyarrow.parquet",
    # imported by every dlt pipeline's first step or load, in a table thread: its runtime set-up,
    # its plugins, the load's step info (imports SQLAlchemy to print the destination's
    # credentials), pyarrow's first array (imports pandas' compatibility layer)
    "dlt.sources.helpers.requests", "dlt.common.configuration.plugins", "dlt.common.libs.sql_alchemy_compat",
    "pyarrow.pandas_compat",
)
"""What every run of any source imports."""
SOURCE_MODULES: dict[str, tuple[str, ...]] = {
    "sql": ("dlt.sources.sql_database",),
    "rest": ("dlt.sources.rest_api", "dlt.sources.helpers.rest_client"),
    "files": ("dlt.sources.filesystem", "pyarrow.csv"),
}
"""What the runs of one source reader also import, by its module in ``ingestion_core.engine.sources``
(``reader_module``): a SQL preview process does not import the REST and file readers' dlt modules
(0.05 s CPU), nor a REST one SQL's."""
HEAVY_MODULES = CORE_MODULES + tuple(name for names in SOURCE_MODULES.values() for name in names)
"""Everything: what the portal, which may run any source, imports."""

_LOCK = threading.Lock()
_START = threading.Lock()
_LOADED = threading.Event()
_STARTED = threading.Event()
_loaded_groups: set[str] = set()  # "core" and SOURCE_MODULES keys; written under _LOCK
seconds_taken: float | None = None
"""How long the imports took (None until done; the sum when they came in parts): the portal's and
the CLI's start-up cost."""


def load_heavy_modules(reader: str | None = None) -> None:
    """Import :data:`CORE_MODULES` and the ``reader``'s :data:`SOURCE_MODULES` (every reader's
    when None) unless done: at once when loaded, else after whoever is importing them now (a
    thread of this call's own or :func:`load_in_background`'s)."""
    global seconds_taken
    groups = ("core", reader) if reader in SOURCE_MODULES else ("core", *SOURCE_MODULES)
    if _LOADED.is_set() or _loaded_groups.issuperset(groups):
        return
    with _LOCK:
        missing = [group for group in groups if group not in _loaded_groups]
        if not missing:
            return
        started = time.monotonic()
        with collections_paused():
            for group in missing:
                for name in CORE_MODULES if group == "core" else SOURCE_MODULES[group]:
                    importlib.import_module(name)
            skip_streamlit_secrets_lookup()
            # no collection first: it took 0.06-0.17 s on every CLI run to free ~1,200 small objects
            gc.freeze()
        seconds_taken = round((seconds_taken or 0) + time.monotonic() - started, 3)
        _loaded_groups.update(missing)
        if _loaded_groups.issuperset(("core", *SOURCE_MODULES)):
            _LOADED.set()


def skip_streamlit_secrets_lookup() -> None:
    """dlt imports Streamlit (0.5-0.8 s, 340 modules) to look for ``st.secrets`` whenever no
    secrets.toml exists, and uses them only inside a running Streamlit app. A process that has
    not imported Streamlit by now is not one (``streamlit run`` imports it before the app), so
    the lookup can only find nothing: skip the import (measured: ``ingest preview`` 4.1 s -> 3.3 s;
    the first ``run_source`` of a process 0.5-0.8 s less). The portal has imported Streamlit: no
    change there."""
    if "streamlit" in sys.modules:
        return
    with collections_paused():
        from dlt.common.configuration.providers import toml

    toml.SettingsTomlProvider._read_streamlit_secrets = lambda self, name, file_name: None  # type: ignore[method-assign]


@contextlib.contextmanager
def collections_paused() -> Iterator[None]:
    """No automatic garbage collection in the block (``gc.collect()`` still works): for imports,
    whose objects live as long as the process. Left as found: a caller that disabled the
    collector keeps it disabled."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def load_in_background() -> None:
    """Start :func:`load_heavy_modules` in a daemon thread (once per process) and return."""
    if _LOADED.is_set() or _STARTED.is_set():
        return
    with _START:
        if _STARTED.is_set():
            return
        _STARTED.set()
    threading.Thread(target=load_heavy_modules, name="preload-heavy-modules", daemon=True).start()


def loaded() -> bool:
    return _LOADED.is_set()
