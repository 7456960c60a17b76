"""Streamlit UI helpers of the portal: who is acting, cached reads of the config dir, and
small rendering components shared by the pages.

This package may import Streamlit; :mod:`ingestion_core` never does. Pages stay thin: they
call ``ingestion_core`` for data and these helpers for display.
"""
