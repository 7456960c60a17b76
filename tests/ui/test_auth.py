"""Sign-in and roles in the portal, headless with AppTest (``at.user`` plays the signed-in user,
``at.secrets`` the [auth] section): the sign-in gate, the local-mode banner, the user's teams
in the sidebar, and owner / other team / admin on pages that change configs."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ingestion_core.config.store import ConfigStore
from tests.ui.test_config_history import SHOP
from tests.ui.test_wizard import REPO, click, ok, unescape

APP = REPO / "app.py"
AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "generated-at-test-time",
        "client_id": "portal", "client_secret": "not-a-real-secret",
        "server_metadata_url": "http://127.0.0.1:1/.well-known/openid-configuration"}
TEAMS = """\
version: 1
admins: [lead@example.com]
sign_in:
  teams_claim: groups
  admin_groups: [ingest-admins]
teams:
  market-de: {members: [ana@example.com]}
  market-fr: {members: [claire@example.com]}
"""


def app(user: dict | None = None, auth: bool = False, page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30)
    if auth:
        at.secrets["auth"] = dict(AUTH)
    if user is not None:
        at.user = user
    ok(at.run())
    return ok(at.switch_page(page).run()) if page else at


def signed_in(email: str, **claims: object) -> dict:
    return {"is_logged_in": True, "email": email, **claims}


def sidebar_text(at: AppTest) -> str:
    return "\n".join(unescape(c.value) for c in at.sidebar.caption)


@pytest.fixture
def teams(ingest_env: Path) -> Path:
    (ingest_env / "configs" / "teams.yaml").write_text(TEAMS, encoding="utf-8")
    ConfigStore().save_text("sources", "shop", SHOP, actor="ana@example.com", expected_revision=None)
    return ingest_env


# --- the gate -------------------------------------------------------------------------------

@pytest.mark.parametrize("page", [None, "pages/sources.py", "pages/config_history.py"])
def test_with_auth_configured_a_visitor_sees_only_the_sign_in_screen(ingest_env: Path, page: str | None) -> None:
    ConfigStore().save_text("sources", "shop", SHOP, actor="ana", expected_revision=None)
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.secrets["auth"] = dict(AUTH)
    at.user = {"is_logged_in": False}
    ok(at.run())
    if page:  # no page of the portal is registered before sign-in: a deep link has nothing to open
        with pytest.raises(ValueError, match=r"Known pages: \['Sign in'\]"):
            at.switch_page(page)
    assert [t.value for t in at.title] == ["Sign in"]
    assert at.button(key="sign-in").label == "Sign in"
    assert not at.dataframe and not at.sidebar.caption and not at.selectbox and not at.info
    assert "shop" not in str(at)


def test_without_auth_the_portal_runs_in_local_mode_with_a_banner(ingest_env: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_ACTOR", "ana")
    at = app()
    banner = unescape(at.caption[0].value)
    assert "Local single-user mode" in banner and "ana" in banner and "with every right" in banner
    assert "[auth]" in banner and "secrets.toml" in banner and "docs/security.md" in banner
    assert "\n" not in banner  # one line
    assert "every user is an admin" in sidebar_text(at)
    assert not [b for b in at.button if b.key == "sign-out"]
    ok(at.button(key="local-mode-dismiss").click().run())
    assert not [c for c in at.caption if "Local single-user mode" in c.value]
    ok(at.run())  # stays hidden for the session
    assert not [c for c in at.caption if "Local single-user mode" in c.value]


def test_signed_in_user_sees_the_portal_with_teams_and_sign_out(teams: Path) -> None:
    at = app(signed_in("ana@example.com"), auth=True)
    assert at.title[0].value == "Ingestion portal"
    text = sidebar_text(at)
    assert "Acting as ana@example.com" in text.replace("**", "") and "Teams: `market-de`" in text
    assert "local mode" not in text and not at.info
    assert at.sidebar.button(key="sign-out").label == "Sign out"


def test_teams_and_admin_come_from_the_sign_in_claim(teams: Path) -> None:
    at = app(signed_in("dora@example.com", groups=["market-fr", "ingest-admins"]), auth=True)
    assert "Teams: `ingest-admins`, `market-fr` · admin" in sidebar_text(at).replace("**", "")


def test_an_invalid_teams_file_gives_no_rights_and_says_why(teams: Path) -> None:
    (teams / "configs" / "teams.yaml").write_text("admins: [lead]\nteams: {Market: {}}\n", encoding="utf-8")
    at = app(signed_in("ana@example.com"), auth=True)
    assert "teams.yaml is invalid" in unescape(at.sidebar.error[0].value)
    assert "Teams: none" in sidebar_text(at)


# --- roles on pages that change configs -----------------------------------------------------

def test_owner_edits_through_the_sources_page(teams: Path) -> None:
    at = app(signed_in("ana@example.com"), auth=True, page="pages/sources.py")
    ok(at.selectbox(key="sources-pick").select("shop").run())
    click(at, "sources-toggle")
    assert "enabled: false" in (teams / "configs" / "sources" / "shop.yaml").read_text()
    assert ConfigStore().history("sources", "shop")[0].actor == "ana@example.com"


def test_another_team_is_refused_on_the_sources_page_and_the_refusal_recorded(teams: Path) -> None:
    at = app(signed_in("claire@example.com"), auth=True, page="pages/sources.py")
    ok(at.selectbox(key="sources-pick").select("shop").run())
    click(at, "sources-toggle")
    assert "may not" in unescape(at.error[0].value) and "market-de" in unescape(at.error[0].value)
    click(at, "sources-delete")
    click(at, "sources-delete-yes")
    assert any("may not delete source 'shop'" in unescape(e.value) for e in at.error)
    text = (teams / "configs" / "sources" / "shop.yaml").read_text()
    assert "enabled: false" not in text  # unchanged, not deleted
    audit = (teams / ".ingest" / "audit" / "config_changes.jsonl").read_text()
    assert audit.count('"outcome": "denied"') == 2 and "claire@example.com" in audit


@pytest.mark.parametrize(("email", "claims", "allowed"), [
    ("ana@example.com", {}, True),                             # owner team, from teams.yaml
    ("claire@example.com", {}, False),                         # other team: view only
    ("dora@example.com", {"groups": ["market-de"]}, True),     # owner team, from the claim
    ("lead@example.com", {}, True),                            # admin
    ("eve@example.com", {"groups": ["ingest-admins"]}, True),  # admin, from the claim
])
def test_restore_by_role(teams: Path, email: str, claims: dict, allowed: bool) -> None:
    store = ConfigStore()
    first = store.history("sources", "shop")[0].revision_after
    store.save_text("sources", "shop", SHOP + "# v2\n", actor="ana@example.com", expected_revision=first)
    at = app(signed_in(email, **claims), auth=True, page="pages/config_history.py")
    assert at.dataframe[0].value.shape[0] == 2  # everyone may view
    ok(at.selectbox(key="history-revision").select(1).run())
    click(at, "history-restore")
    if allowed:
        assert "is restored as a new save" in unescape(at.success[0].value)
        assert store.history("sources", "shop")[0].actor == email
    else:
        assert unescape(at.error[0].value).startswith(
            f"Not restored. {email} may not restore source 'shop': it is owned by team 'market-de'")
        assert (teams / "configs" / "sources" / "shop.yaml").read_text().endswith("# v2\n")
