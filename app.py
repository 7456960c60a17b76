"""Streamlit entry of the ingestion portal: page config, navigation over pages/, the sidebar.

Run it from the repo root: ``streamlit run app.py`` (``make run``).
"""

import streamlit as st

from ingestion_core import settings
from portal.components import render_sidebar
from portal.identity import acting_user

st.set_page_config(page_title="Ingestion portal", page_icon=":material/database:", layout="wide")

# Later pages join this list: test run (preview), dashboards.
PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/sources.py", title="Sources", icon=":material/database:"),
    st.Page("pages/source_editor.py", title="New / edit source", icon=":material/edit_note:", url_path="editor"),
    st.Page("pages/overview.py", title="Overview", icon=":material/monitoring:", url_path="overview"),
    st.Page("pages/metrics.py", title="Metrics", icon=":material/speed:", url_path="metrics"),
    st.Page("pages/history.py", title="Run history", icon=":material/history:", url_path="history"),
    st.Page("pages/quality.py", title="Quality", icon=":material/rule:", url_path="quality"),
]

page = st.navigation(PAGES)
render_sidebar(settings.config_dir(), acting_user())
page.run()
