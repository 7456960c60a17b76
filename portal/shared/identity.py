"""Who is using the portal, and with which rights. Every change the portal makes is recorded
with this actor and checked by ``ingestion_core.config.access`` against their teams.

- Sign-in is on when ``.streamlit/secrets.toml`` has an ``[auth]`` section (OIDC through
  ``st.login``): the actor is the signed-in user (``st.user``; ``at.user`` in AppTest), their
  teams come from ``configs/teams.yaml`` and the ID-token claim that file names.
- Without it the portal is in local single-user mode: the actor is the local OS user
  (``$INGEST_ACTOR`` when set), the same actor the ``ingest`` CLI records.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import streamlit as st

from ingestion_core.config import access
from ingestion_core.config.access import Principal, default_actor
from ingestion_core.config.validation import ConfigError
from portal.shared.markdown import md_escape

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class ActingUser:
    name: str
    signed_in: bool  # False: not signed in (local single-user mode, or sign-in pending)
    principal: Principal = field(default_factory=lambda: Principal(ANONYMOUS))
    auth_configured: bool = False
    problem: str = ""  # why the rights could not be read (an invalid teams.yaml): nobody gets any
    display_name: str = ""  # the signed-in user's name claim, when it differs from ``name``

    @property
    def must_sign_in(self) -> bool:
        return self.auth_configured and not self.signed_in


def auth_configured() -> bool:
    """True when an ``[auth]`` section configures sign-in (st.user then carries is_logged_in)."""
    if "is_logged_in" in st.user.to_dict():
        return True
    try:
        return bool(st.secrets.load_if_toml_exists() and "auth" in st.secrets)
    except Exception:  # an unreadable secrets file: Streamlit reports it itself
        return False


def acting_user() -> ActingUser:
    """The signed-in user when sign-in is configured; else the local OS user.

    A visitor who has not signed in yet gets no rights at all (the app shows them only the
    sign-in screen; the library refuses their changes anyway).
    """
    claims = st.user.to_dict()
    configured = auth_configured()
    if claims.get("is_logged_in"):
        name = str(claims.get("email") or claims.get("preferred_username") or claims.get("name") or "signed-in user")
        user = _with_rights(name, True, configured, claims)
        display = str(claims.get("name") or "")
        return replace(user, display_name=display if display != name else "")
    if configured:
        return ActingUser(ANONYMOUS, False, Principal(ANONYMOUS), configured)
    return _with_rights(default_actor(), False, configured, {})


def _with_rights(name: str, signed_in: bool, configured: bool, claims: dict) -> ActingUser:
    try:
        principal = access.principal_for(name, claims)
    except ConfigError as exc:  # fail closed: nobody gets rights from a file that does not read
        return ActingUser(name, signed_in, Principal(name), configured, f"teams.yaml is invalid, so you have no "
                          f"rights until it is fixed: {exc}")
    return ActingUser(name, signed_in, principal, configured)


# --- screens -------------------------------------------------------------------------------

LOCAL_MODE_BANNER = ("**Local single-user mode**: no sign-in, everyone acts as **{name}**{rights}. "
                     "Sign-in: `[auth]` in secrets.toml, see docs/security.md")
BANNER_HIDDEN_KEY = "local-mode-banner-hidden"


def local_mode_banner(user: ActingUser) -> None:
    """The reminder that nobody signs in and how to change that, on one line. The close button
    hides it for the rest of the session (the sidebar keeps saying 'local mode')."""
    if st.session_state.get(BANNER_HIDDEN_KEY):
        return
    rights = " with every right" if user.principal.admin else ""
    with st.container(key="local-mode-banner", horizontal=True, vertical_alignment="center", gap="small"):
        st.caption(":material/lock_open: " + LOCAL_MODE_BANNER.format(name=md_escape(user.name), rights=rights),
                   width="stretch")
        st.button("", key="local-mode-dismiss", icon=":material/close:", type="tertiary", help="Hide this notice",
                  on_click=lambda: st.session_state.__setitem__(BANNER_HIDDEN_KEY, True))


def sign_in_screen() -> None:
    """All a visitor sees before signing in."""
    st.title("Sign in", anchor=False)
    st.write("The ingestion portal needs to know who you are: your team decides which sources you may "
             "edit and run. Sign in with your company account.")
    st.button("Sign in", key="sign-in", type="primary", icon=":material/login:", on_click=st.login,
              args=(_provider(),))


def _provider() -> str | None:
    """None for a single provider configured in [auth] itself; else the first [auth.<name>]."""
    auth = st.secrets.get("auth", {})
    if "client_id" in auth:
        return None
    return next((key for key, value in auth.items() if hasattr(value, "keys")), None)
