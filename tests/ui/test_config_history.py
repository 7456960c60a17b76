"""The Config history page, headless with AppTest: the saves of a source with who and when, the
diff of a revision against the one before and against the current file, and restore (a new
save; refused for another team with whom to ask)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from ingestion_core.config.store import ConfigStore
from tests.ui.test_wizard import REPO, click, ok, unescape

PAGE = REPO / "pages" / "config_history.py"

SHOP = """\
# Demo shop
version: 1
name: shop
owner: market-de
source: {type: sqlite, path: shop.sqlite}
tables:
  - {name: orders, mode: full}
"""
SHOP_V2 = SHOP.replace("mode: full", "mode: append")
SHOP_V3 = SHOP_V2 + "  - {name: customers, mode: full}\n"
TEAMS = """\
version: 1
admins: [lead@example.com]
teams:
  market-de: {members: [ana@example.com, bob@example.com]}
  market-fr: {members: [claire@example.com]}
"""


def three_saves() -> list[str]:
    store = ConfigStore()
    first = store.save_text("sources", "shop", SHOP, actor="ana@example.com", expected_revision=None)
    second = store.save_text("sources", "shop", SHOP_V2, actor="bob@example.com", expected_revision=first)
    third = store.save_text("sources", "shop", SHOP_V3, actor="ana@example.com", expected_revision=second)
    return [first, second, third]


def history_page(source: str | None = "shop", email: str | None = None) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=30)
    if source:
        at.query_params["source"] = source
    if email:
        at.user = {"is_logged_in": True, "email": email}
    return ok(at.run())


def diffs(at: AppTest) -> list[str]:
    return [c.value for c in at.code]


def flash(at: AppTest, kind: str) -> str:
    return unescape(getattr(at, kind)[0].value)


def test_lists_every_save_with_who_when_and_revisions(ingest_env: Path) -> None:
    first, second, third = three_saves()
    at = history_page()
    rows = at.dataframe[0].value.to_dict("records")
    assert [(r["actor"], r["action"], r["revision_before"], r["revision_after"]) for r in rows] == [
        ("ana@example.com", "save", second, third), ("bob@example.com", "save", first, second),
        ("ana@example.com", "save", "", first)]
    assert all(r["time"].startswith("20") for r in rows)
    assert at.selectbox(key="history-source").value == "shop"


def test_diff_against_the_previous_revision_and_the_current_file(ingest_env: Path) -> None:
    first, second, _ = three_saves()
    at = history_page()
    ok(at.selectbox(key="history-revision").select(1).run())  # bob's save: full -> append
    previous, current = diffs(at)
    assert f"--- {first}/shop.yaml" in previous and f"+++ {second}/shop.yaml" in previous
    assert "-  - {name: orders, mode: full}" in previous and "+  - {name: orders, mode: append}" in previous
    assert "+++ current/shop.yaml" in current and "+  - {name: customers, mode: full}" in current
    assert all(c.language == "diff" for c in at.code)


def test_restore_a_revision_is_a_new_save_in_the_history(ingest_env: Path) -> None:
    first, _, third = three_saves()
    at = history_page()
    ok(at.selectbox(key="history-revision").select(2).run())  # the first save
    click(at, "history-restore")
    assert f"Revision {first} of shop is restored as a new save" in flash(at, "success")
    assert (ingest_env / "configs" / "sources" / "shop.yaml").read_text() == SHOP
    rows = at.dataframe[0].value.to_dict("records")
    assert (rows[0]["action"], rows[0]["revision_before"], rows[0]["revision_after"], rows[0]["restored_from"]) == (
        "restore", third, first, first)


def test_restore_refuses_when_the_file_changed_since_the_page_was_opened(ingest_env: Path) -> None:
    _, _, third = three_saves()
    at = history_page()
    ok(at.selectbox(key="history-revision").select(2).run())
    ConfigStore().save_text("sources", "shop", SHOP_V3 + "# edited elsewhere\n", actor="bob", expected_revision=third)
    click(at, "history-restore")
    assert "Not restored: 'shop' was changed by someone else" in flash(at, "error")
    assert (ingest_env / "configs" / "sources" / "shop.yaml").read_text().endswith("# edited elsewhere\n")


def test_a_deleted_source_is_listed_and_can_be_brought_back(ingest_env: Path) -> None:
    _, _, third = three_saves()
    ConfigStore().delete("sources", "shop", actor="ana@example.com", expected_revision=third)
    at = history_page()
    assert at.dataframe[0].value.to_dict("records")[0]["action"] == "delete"
    assert any("does not exist now" in c.value for c in at.caption)
    ok(at.selectbox(key="history-revision").select(1).run())
    click(at, "history-restore")
    assert (ingest_env / "configs" / "sources" / "shop.yaml").read_text() == SHOP_V3


def test_no_history_and_no_sources_say_so(ingest_env: Path) -> None:
    at = history_page(source=None)
    assert "No sources yet" in at.info[0].value
    (ingest_env / "configs" / "sources" / "shop.yaml").write_text(SHOP, encoding="utf-8")
    at = history_page()
    assert "No saves of **shop** were recorded yet" in at.info[0].value


# --- roles: owner, other team, admin --------------------------------------------------------

def test_owner_restores_other_team_is_refused_with_the_message_admin_restores(ingest_env: Path) -> None:
    (ingest_env / "configs" / "teams.yaml").write_text(TEAMS, encoding="utf-8")
    first, second, _ = three_saves()

    at = history_page(email="claire@example.com")  # market-fr: may view, not restore
    assert at.dataframe[0].value.shape[0] == 3 and diffs(at)
    ok(at.selectbox(key="history-revision").select(2).run())
    assert any("team `market-de` or an admin may restore it" in unescape(c.value) for c in at.caption)
    click(at, "history-restore")
    message = flash(at, "error")
    assert message.startswith("Not restored. claire@example.com may not restore source 'shop': it is owned by "
                              "team 'market-de' and you are in market-fr.")
    assert "Ask a member of 'market-de' or an admin (lead@example.com)" in message
    assert (ingest_env / "configs" / "sources" / "shop.yaml").read_text() == SHOP_V3
    denied = [c for c in ConfigStore().history("sources", "shop") if c.actor == "claire@example.com"]
    assert denied == []  # refusals are not changes ...
    log = (ingest_env / ".ingest" / "audit" / "config_changes.jsonl").read_text()
    assert '"actor": "claire@example.com", "action": "restore"' in log  # ... but logged
    assert '"outcome": "denied"' in log

    at = history_page(email="ana@example.com")  # market-de: the owner
    ok(at.selectbox(key="history-revision").select(1).run())
    click(at, "history-restore")
    assert f"Revision {second} of shop is restored" in flash(at, "success")

    at = history_page(email="lead@example.com")  # admin, in no team
    ok(at.selectbox(key="history-revision").select(3).run())  # the first save, now fourth in the list
    click(at, "history-restore")
    assert f"Revision {first} of shop is restored" in flash(at, "success")
    assert [c.actor for c in ConfigStore().history("sources", "shop")][:2] == ["lead@example.com", "ana@example.com"]
