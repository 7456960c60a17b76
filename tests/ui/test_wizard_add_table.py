"""Adding what to load in step 3. A database: "Add a table by name" refuses a name the database
does not have (once, with the closest names), Next does not move on while a chosen table is
missing, and a failed look-up names the table it was for. Files: a glob that matches no file is
refused at "Add as a table"."""

from __future__ import annotations

from pathlib import Path

from tests.ui.test_wizard import (
    click,
    errors,
    make_shop,
    ok,
    open_editor,
    refused_postgres,
    start_type,
    state,
    type_in,
    write_source,
)

DID_YOU_MEAN = "table 'ordrs' is not in the database: did you mean 'orders'?"


def at_step_3(kind: str, **fields: str):
    """A new source of ``kind`` with name, owner and ``fields`` (f-source-<field>), at step 3."""
    at = start_type(open_editor(), kind)
    for key, value in {"name": fields.pop("name"), "owner": "market-de"}.items():
        type_in(at, f"f-{key}", value)
    for key, value in fields.items():
        type_in(at, f"f-source-{key}", value)
    return click(at, "wiz-next")


def test_a_misspelled_table_is_refused_at_add_once_with_the_closest_name(ingest_env: Path) -> None:
    make_shop(ingest_env)
    at = at_step_3("sqlite", name="shop", path="shop.sqlite")
    type_in(at, "wiz-manual-name", "ordrs")
    click(at, "wiz-manual-add")
    assert state(at).draft.data["tables"] == []
    shown = [e for e in errors(at) if DID_YOU_MEAN in e]
    assert shown == [f"ordrs was not added: {DID_YOU_MEAN}"], errors(at)
    assert at.text_input(key="wiz-manual-name").value == "ordrs"  # kept, to correct it
    type_in(at, "wiz-manual-name", "orders")
    click(at, "wiz-manual-add")
    assert state(at).draft.data["tables"] == [{"name": "orders"}]
    assert not errors(at), errors(at)


SAVED_SHOP = """\
version: 1
name: shop
owner: market-de
source:
  type: sqlite
  path: shop.sqlite
tables:
- name: ordrs
"""


def test_next_does_not_move_on_while_a_chosen_table_is_missing(ingest_env: Path) -> None:
    make_shop(ingest_env)
    write_source(ingest_env, "shop", SAVED_SHOP)
    at = open_editor({"mode": "edit", "name": "shop"})
    click(at, "wiz-go-3")
    assert sum(DID_YOU_MEAN in e for e in errors(at)) == 1, errors(at)
    click(at, "wiz-next")
    assert state(at).step == 3
    click(at, "wiz-remove-0")
    ok(at.checkbox(key="wiz-pick-main-orders").check().run())
    click(at, "wiz-next")
    assert state(at).step == 4


def test_a_failed_look_up_names_the_table_it_was_for(ingest_env: Path) -> None:
    at = refused_postgres()
    click(at, "wiz-next")
    type_in(at, "wiz-manual-name", "public.orders")
    click(at, "wiz-manual-add")
    assert any(e.startswith("Could not look up the columns of public.orders: ") for e in errors(at)), errors(at)
    assert state(at).draft.data["tables"] == [{"name": "orders", "schema": "public"}]  # not checked: kept


def test_a_glob_that_matches_no_file_is_refused_at_add(ingest_env: Path) -> None:
    (ingest_env / "landing" / "sales").mkdir(parents=True)
    (ingest_env / "landing" / "sales" / "sales_01.csv").write_text("id\n1\n", encoding="utf-8")
    at = at_step_3("filesystem", name="partner_files", bucket_url="landing")
    type_in(at, "wiz-glob", "*.xlsx")
    click(at, "wiz-add-files")
    assert state(at).draft.data["tables"] == []
    assert errors(at) == ["*.xlsx was not added: no file in landing matches it. Check the folder (step 2) and the "
                          "pattern: * matches any name within one folder, ** any sub-folder (sales/**/*.csv); Show "
                          "matching files lists what a glob finds."]
    assert any("0 file(s) match" in c.value for c in at.caption)
    type_in(at, "wiz-glob", "sales/*.csv")
    click(at, "wiz-add-files")
    assert state(at).draft.data["tables"] == [{"name": "sales", "glob": "sales/*.csv", "format": "csv"}]
    assert not errors(at), errors(at)


def test_add_with_no_name_says_to_type_one(ingest_env: Path) -> None:
    make_shop(ingest_env)
    at = at_step_3("sqlite", name="shop", path="shop.sqlite")
    click(at, "wiz-manual-add")
    assert state(at).draft.data["tables"] == []
    assert any("Type the table's name first" in e for e in errors(at)), errors(at)
    type_in(at, "wiz-manual-name", "orders")
    click(at, "wiz-manual-add")
    assert state(at).draft.data["tables"] == [{"name": "orders"}] and not errors(at), errors(at)
