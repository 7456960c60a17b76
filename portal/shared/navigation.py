"""Requests one page leaves for another: which page a button opens and what it opens on. A
feature asks for another feature's page here rather than importing that feature: the Sources
list opens the editor without depending on the wizard."""

from __future__ import annotations

import streamlit as st

EDITOR_PAGE = "pages/source_editor.py"
SOURCE_PAGE = "pages/source.py"  # a source's home: ?source=<name>
EDITOR_REQUEST_KEY = "editor_request"  # {"mode": ..., "name": ...}: read by the editor's first run


def request_editor(mode: str, name: str | None = None) -> None:
    """Ask the editor page to open (``new``, ``edit``, ``duplicate`` or ``yaml``) and go there."""
    st.session_state[EDITOR_REQUEST_KEY] = {"mode": mode, "name": name}
    st.switch_page(EDITOR_PAGE)
