"""Streamlit entry of the ingestion portal: page config, navigation over pages/, the sidebar.

Run it from the repo root: ``streamlit run app.py`` (``make run``).
"""

import streamlit as st

from ingestion_core import settings
from portal.components import render_sidebar
from portal.identity import acting_user

st.set_page_config(page_title="Ingestion portal", page_icon=":material/database:", layout="wide")

# Later pages join this list (issue 2): sources (form editor), test run (preview), dashboards.
PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
]

page = st.navigation(PAGES)
render_sidebar(settings.config_dir(), acting_user())
page.run()
