"""The new / edit source wizard, headless with AppTest: every step filled the way a user fills
it, field errors shown and fixed, the YAML on disk checked, secrets in the provider only.

Widgets are found by key: ``f-<yaml path>`` for model fields (``f-source-host``,
``f-tables-0-mode``), ``wiz-*`` for the wizard's own controls.
"""

from __future__ import annotations

import re
import shutil
import socket
import sqlite3
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from streamlit.testing.v1 import AppTest

from ingestion_core.config.secrets import store_secret

REPO = Path(__file__).resolve().parents[2]
EDITOR = REPO / "pages" / "source_editor.py"
SOURCE_TYPES = ("postgres", "mysql", "mssql", "azure_sql", "oracle", "sqlite", "rest_api", "filesystem")

EXPECTED_SHOP = """\
# yaml-language-server: $schema=../source.schema.json
version: 1
name: shop
owner: market-de
description: Web shop
schedule: 0 6 * * *
source:
  type: sqlite
  path: shop.sqlite
tables:
- name: orders
  mode: incremental
  cursor: updated_at
- name: customers
  mode: merge
  primary_key:
  - customer_id
  checks:
  - not_null: customer_id
  - unique:
    - customer_id
"""


# --- helpers (shared with the other wizard and sources tests) ------------------------------

def unescape(markdown: str) -> str:
    return re.sub(r"\\(.)", r"\1", markdown)


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def open_editor(request: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(EDITOR), default_timeout=30)
    if request is not None:
        at.session_state["editor_request"] = request
    return ok(at.run())


def state(at: AppTest):
    return at.session_state["editor"]


def click(at: AppTest, key: str) -> AppTest:
    return ok(at.button(key=key).click().run())


def type_in(at: AppTest, key: str, text: str) -> AppTest:
    return ok(at.text_input(key=key).input(text).run())


def outcomes(at: AppTest) -> list[tuple[str, str]]:
    """The boxes of finished runs (``components.outcome_box``) in page order: (label, "complete",
    "error" or "cancelled")."""
    from portal.shared.components import OUTCOME_ICONS

    states = {icon: state for state, icon in OUTCOME_ICONS.items()}
    return [(box.label, states[box.icon]) for box in at.expander if box.icon in states]


def errors(at: AppTest) -> list[str]:
    return [unescape(e.value) for e in at.error]


def page_text(at: AppTest, skip_keys: tuple[str, ...] = ()) -> str:
    """Every text the page shows, widget values included (but those of ``skip_keys``: a
    password field, whose value the browser shows as dots)."""
    parts = [str(getattr(e, "value", "")) for kind in ("markdown", "caption", "error", "warning", "info", "success",
                                                        "code", "text_input", "text_area")
             for e in getattr(at, kind) if getattr(e, "key", None) not in skip_keys]
    return "\n".join(unescape(p) for p in parts)


def make_shop(project: Path) -> Path:
    path = project / "shop.sqlite"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE orders (order_id INTEGER PRIMARY KEY, amount NUMERIC, created_on DATE, "
                    "updated_at TIMESTAMP, note TEXT)")
        con.execute("CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, email TEXT)")
        con.execute("CREATE TABLE audit (id INTEGER PRIMARY KEY, message TEXT)")
        con.executemany("INSERT INTO customers (email) VALUES (?)", [("a@x",), ("b@x",)])
    return path


def start_type(at: AppTest, kind: str) -> AppTest:
    ok(at.radio(key="wiz-type").set_value(kind).run())
    return click(at, "wiz-next")


def write_source(project: Path, name: str, text: str) -> Path:
    path = project / "configs" / "sources" / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def secrets_file(project: Path) -> dict:
    path = project / ".ingest" / "secrets.toml"
    return tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


# --- the whole flow ------------------------------------------------------------------------

