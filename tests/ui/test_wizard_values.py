"""A typed value is never lost: every field kind of the source form (text, password, number,
select, multiselect, toggle, segmented mode, schedule) keeps its value across a step switch,
Back, and a round trip through YAML mode."""

from __future__ import annotations

import copy
from pathlib import Path

from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import NumberInput, TextArea, TextInput

from tests.ui.test_wizard import click, make_shop, ok, open_editor, start_type, state, type_in


def yaml_round_trip(at: AppTest) -> AppTest:
    ok(at.toggle(key="editor-yaml-mode").set_value(True).run())
    return ok(at.toggle(key="editor-yaml-mode").set_value(False).run())


def connection_values(at: AppTest) -> list:
    return [at.text_input(key="f-source-host").value, at.number_input(key="f-source-port").value,
            at.text_input(key="f-source-password").value]


def postgres_connection_typed(name: str, owner: str, database: str) -> AppTest:
    """The form on its connection step with a PostgreSQL connection typed in (port 6543, a password)."""
    at = start_type(open_editor(), "postgres")
    for key, value in (("f-name", name), ("f-owner", owner), ("f-source-host", "db.local"),
                       ("f-source-database", database), ("f-source-username", "reader")):
        type_in(at, key, value)
    ok(at.number_input(key="f-source-port").set_value(6543).run())
    type_in(at, "f-source-password", "pa55-word")
    return at


def test_connection_fields_survive_back_step_switch_and_yaml_mode(ingest_env: Path) -> None:
    at = postgres_connection_typed("crm", "market-fr", "crm")
    ok(at.number_input(key="f-source-connect_timeout_seconds").set_value(7).run())
    expected = ["db.local", 6543, "pa55-word"]

    click(at, "wiz-next")
    click(at, "wiz-back")
    assert connection_values(at) == expected
    click(at, "wiz-go-1")
    click(at, "wiz-go-2")
    assert connection_values(at) == expected
    yaml_round_trip(at)
    assert connection_values(at) == expected
    assert at.number_input(key="f-source-connect_timeout_seconds").value == 7
    assert state(at).draft.secrets == {"source.password": "pa55-word"}


def row_values(at: AppTest) -> list:
    return [at.segmented_control(key="f-tables-0-mode").value, at.selectbox(key="f-tables-0-cursor").value,
            at.segmented_control(key="f-tables-1-mode").value, at.multiselect(key="f-tables-1-primary_key").value,
            at.checkbox(key="f-tables-0-enabled").value, at.toggle(key="f-tables-1-reconcile-on").value]


def test_table_rows_and_schedule_survive_step_switch_and_yaml_mode(ingest_env: Path) -> None:
    make_shop(ingest_env)
    at = start_type(open_editor(), "sqlite")
    for key, value in (("f-name", "shop"), ("f-owner", "market-de"), ("f-source-path", "shop.sqlite")):
        type_in(at, key, value)
    click(at, "wiz-next")
    ok(at.checkbox(key="wiz-pick-main-orders").check().run())
    ok(at.checkbox(key="wiz-pick-main-customers").check().run())
    ok(at.segmented_control(key="f-tables-0-mode").set_value("incremental").run())
    ok(at.selectbox(key="f-tables-0-cursor").select("created_on").run())
    ok(at.segmented_control(key="f-tables-1-mode").set_value("merge").run())
    ok(at.multiselect(key="f-tables-1-primary_key").select("email").run())
    ok(at.checkbox(key="f-tables-0-enabled").uncheck().run())
    ok(at.toggle(key="f-tables-1-reconcile-on").set_value(True).run())
    expected = ["incremental", "created_on", "merge", ["customer_id", "email"], False, True]
    assert row_values(at) == expected

    click(at, "wiz-next")
    click(at, "wiz-back")
    assert row_values(at) == expected
    yaml_round_trip(at)
    assert row_values(at) == expected

    state(at).furthest = 5
    ok(at.run())
    click(at, "wiz-go-5")
    ok(at.radio(key="wiz-sched-kind").set_value("weekly").run())
    ok(at.selectbox(key="wiz-sched-day").set_value(3).run())
    ok(at.selectbox(key="wiz-sched-tz").set_value("Europe/Berlin").run())
    assert state(at).draft.data["schedule"] == "0 6 * * 3"
    click(at, "wiz-go-3")
    click(at, "wiz-go-5")
    yaml_round_trip(at)
    assert [at.radio(key="wiz-sched-kind").value, at.selectbox(key="wiz-sched-day").value,
            at.selectbox(key="wiz-sched-tz").value] == ["weekly", 3, "Europe/Berlin"]
    assert {k: state(at).draft.data[k] for k in ("schedule", "timezone")} == {"schedule": "0 6 * * 3",
                                                                           "timezone": "Europe/Berlin"}


def test_a_custom_cron_out_of_range_names_the_field(ingest_env: Path) -> None:
    make_shop(ingest_env)
    at = start_type(open_editor(), "sqlite")
    for key, value in (("f-name", "shop"), ("f-owner", "market-de"), ("f-source-path", "shop.sqlite")):
        type_in(at, key, value)
    state(at).furthest = 5
    ok(at.run())
    click(at, "wiz-go-5")
    ok(at.radio(key="wiz-sched-kind").set_value("custom").run())
    type_in(at, "wiz-sched-cron", "61 25 * * *")
    shown = [e.value for e in at.error]
    assert any("minute 61 is out of range 0-59; hour 25 is out of range 0-23" in e for e in shown), shown


def element_default(widget) -> object:
    """What the browser draws a widget with when it has no value of its own for it: the element's
    default (the seeded value reaches the browser once, in the run that seeded it)."""
    proto = widget.proto
    if isinstance(widget, NumberInput):
        return proto.default if proto.HasField("default") else None
    if isinstance(widget, TextInput):
        return proto.default if proto.HasField("default") else ""
    if isinstance(widget, TextArea):
        return proto.default if proto.HasField("default") else ""
    return widget.value


def test_a_widget_drawn_at_its_element_default_changes_nothing(ingest_env: Path) -> None:
    """Seen in Chromium on a loaded machine: the connection step's 'Connect timeout seconds'
    (under More connection settings, never touched) was drawn at its element default, the
    minimum 1, and its commit wrote connect_timeout_seconds: 1 into the saved YAML."""
    at = postgres_connection_typed("sales_de", "market-de", "sales")
    typed = copy.deepcopy((state(at).draft.data, state(at).draft.secrets))
    fields = [w for kind in (at.number_input, at.text_input, at.text_area) for w in kind if str(w.key).startswith("f-")]
    assert {"f-source-connect_timeout_seconds", "f-source-port", "f-source-username", "f-source-password",
            "f-source-options"} <= {w.key for w in fields}
    drawn = {w.key: element_default(w) for w in fields}
    for widget in fields:
        widget.set_value(drawn[widget.key])
    ok(at.run())
    assert (state(at).draft.data, state(at).draft.secrets) == typed, {k: v for k, v in drawn.items() if "pass" not in k}
