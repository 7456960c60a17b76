"""Home: the configured sources and whether each one is valid, and the first steps: a new source,
or a click on a source's row to open it (and test-run it there)."""

import streamlit as st

from ingestion_core.common import settings
from portal.shared import components, data, navigation

components.ensure_app_navigation()

title, refresh = st.columns([5, 1], vertical_alignment="bottom")
title.title("Ingestion portal", anchor=False)
title.caption("The configured sources and whether each one is valid.")
if refresh.button("Refresh", key="home_refresh", icon=":material/refresh:", width="stretch"):
    data.refresh_sources()

config_dir = settings.config_dir()
summaries = data.source_summaries(config_dir)

if not summaries:
    components.empty_sources(config_dir, data.template_names(config_dir))
else:
    components.source_metrics(summaries)
    new, sources, _ = st.columns([1, 1, 3])
    if new.button("New source", key="home-new", type="primary", icon=":material/add:", width="stretch"):
        navigation.request_editor("new")
    if sources.button("Sources", key="home-sources-page", icon=":material/database:", width="stretch",
                      help="Test-run, run, change or delete a source"):
        st.switch_page("pages/sources.py")
    st.caption("Click a source to open it: **Test run** there shows its first rows in seconds, nothing is loaded "
               "anywhere else.")
    picked = components.sources_table(summaries, key="home_sources")
    if picked:
        st.switch_page(navigation.SOURCE_PAGE, query_params={"source": picked})
    components.source_problems(summaries, key_prefix="home")
