"""Databricks jobs: per source, deploy / redeploy, run now, the latest job run followed live,
cancel, and typed secrets into the secret scope (portal/jobs_view.py)."""

from portal import components, jobs_view

components.ensure_app_navigation()

jobs_view.render()
