"""Streamlit UI of the portal, in layers; a module imports only from its own package or the
layers below it (pages/*.py and app.py sit on top and stay thin):

- ``portal.onboarding``: the new / edit source wizard and its form widgets;
- ``portal.sources``: the Sources list and a source's home (test run, Run now, preview explorer,
  config history);
- ``portal.dashboards``: run history, metrics, quality, operations and Databricks jobs;
- ``portal.shared``: who is acting, cached reads of the config dir, navigation requests between
  pages and the rendering helpers every page uses.

This package may import Streamlit; :mod:`ingestion_core` never does. Pages call
``ingestion_core`` for data and these modules for display.
"""
