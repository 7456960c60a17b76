"""Who is using the portal. Every change the portal makes is recorded with this actor."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from ingestion_core.cli import default_actor


@dataclass(frozen=True)
class ActingUser:
    name: str
    signed_in: bool  # False: local single-user mode, no sign-in configured


def acting_user() -> ActingUser:
    """The signed-in user when Streamlit auth is configured; else the local OS user
    (``$INGEST_ACTOR`` when set), the same actor the ``ingest`` CLI records."""
    # st.user has no is_logged_in key at all when no [auth] section is configured.
    if st.user.get("is_logged_in"):
        name = st.user.get("email") or st.user.get("name") or "signed-in user"
        return ActingUser(str(name), True)
    return ActingUser(default_actor(), False)
