"""ingestion_core: the library behind the portal, the `ingest` CLI and Databricks jobs.

No Streamlit import anywhere in it; pages call its public functions. Its packages follow a run
(docs/architecture.md): ``config`` (YAML -> models) -> ``engine`` (sources, destinations, the
plan) -> ``quality`` -> ``pipeline`` (the runner, run control, the scheduler) -> ``observe``
(run records, metrics, alerts), with ``onboarding``, ``databricks`` and ``cli`` on top.

The public entry points are named here too (imported on first use)::

    import ingestion_core
    config = ingestion_core.ConfigStore().load_source("demo_shop").config
    ingestion_core.preview_source(config, actor="ana").record.status   # 'success'
"""

import importlib
import os
from typing import Any

__version__ = "0.1.0"

# dlt sends anonymous usage telemetry on every pipeline step unless told not to. A portal that
# moves company data runs offline-friendly and quiet by default; set the variable to "true" to
# opt in again.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
# numpy's OpenBLAS starts its threads when numpy is imported (0.04 s CPU of every `ingest` process
# that loads data), and nothing here multiplies matrices. Set the variable to have more.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

PUBLIC = {
    "run_source": "ingestion_core.pipeline.runner",
    "preview_source": "ingestion_core.pipeline.runner",
    "ConfigStore": "ingestion_core.config.store",
    "test_connection": "ingestion_core.engine.sources",
    "main": "ingestion_core.cli.main",
}
__all__ = ["__version__", *PUBLIC]


def __getattr__(name: str) -> Any:
    """The public entry points, imported when first asked for (``import ingestion_core`` stays light)."""
    if name in PUBLIC:
        return getattr(importlib.import_module(PUBLIC[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