def test_sqlite_source_from_type_to_saved_yaml(ingest_env: Path) -> None:
    make_shop(ingest_env)
    at = open_editor()
    assert state(at).step == 1

    # 1. a type is needed before going on
    click(at, "wiz-next")
    assert state(at).step == 1 and "Choose what you want to load first." in errors(at)
    start_type(at, "sqlite")
    assert state(at).step == 2

    # 2. required fields are flagged on Next, a bad name in plain words, then fixed
    click(at, "wiz-next")
    assert state(at).step == 2
    shown = errors(at)
    assert any("'name' is required" in e for e in shown) and any("'path' is required" in e for e in shown)
    type_in(at, "f-name", "Shop DE")
    assert any("'Shop DE' is not a valid name: use lower-case letters" in e for e in errors(at))
    type_in(at, "f-name", "shop")
    type_in(at, "f-owner", "market-de")
    type_in(at, "f-description", "Web shop")
    type_in(at, "f-source-path", "shop.sqlite")
    assert not errors(at)

    # the connection is tested on its own step
    click(at, "wiz-test")
    assert at.success and "Connected in" in at.success[0].value
    click(at, "wiz-next")
    assert state(at).step == 3

    # 3. one table of every table: tick two of the three; per row mode, cursor and key
    assert {c.key for c in at.checkbox if c.key.startswith("wiz-pick-")} == {
        "wiz-pick-main-orders", "wiz-pick-main-customers", "wiz-pick-main-audit"}
    assert "~2" in page_text(at)
    ok(at.checkbox(key="wiz-pick-main-orders").check().run())
    ok(at.checkbox(key="wiz-pick-main-customers").check().run())
    ok(at.segmented_control(key="f-tables-0-mode").set_value("incremental").run())
    ok(at.segmented_control(key="f-tables-1-mode").set_value("merge").run())
    cursor = at.selectbox(key="f-tables-0-cursor")
    assert cursor.value == "updated_at"
    # only orderable columns are offered as cursor: no TEXT column
    assert cursor.options == ["(choose)", "updated_at · TIMESTAMP", "created_on · DATE", "order_id · INTEGER",
                              "amount · NUMERIC"]
    assert at.multiselect(key="f-tables-1-primary_key").value == ["customer_id"]
    click(at, "wiz-next")

    # 4. checks: the key suggestion
    click(at, "wiz-check-suggest-1")
    click(at, "wiz-next")
    assert state(at).step == 5

    # 5. review and schedule: the summary comes first; a daily schedule at 06:00
    assert at.selectbox(key="f-destination").value == "local_duckdb"
    ok(at.radio(key="wiz-sched-kind").set_value("daily").run())
    summary = unescape(at.info[0].value)
    assert "2 tables; orders incremental on updated_at; customers merged on customer_id; daily at 06:00 UTC, " \
           "next run" in summary
    assert "Next runs:" in page_text(at)
    # what executes it: no scheduler runs in this test, so the review names the command that starts one
    assert "Runs on:** nothing runs cron 0 6 * * * UTC yet" in page_text(at)
    assert "ingest scheduler" in page_text(at)
    assert at.code[0].value == EXPECTED_SHOP.rstrip("\n")
    click(at, "wiz-save")
    assert "is now in the Sources list" in unescape(at.success[0].value)
    assert (ingest_env / "configs" / "sources" / "shop.yaml").read_text(encoding="utf-8") == EXPECTED_SHOP
    assert {"editor-test-now", "editor-run-now", "editor-to-sources"} <= {b.key for b in at.button}


def test_going_back_and_forth_keeps_what_was_typed(ingest_env: Path) -> None:
    at = start_type(open_editor(), "postgres")
    for key, value in (("f-name", "crm"), ("f-owner", "market-fr"), ("f-source-host", "db.local"),
                       ("f-source-database", "crm"), ("f-source-username", "reader")):
        type_in(at, key, value)
    ok(at.number_input(key="f-source-port").set_value(6543).run())
    ok(at.text_input(key="f-source-password").input("pa55-word").run())
    click(at, "wiz-next")
    click(at, "wiz-back")
    assert state(at).step == 2
    assert [at.text_input(key=k).value for k in ("f-name", "f-source-host", "f-source-username")] == \
        ["crm", "db.local", "reader"]
    assert at.number_input(key="f-source-port").value == 6543
    assert at.text_input(key="f-source-password").value == "pa55-word"
    click(at, "wiz-go-1")
    click(at, "wiz-go-2")
    assert at.text_input(key="f-source-database").value == "crm"
    assert state(at).draft.data["source"] == {"type": "postgres", "host": "db.local", "database": "crm",
                                              "username": "reader", "port": 6543}


