"""Databricks jobs: per source, deploy / redeploy, run now, the latest job run followed live,
cancel, and typed secrets into the secret scope (portal/dashboards/jobs_view.py)."""

from portal.dashboards import jobs_view
from portal.shared import components

components.ensure_app_navigation()

jobs_view.render()
