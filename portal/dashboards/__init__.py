"""Dashboards: the run records read for people: overview, run history and one run's details,
metrics and quality charts, the scheduler and schema drift notes, and the Databricks jobs. Built
on :mod:`portal.shared` only."""
