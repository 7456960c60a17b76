"""ingestion_core: the library behind the portal, the `ingest` CLI and Databricks jobs.

No Streamlit import anywhere in it; pages call its public functions.
"""

__version__ = "0.1.0"
