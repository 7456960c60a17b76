"""Home: the configured sources and whether each one is valid."""

import streamlit as st

from ingestion_core.common import settings
from portal.shared import components, data

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
    components.sources_table(summaries, key="home_sources")
    components.source_problems(summaries, key_prefix="home")
