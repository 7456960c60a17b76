"""Databricks: the production path of the product.

- ``type_adapters``: how Oracle and SQL Server column types land in Databricks.
- ``workspace``: a databricks-sdk ``WorkspaceClient`` from a Databricks destination file.
- ``jobs``: one Databricks job per source (``ingest deploy``), run now, follow, cancel.
- ``job_run``: what a job runs on the cluster (``ingest job-run``).
- ``bundle``: the same jobs as a Databricks Asset Bundle (``ingest bundle``).
- ``secret_scope`` / ``key_vault`` / ``providers``: secret providers of the chain.
- ``volume_fs``: an fsspec filesystem over Unity Catalog volumes (``volumes://``).
- ``wheel``: the package the jobs install.

Nothing here imports databricks-sdk at import time; docs/databricks.md is the set-up guide.
"""
