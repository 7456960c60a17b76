"""Databricks jobs: the production path of the product, above the pipeline it deploys.

- ``jobs``: one Databricks job per source (``ingest deploy``), its schedule (``schedule``).
- ``job_runs``: run now, follow a job run into a run record, status, cancel.
- ``job_service``: the jobs as the portal's jobs page works with them (state, deploy, run, cancel, secrets).
- ``bundle``: the same jobs as a Databricks Asset Bundle (``ingest bundle``).
- ``secrets_push``: the referenced secrets copied into a secret scope or a Key Vault.
- ``wheel``: the package the jobs install.

What lower layers need of Databricks lives with them: the type rules in
``ingestion_core.typemap.databricks``, the workspace client and ``volumes://`` in
``ingestion_core.storage``, the secret providers in ``ingestion_core.config.secret_providers``,
the destination in ``ingestion_core.engine.destinations.databricks``; what a job runs on the
cluster is ``ingestion_core.cli.job_run``. Nothing here imports databricks-sdk at import time;
docs/databricks.md is the set-up guide.
"""
