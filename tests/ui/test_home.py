"""The portal's entry and Home page, rendered headless with AppTest against the per-test config
dir of the autouse ``ingest_env`` fixture (tests/conftest.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from portal.shared.markdown import md_escape

REPO = Path(__file__).resolve().parents[2]
PAGE_FILES = [REPO / "app.py", *sorted((REPO / "pages").glob("*.py"))]
HOME = REPO / "pages" / "home.py"

VALID_SQLITE = """\
name: shop
owner: market-de
description: Demo shop
source: {type: sqlite, path: demo/data/shop.sqlite}
tables:
  - name: orders
    mode: merge
    primary_key: order_id
    checks: [{not_null: order_id}]
  - name: customers
"""
# Two problems: a literal password (its value must never be shown) and a misspelt key.
INVALID_POSTGRES = """\
name: crm_fr
owner: market-fr
source: {type: postgres, host: db.local, database: crm, username: app, password: hunter2-literal}
tables:
  - {name: contacts, colour: blue}
"""


def run(path: Path) -> AppTest:
    at = AppTest.from_file(str(path), default_timeout=30)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def unescape(markdown: str) -> str:
    return re.sub(r"\\(.)", r"\1", markdown)


def write_sources(project: Path, **files: str) -> None:
    for name, text in files.items():
        (project / "configs" / "sources" / f"{name}.yaml").write_text(text, encoding="utf-8")


@pytest.mark.parametrize("page", PAGE_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_page_renders(page: Path, ingest_env: Path) -> None:
    write_sources(ingest_env, shop=VALID_SQLITE, crm_fr=INVALID_POSTGRES)
    run(page)


def test_home_lists_sources_with_their_status(ingest_env: Path) -> None:
    write_sources(ingest_env, shop=VALID_SQLITE, crm_fr=INVALID_POSTGRES)

    at = run(HOME)

    rows = at.dataframe[0].value.to_dict("records")
    assert rows == [
        {"name": "crm_fr", "type": "postgres", "owner": "market-fr", "tables": 1,
         "destination": "local_duckdb", "enabled": True, "valid": False},
        {"name": "shop", "type": "sqlite", "owner": "market-de", "tables": 2,
         "destination": "local_duckdb", "enabled": True, "valid": True},
    ]
    assert [(m.label, m.value) for m in at.metric] == [("Sources", "2"), ("Valid", "1"), ("Invalid", "1")]
    assert not at.info  # no empty state


def test_home_shows_the_problems_of_an_invalid_source(ingest_env: Path) -> None:
    write_sources(ingest_env, shop=VALID_SQLITE, crm_fr=INVALID_POSTGRES)

    at = run(HOME)

    assert len(at.expander) == 1
    assert unescape(at.expander[0].label) == "**crm_fr**: 2 problems"
    assert len(at.error) == 1
    shown = unescape(at.error[0].value)
    assert "`source.password`: 'password' holds a literal secret" in shown
    assert "${secrets.<source name>.password}" in shown
    assert "`tables[0].colour`: unknown key 'colour'" in shown
    assert "hunter2" not in shown


def test_home_shows_migration_warnings_of_a_valid_source(ingest_env: Path) -> None:
    write_sources(ingest_env, legacy=VALID_SQLITE.replace("name: shop", "name: legacy").replace("owner:", "team:"))

    at = run(HOME)

    assert at.dataframe[0].value["valid"].tolist() == [True]
    assert not at.error
    assert "'team' is now called 'owner'" in unescape(at.warning[0].value)


def test_home_empty_state_says_how_to_add_a_source(ingest_env: Path) -> None:
    at = run(HOME)

    assert not at.dataframe
    assert not at.metric
    text = at.info[0].value
    assert "No sources yet" in text
    assert str(ingest_env / "configs" / "templates") in text
    assert "ingest import-excel" in text


def test_home_sees_a_source_added_on_disk_after_the_first_render(ingest_env: Path) -> None:
    at = run(HOME)
    assert at.info

    write_sources(ingest_env, shop=VALID_SQLITE)
    at.button(key="home_refresh").click().run()

    assert at.dataframe[0].value["name"].tolist() == ["shop"]


def test_home_sees_a_changed_file_without_refresh(ingest_env: Path) -> None:
    write_sources(ingest_env, shop=VALID_SQLITE)
    at = run(HOME)
    assert at.dataframe[0].value["valid"].tolist() == [True]

    write_sources(ingest_env, shop=VALID_SQLITE.replace("mode: merge", "mode: upsert"))
    at.run()

    assert at.dataframe[0].value["valid"].tolist() == [False]
    assert "mode" in at.error[0].value


def test_sidebar_shows_config_dir_and_local_mode(ingest_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_ACTOR", "ana")

    at = run(REPO / "app.py")

    captions = [unescape(c.value) for c in at.sidebar.caption]
    assert any(str(ingest_env / "configs") in c for c in captions)
    assert any("ana" in c for c in captions)
    assert any("local mode: no sign-in configured" in c for c in captions)


def test_sidebar_shows_the_signed_in_user(ingest_env: Path) -> None:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=30)
    at.user = {"is_logged_in": True, "email": "ana@example.com"}
    at.run()

    captions = [unescape(c.value) for c in at.sidebar.caption]
    assert any("ana@example.com" in c for c in captions)
    assert not any("local mode" in c for c in captions)


@pytest.mark.parametrize("text", ["${secrets.a.b}", "*x* _y_ `z` [l](u) <b> a|b #h ~s~ \\"])
def test_md_escape_round_trips(text: str) -> None:
    assert unescape(md_escape(text)) == text
    assert "$" not in md_escape(text).replace("\\$", "")


def test_home_leads_to_a_new_source_and_to_a_source_by_its_row(ingest_env: Path) -> None:
    """A newcomer's first steps from Home: New source opens the editor; a click on a source's row
    opens that source's home (where Test run is)."""
    write_sources(ingest_env, shop=VALID_SQLITE, crm_fr=INVALID_POSTGRES)

    at = run(REPO / "app.py")  # through the app's navigation, like the portal: Home is its default page
    at.button(key="home-new").click().run()
    assert not at.exception and at.title[0].value == "New source" and at.radio(key="wiz-type").value is None

    at = run(REPO / "app.py")
    at.session_state["home_sources"] = {"selection": {"rows": [1], "columns": [], "cells": []}}  # shop's row
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "shop" and at.button(key="test-run")


def test_sidebar_writes_the_home_folder_as_a_tilde(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from portal.shared.components import home_relative

    monkeypatch.setenv("HOME", str(tmp_path))
    assert home_relative(tmp_path / "portal" / "configs") == "~/portal/configs"
    assert home_relative(Path("/srv/portal/configs")) == "/srv/portal/configs"