# --- PostgreSQL: secrets, connection test, discovery ---------------------------------------

@pytest.fixture
def crm_db(postgres_db):
    postgres_db.execute(
        "CREATE SCHEMA crm; CREATE TABLE crm.contacts (id bigint PRIMARY KEY, email text, changed_at timestamptz,"
        " score integer); CREATE TABLE crm.notes (id bigint PRIMARY KEY, body text);"
        "INSERT INTO crm.contacts SELECT g, 'x', now(), g FROM generate_series(1, 20) g; ANALYZE crm.contacts")
    return postgres_db


def test_postgres_password_goes_to_the_provider_only(ingest_env: Path, crm_db) -> None:
    at = start_type(open_editor(), "postgres")
    for key, value in (("f-name", "crm"), ("f-owner", "market-fr"), ("f-source-host", crm_db.host),
                       ("f-source-database", crm_db.name), ("f-source-username", crm_db.user)):
        type_in(at, key, value)
    ok(at.number_input(key="f-source-port").set_value(crm_db.port).run())
    ok(at.text_input(key="f-source-password").input("wrong-password-123").run())
    assert "${secrets.crm.password}" in page_text(at)

    # tested on the connection step; the refusal is drawn once, under the password, in the words of
    # someone who typed it (no "password reference": there is none to check)
    click(at, "wiz-test")
    assert len(at.error) == 1, errors(at)
    under_password = errors(at)[0]
    assert "the connection test failed" in under_password and "password authentication failed" in under_password
    assert "check username and the password you typed" in under_password
    keys = [getattr(e, "key", None) or getattr(e, "value", "") for e in at.main]
    assert at.error[0].value in keys[keys.index("f-source-password") + 1:keys.index("f-source-password") + 3]
    assert "reference" not in page_text(at).replace("${secrets.crm.password}", "")
    shown = [e.value for kind in ("error", "warning", "caption", "markdown", "success") for e in getattr(at, kind)]
    assert "wrong-password-123" not in "\n".join(shown)

    ok(at.text_input(key="f-source-password").input(crm_db.password).run())
    stale = errors(at)  # the settings changed since the failed test: said once, as the answer of an older test
    assert len(stale) == 1 and "Could not connect." in stale[0] and "the password you typed" in stale[0], stale
    assert "changed since this test" in page_text(at)
    click(at, "wiz-test")
    assert "Connected in" in at.success[0].value
    assert not [e for e in at.error if "connection test failed" in e.value]
    click(at, "wiz-next")

    # every schema's tables in one table: crm is there without choosing a schema
    ok(at.checkbox(key="wiz-pick-crm-contacts").check().run())
    ok(at.segmented_control(key="f-tables-0-mode").set_value("incremental").run())
    assert at.selectbox(key="f-tables-0-cursor").value == "changed_at"
    for _ in range(2):
        click(at, "wiz-next")
    assert state(at).step == 5
    click(at, "wiz-save")

    text = (ingest_env / "configs" / "sources" / "crm.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    assert data["source"]["password"] == "${secrets.crm.password}"
    assert data["tables"] == [{"name": "contacts", "schema": "crm", "mode": "incremental", "cursor": "changed_at"}]
    assert crm_db.password not in text
    assert secrets_file(ingest_env)["crm"]["password"] == crm_db.password


def _postgres_connection(at: AppTest, db, name: str = "crm") -> AppTest:
    for key, value in (("f-name", name), ("f-owner", "market-fr"), ("f-source-host", db.host),
                       ("f-source-database", db.name), ("f-source-username", db.user),
                       ("f-source-password", db.password)):
        type_in(at, key, value)
    return ok(at.number_input(key="f-source-port").set_value(db.port).run())


def _postgres_at(port: int) -> AppTest:
    """A new postgres source at step 2 pointing at 127.0.0.1:``port``."""
    at = start_type(open_editor(), "postgres")
    for key, value in (("f-name", "crm"), ("f-owner", "market-fr"), ("f-source-host", "127.0.0.1"),
                       ("f-source-database", "x"), ("f-source-username", "u")):
        type_in(at, key, value)
    return ok(at.number_input(key="f-source-port").set_value(port).run())


def _test_local_port(port: int) -> AppTest:
    """A PostgreSQL connection to 127.0.0.1:``port``, tested."""
    return click(_postgres_at(port), "wiz-test")


def refused_postgres() -> AppTest:
    """A new postgres source at step 2 whose port nothing listens on."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    port = server.getsockname()[1]
    server.close()  # nothing listens there now
    return _postgres_at(port)


def test_the_tables_step_says_the_typed_password_not_a_reference(ingest_env: Path, crm_db) -> None:
    """Listing the tables with a wrong typed password: step 3 says to check the password you typed
    (someone who typed one has no secret reference to check)."""
    at = start_type(open_editor(), "postgres")
    for key, value in (("f-name", "crm"), ("f-owner", "market-fr"), ("f-source-host", crm_db.host),
                       ("f-source-database", crm_db.name), ("f-source-username", crm_db.user)):
        type_in(at, key, value)
    ok(at.number_input(key="f-source-port").set_value(crm_db.port).run())
    ok(at.text_input(key="f-source-password").input("wrong-password-123").run())
    click(at, "wiz-next")  # not tested: Next is allowed, the tables step asks the database
    assert state(at).step == 3
    listing = [e for e in errors(at) if "Could not list the tables" in e]
    assert len(listing) == 1 and "the password you typed" in listing[0], errors(at)
    assert "reference" not in listing[0] and "wrong-password-123" not in page_text(at)


def test_a_refused_port_is_said_under_the_port(ingest_env: Path) -> None:
    at = refused_postgres()
    click(at, "wiz-test")
    flagged = [e for e in at.error if "the connection test failed" in e.value]
    assert len(flagged) == 1 and "check host and port" in unescape(flagged[0].value).lower()
    # drawn right under the port field: the element after the port widget in the page's order
    keys = [getattr(e, "key", None) or getattr(e, "value", "") for e in at.main]
    assert flagged[0].value in keys[keys.index("f-source-port") + 1:keys.index("f-source-port") + 3]


def test_save_after_a_failed_test_asks_and_the_review_says_so(ingest_env: Path, crm_db) -> None:
    at = start_type(open_editor(), "postgres")
    _postgres_connection(at, crm_db)
    click(at, "wiz-next")
    ok(at.checkbox(key="wiz-pick-crm-notes").check().run())
    click(at, "wiz-go-2")
    ok(at.text_input(key="f-source-password").input("not-the-password").run())
    click(at, "wiz-test")
    state(at).furthest = 5
    ok(at.run())
    click(at, "wiz-go-5")
    assert any("The connection test failed" in unescape(w.value) for w in at.warning)
    click(at, "wiz-save")
    assert not (ingest_env / "configs" / "sources" / "crm.yaml").exists()
    assert any("Save anyway?" in unescape(w.value) for w in at.warning)
    click(at, "wiz-save-anyway")
    assert (ingest_env / "configs" / "sources" / "crm.yaml").exists()


TESTED = "The connection test passed."
UNTESTED = "The connection was not tested with these settings (step 2)."


def test_a_tested_connection_stays_tested_through_the_save(ingest_env: Path, crm_db) -> None:
    at = start_type(open_editor(), "postgres")
    _postgres_connection(at, crm_db)  # the password typed
    click(at, "wiz-test")
    assert "Connected in" in at.success[0].value
    click(at, "wiz-next")
    ok(at.checkbox(key="wiz-pick-crm-notes").check().run())
    for _ in range(2):
        click(at, "wiz-next")
    assert TESTED in page_text(at)
    click(at, "wiz-save")
    assert state(at).draft.data["source"]["password"] == "${secrets.crm.password}"  # typed -> reference
    assert TESTED in page_text(at) and UNTESTED not in page_text(at)

    # a real change of the settings after the test is untested
    click(at, "wiz-go-2")
    type_in(at, "f-source-database", "postgres")
    click(at, "wiz-go-5")
    assert UNTESTED in page_text(at) and TESTED not in page_text(at)


def test_a_table_the_database_does_not_have_is_refused_with_the_closest_names(ingest_env: Path, crm_db) -> None:
    at = start_type(open_editor(), "postgres")
    _postgres_connection(at, crm_db)
    click(at, "wiz-next")
    ok(at.text_input(key="wiz-manual-name").input("crm.contact").run())
    click(at, "wiz-manual-add")
    shown = [e for e in errors(at) if "did you mean" in e]
    assert shown == ["crm.contact was not added: table 'contact' is not in schema crm: did you mean 'contacts'?"]
    assert state(at).draft.data["tables"] == []


def test_look_up_the_columns_shows_the_yaml_values_at_once(ingest_env: Path, crm_db) -> None:
    write_source(ingest_env, "crm", SAVED_CRM.replace("name: contacts\n  schema: public", "name: contacts\n"
                                                      "  schema: crm\n  mode: incremental\n  cursor: score"))
    at = open_editor({"mode": "edit", "name": "crm"})
    click(at, "wiz-go-2")
    type_in(at, "f-source-host", crm_db.host)
    ok(at.number_input(key="f-source-port").set_value(crm_db.port).run())
    type_in(at, "f-source-database", crm_db.name)
    type_in(at, "f-source-username", crm_db.user)
    click(at, "f-source-password-replace")
    type_in(at, "f-source-password", crm_db.password)
    click(at, "wiz-go-3")
    # found by discovery: the row's cursor picker holds the YAML's value straight away
    assert at.selectbox(key="f-tables-0-cursor").value == "score"


def _blackhole() -> tuple[socket.socket, int]:
    """A port that accepts TCP connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    return server, server.getsockname()[1]


def test_connection_test_gives_up_after_the_timeout(ingest_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_PORTAL_TIMEOUT_S", "1")
    server, port = _blackhole()
    try:
        at = start_type(open_editor(), "postgres")
        for key, value in (("f-name", "slow"), ("f-owner", "market-de"), ("f-source-host", "127.0.0.1"),
                           ("f-source-database", "x")):
            type_in(at, key, value)
        ok(at.number_input(key="f-source-port").set_value(port).run())
        click(at, "wiz-test")
    finally:
        server.close()
    assert len(at.error) == 1, errors(at)  # one box per failure, at the field to fix
    message = errors(at)[0]
    assert "the connection test failed: the source did not answer within 1 seconds" in message
    assert "check host and port" in message.lower()


def _wrong_protocol_server() -> tuple[socket.socket, int]:
    """A port where something else than PostgreSQL answers (an HTTP server's reply to anything)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def answer() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(64)
                conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")

    threading.Thread(target=answer, daemon=True).start()
    return server, server.getsockname()[1]


def test_an_error_of_the_tls_handshake_says_what_to_check_without_a_code_trail(ingest_env: Path) -> None:
    server, port = _wrong_protocol_server()
    try:
        at = _test_local_port(port)
    finally:
        server.close()
    assert len(at.error) == 1, errors(at)
    message = errors(at)[0]
    assert "SSL negotiation" in message
    assert "check that host and port point at the database server itself" in message and "sslmode" in message
    assert not re.search(r"\.py:\d+", page_text(at)), page_text(at)



def test_a_missing_sql_server_odbc_driver_says_whom_to_ask_for_what(ingest_env: Path) -> None:
    """No Microsoft ODBC driver can be installed on these machines: the test meets the real
    'Can't open lib' of unixODBC (or the missing unixODBC itself), as a portal without it does."""
    at = start_type(open_editor(), "mssql")
    for key, value in (("f-name", "erp"), ("f-owner", "market-de"), ("f-source-host", "127.0.0.1"),
                       ("f-source-database", "erp"), ("f-source-username", "reader"), ("f-source-password", "pw")):
        type_in(at, key, value)
    click(at, "wiz-test")
    assert len(at.error) == 1, errors(at)
    message = errors(at)[0]
    assert 'ask your platform team to install Microsoft\'s "ODBC Driver 18 for SQL Server"' in message
    assert "msodbcsql18" in message and "docs/operations.md" in message
    assert "install what the message names" not in message


# --- editing a saved source ----------------------------------------------------------------

SAVED_CRM = """\
# The CRM database (comment kept in YAML mode)
version: 1
name: crm
owner: market-fr
source:
  type: postgres
  host: db.local
  database: crm
  username: reader
  password: ${secrets.crm.password}
tables:
- name: contacts
  schema: public
"""


def test_edit_shows_a_saved_secret_as_set_replaces_it_and_diffs(ingest_env: Path) -> None:
    write_source(ingest_env, "crm", SAVED_CRM)
    store_secret("${secrets.crm.password}", "old-secret-1")
    at = open_editor({"mode": "edit", "name": "crm"})
    assert state(at).step == 2 and at.title[0].value == "Edit crm"
    assert at.text_input(key="f-name").disabled
    assert any("set (secrets file, section [crm], key password)" in unescape(c.value) for c in at.caption)
    assert "old-secret-1" not in page_text(at)

    click(at, "f-source-password-replace")
    ok(at.text_input(key="f-source-password").input("new-secret-2").run())
    type_in(at, "f-source-host", "db2.local")
    click(at, "wiz-go-5")
    diff = at.code[0].value  # the diff comes before the YAML
    assert "-  host: db.local\n+  host: db2.local" in diff
    changed = [line for line in diff.splitlines()[2:] if line.startswith(("-", "+"))]
    assert changed == ["-# The CRM database (comment kept in YAML mode)",
                       "+# yaml-language-server: $schema=../source.schema.json", "-  host: db.local",
                       "+  host: db2.local"]  # keys stay in the file's order: only real changes show
    assert any("leaves out the comments" in w.value for w in at.warning)
    assert not re.search(r"^[-+] +password", diff, re.M)  # same reference, new value: only the secrets file
    click(at, "wiz-save")

    saved = yaml.safe_load((ingest_env / "configs" / "sources" / "crm.yaml").read_text(encoding="utf-8"))
    assert saved["source"]["host"] == "db2.local" and saved["source"]["password"] == "${secrets.crm.password}"
    assert secrets_file(ingest_env)["crm"]["password"] == "new-secret-2"


def test_save_refuses_a_file_changed_since_it_was_opened(ingest_env: Path) -> None:
    path = write_source(ingest_env, "crm", SAVED_CRM)
    at = open_editor({"mode": "edit", "name": "crm"})
    type_in(at, "f-source-host", "mine.local")
    theirs = SAVED_CRM.replace("db.local", "theirs.local")
    path.write_text(theirs, encoding="utf-8")
    click(at, "wiz-go-5")
    click(at, "wiz-save")
    assert any("Not saved." in e and "was changed by someone else since you opened it" in e for e in errors(at))
    assert path.read_text(encoding="utf-8") == theirs


def test_a_new_source_cannot_take_an_existing_name(ingest_env: Path) -> None:
    write_source(ingest_env, "crm", SAVED_CRM)
    at = start_type(open_editor(), "sqlite")
    type_in(at, "f-name", "crm")
    assert any("a source named 'crm' already exists; choose another name" in e for e in errors(at))


def test_duplicate_opens_a_copy_under_a_free_name(ingest_env: Path) -> None:
    write_source(ingest_env, "crm", SAVED_CRM)
    at = open_editor({"mode": "duplicate", "name": "crm"})
    assert at.title[0].value == "New source"
    assert at.text_input(key="f-name").value == "crm_copy"
    assert at.text_input(key="f-source-host").value == "db.local"


# --- YAML mode -----------------------------------------------------------------------------

def test_yaml_mode_validates_every_change_and_saves_the_text(ingest_env: Path) -> None:
    path = write_source(ingest_env, "crm", SAVED_CRM)
    at = open_editor({"mode": "yaml", "name": "crm"})
    assert at.text_area(key="editor-yaml-text").value == SAVED_CRM
    assert at.success[0].value == "Valid."

    ok(at.text_area(key="editor-yaml-text").input(SAVED_CRM.replace("schema: public", "schema: public\n  colour: 1"))
       .run())
    assert any("`tables[0].colour`: unknown key 'colour'" in e for e in errors(at))
    assert at.button(key="yaml-save").disabled

    ok(at.text_area(key="editor-yaml-text").input("name: [unclosed").run())
    assert any("YAML syntax error" in e for e in errors(at))

    edited = SAVED_CRM.replace("host: db.local", "host: db3.local  # moved in May")
    ok(at.text_area(key="editor-yaml-text").input(edited).run())
    assert "+  host: db3.local  # moved in May" in at.code[0].value
    click(at, "yaml-save")
    assert path.read_text(encoding="utf-8") == edited  # comments kept

    ok(at.toggle(key="editor-yaml-mode").set_value(False).run())
    assert at.text_input(key="f-source-host").value == "db3.local"


def test_yaml_mode_refuses_a_literal_password(ingest_env: Path) -> None:
    at = open_editor()
    ok(at.toggle(key="editor-yaml-mode").set_value(True).run())
    ok(at.text_area(key="editor-yaml-text").input(SAVED_CRM.replace("${secrets.crm.password}", "hunter2")).run())
    shown = "\n".join(errors(at))
    assert "`source.password`: 'password' holds a literal secret" in shown and "hunter2" not in shown


def test_form_to_yaml_carries_typed_secrets_as_references(ingest_env: Path) -> None:
    at = start_type(open_editor(), "postgres")
    for key, value in (("f-name", "crm"), ("f-owner", "market-fr"), ("f-source-host", "db"),
                       ("f-source-database", "crm")):
        type_in(at, key, value)
    ok(at.text_input(key="f-source-password").input("typed-secret-9").run())
    ok(at.toggle(key="editor-yaml-mode").set_value(True).run())
    text = at.text_area(key="editor-yaml-text").value
    assert "password: ${secrets.crm.password}" in text and "typed-secret-9" not in text


# --- templates, files, REST ----------------------------------------------------------------

def test_a_template_fills_the_form_without_its_secrets(ingest_env: Path) -> None:
    shutil.copytree(REPO / "configs" / "templates", ingest_env / "configs" / "templates")
    at = open_editor()
    ok(at.selectbox(key="wiz-template").select("postgres").run())
    click(at, "wiz-next")
    assert at.text_input(key="f-source-host").value == "sales-db.example.internal"
    assert at.text_input(key="f-name").value == ""
    assert at.text_input(key="f-source-password").value == ""  # typed by the user, not the template's reference
    assert "username" not in state(at).draft.data["source"]


def test_files_matching_a_glob_become_a_table(ingest_env: Path) -> None:
    folder = ingest_env / "landing" / "sales"
    folder.mkdir(parents=True)
    for day in ("01", "02"):
        (folder / f"sales_{day}.csv").write_text("id;amount\n1;2.5\n", encoding="utf-8")
    at = start_type(open_editor(), "filesystem")
    for key, value in (("f-name", "partner_files"), ("f-owner", "market-de"), ("f-source-bucket_url", "landing")):
        type_in(at, key, value)
    click(at, "wiz-test")
    assert "Connected in" in at.success[0].value
    click(at, "wiz-next")
    type_in(at, "wiz-glob", "sales/*.csv")
    click(at, "wiz-list-files")
    assert sorted(at.dataframe[0].value["path"]) == ["sales/sales_01.csv", "sales/sales_02.csv"]
    click(at, "wiz-add-files")
    assert at.text_input(key="f-tables-0-name").value == "sales"
    assert at.radio(key="f-tables-0-format").value == "csv"
    ok(at.toggle(key="f-tables-0-csv-on").set_value(True).run())
    type_in(at, "f-tables-0-csv-delimiter", ";")
    for _ in range(2):
        click(at, "wiz-next")
    click(at, "wiz-save")
    saved = yaml.safe_load((ingest_env / "configs" / "sources" / "partner_files.yaml").read_text(encoding="utf-8"))
    assert saved["tables"] == [{"name": "sales", "glob": "sales/*.csv", "format": "csv", "csv": {"delimiter": ";"}}]


@pytest.fixture
def tiny_api() -> Iterator[str]:
    """A one-endpoint JSON API on loopback that wants a bearer token."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            authorized = self.headers.get("Authorization") == "Bearer tok-en-42"
            body = b'{"data": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}' if authorized else b"{}"
            self.send_response(200 if authorized else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_rest_api_with_a_token_and_an_endpoint_test(ingest_env: Path, tiny_api: str) -> None:
    at = start_type(open_editor(), "rest_api")
    for key, value in (("f-name", "crm_api"), ("f-owner", "market-de"), ("f-source-base_url", tiny_api)):
        type_in(at, key, value)
    ok(at.selectbox(key="f-source-auth-type").select("bearer").run())
    ok(at.text_input(key="f-source-auth-token").input("tok-en-42").run())
    click(at, "wiz-next")
    type_in(at, "wiz-endpoint-name", "contacts")
    type_in(at, "wiz-endpoint-path", "contacts")
    click(at, "wiz-endpoint-add")
    assert at.text_input(key="f-tables-0-path").value == "contacts"

    click(at, "wiz-test-endpoint-0")
    shown = page_text(at)
    assert ("HTTP 200" in shown and "tok-en-42" not in shown) or "Endpoint test not available yet" in shown
    for _ in range(2):
        click(at, "wiz-next")
    click(at, "wiz-save")
    text = (ingest_env / "configs" / "sources" / "crm_api.yaml").read_text(encoding="utf-8")
    assert yaml.safe_load(text)["source"]["auth"] == {"type": "bearer", "token": "${secrets.crm_api.token}"}
    assert "tok-en-42" not in text
    assert secrets_file(ingest_env)["crm_api"]["token"] == "tok-en-42"


# --- checks --------------------------------------------------------------------------------

def test_checks_are_added_checked_and_removed(ingest_env: Path) -> None:
    make_shop(ingest_env)
    at = start_type(open_editor(), "sqlite")
    for key, value in (("f-name", "shop"), ("f-owner", "market-de"), ("f-source-path", "shop.sqlite")):
        type_in(at, key, value)
    click(at, "wiz-next")
    ok(at.checkbox(key="wiz-pick-main-orders").check().run())
    click(at, "wiz-next")
    ok(at.selectbox(key="wiz-check-kind-0").select("row_count").run())
    click(at, "wiz-check-add-0")
    assert at.number_input(key="f-tables-0-checks-0-row_count-min").value == 1
    ok(at.number_input(key="f-tables-0-checks-0-row_count-max").set_value(0).run())
    assert any("row_count min (1) is above max (0); swap them" in e for e in errors(at))
    click(at, "wiz-next")
    assert state(at).step == 4
    click(at, "wiz-check-remove-0-0")
    assert "checks" not in state(at).draft.data["tables"][0]
    click(at, "wiz-next")
    assert state(at).step == 5


# --- every step of every source type renders -----------------------------------------------

@pytest.mark.parametrize("kind", SOURCE_TYPES)
def test_every_step_renders_for_every_source_type(ingest_env: Path, kind: str) -> None:
    at = start_type(open_editor(), kind)
    state(at).furthest = 5
    ok(at.run())
    for step in (3, 4, 5):  # 2 was drawn by start_type
        click(at, f"wiz-go-{step}")
        assert state(at).step == step
