"""The ``ingest`` command: main (validate, list, schema, import-excel, demo ...), engine (test-
connection, preview, run, cancel, state, runs ...), databricks (deploy, bundle, job-status ...),
secrets (secrets push) and job_run (what a Databricks job runs). The top layer.
"""
