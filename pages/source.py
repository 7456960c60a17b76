"""Test & run: test run a source on a sample, explore what landed, run it for real, follow and
cancel the run, and look after each table's incremental state. ``?source=NAME`` opens a source."""

import streamlit as st

from portal import components, explorer_view, run_control_view, test_run

components.ensure_app_navigation()

name = test_run.pick_source()
if name:
    test, explore, run, state = st.tabs(["Test run", "Explore the preview", "Run now", "Incremental state"])
    with test:
        test_run.render(name)
    with explore:
        explorer_view.render(name)
    with run:
        run_control_view.render_run_now(name)
    with state:
        run_control_view.render_state(name)
