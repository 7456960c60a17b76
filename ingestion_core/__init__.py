"""ingestion_core: the library behind the portal, the `ingest` CLI and Databricks jobs.

No Streamlit import anywhere in it; pages call its public functions.
"""

import os

__version__ = "0.1.0"

# dlt sends anonymous usage telemetry on every pipeline step unless told not to. A portal that
# moves company data runs offline-friendly and quiet by default; set the variable to "true" to
# opt in again.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
