"""Streamlit entry of the ingestion portal: page config, sign-in gate, navigation over pages/,
the sidebar.

Run it from the repo root: ``streamlit run app.py`` (``make run``). With an ``[auth]`` section
in ``.streamlit/secrets.toml`` a visitor sees only the sign-in screen until signed in; without
it the portal runs in local single-user mode and says so (docs/security.md).
"""

import streamlit as st

from ingestion_core.common import preload, settings
from portal.shared.components import render_sidebar
from portal.shared.identity import acting_user, local_mode_banner, sign_in_screen

st.set_page_config(page_title="Ingestion portal", page_icon=":material/database:", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/sources.py", title="Sources", icon=":material/database:"),
    st.Page("pages/source_editor.py", title="New / edit source", icon=":material/edit_note:", url_path="source_editor"),
    st.Page("pages/source.py", title="Source home", icon=":material/play_circle:", url_path="source"),
    st.Page("pages/config_history.py", title="Config history", icon=":material/manage_history:",
            url_path="config_history"),
    st.Page("pages/overview.py", title="Overview", icon=":material/monitoring:", url_path="overview"),
    st.Page("pages/metrics.py", title="Metrics", icon=":material/speed:", url_path="metrics"),
    st.Page("pages/history.py", title="Run history", icon=":material/history:", url_path="history"),
    st.Page("pages/quality.py", title="Quality", icon=":material/rule:", url_path="quality"),
    st.Page("pages/jobs.py", title="Databricks jobs", icon=":material/cloud_upload:", url_path="jobs"),
]

user = acting_user()
if user.must_sign_in:
    # every URL lands on the sign-in screen: no page of the portal runs before sign-in
    st.navigation([st.Page(sign_in_screen, title="Sign in", url_path="sign-in", default=True)],
                  position="hidden").run()
    st.stop()

page = st.navigation(PAGES, position="hidden")  # the sidebar links come from render_sidebar
render_sidebar(settings.config_dir(), user, PAGES)
if not user.auth_configured and not user.signed_in:
    local_mode_banner(user)
page.run()
# once the first page is drawn: dlt, pandas... imported in one thread, before a test run's threads need them
preload.load_in_background()
