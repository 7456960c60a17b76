"""The widget registry: a model's fields become widgets with the model's labels, help texts,
defaults, choices and required-ness, and write back into the draft. A field added to a model
shows up with no page code: here a model made up for the test is rendered."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ingestion_core.config.models.checks import CHECKS
from ingestion_core.config.models.source_file import SOURCE_FILE_MODELS
from portal.onboarding.fields import field_specs, kind_of
from tests.ui.test_wizard import ok, unescape


def _made_up_form() -> None:
    from typing import Literal

    import streamlit as st
    from pydantic import Field

    from ingestion_core.config.models.base import ConfigModel, SecretRef
    from ingestion_core.config.validation import ConfigIssue
    from ingestion_core.onboarding import Draft
    from portal.onboarding.widgets import FormContext, FormState, render_fields

    class Gadget(ConfigModel):
        region: str = Field(description="Where the gadget lives.")
        colour: Literal["red", "green"] = Field("red", description="Paint.")
        size: int | None = Field(None, ge=1, le=9, description="How big.")
        token: SecretRef | None = Field(None, description="Reference to the gadget's token.")
        tags: list[str] = Field(default_factory=list, description="Labels.")
        active: bool = Field(True, description="Switched on.")
        extra: dict[str, int] = Field(default_factory=dict, description="Free settings.")

    if "form" not in st.session_state:
        st.session_state["form"] = FormState(Draft({}))
    state = st.session_state["form"]
    issues = [ConfigIssue("region", "region must be one of eu, us")] if state.draft.data.get("region") == "mars" else []
    render_fields(Gadget, "", FormContext("form", state, issues))


def test_a_made_up_model_becomes_a_form_that_writes_the_draft(ingest_env: Path) -> None:
    at = ok(AppTest.from_function(_made_up_form, default_timeout=30).run())

    region = at.text_input(key="f-region")
    assert unescape(region.label) == "Region *" and region.help == "Where the gadget lives."
    assert at.radio(key="f-colour").options == ["red", "green"] and at.radio(key="f-colour").value == "red"
    assert at.number_input(key="f-size").value is None
    assert at.text_input(key="f-token").proto.type == at.text_input(key="f-token").proto.PASSWORD
    assert at.checkbox(key="f-active").value is True  # under "More settings": it has a default
    assert at.expander[0].label == "More settings"

    ok(region.input("mars").run())
    assert unescape(at.error[0].value) == "region must be one of eu, us"  # the issue is drawn under its field
    ok(at.text_input(key="f-region").input("eu").run())
    ok(at.radio(key="f-colour").set_value("green").run())
    ok(at.number_input(key="f-size").set_value(4).run())
    ok(at.text_input(key="f-tags").input("a, b").run())
    ok(at.text_input(key="f-token").input("s3cret-value").run())
    ok(at.text_area(key="f-extra").input("{retries: 2}").run())
    ok(at.checkbox(key="f-active").uncheck().run())

    state = at.session_state["form"]
    assert state.draft.data == {"region": "eu", "colour": "green", "size": 4, "tags": ["a", "b"],
                                "extra": {"retries": 2}, "active": False}
    assert state.draft.secrets == {"token": "s3cret-value"}

    ok(at.text_area(key="f-extra").input("{retries: [").run())
    assert "this is not valid YAML" in unescape(at.error[0].value)
    assert state.draft.data["extra"] == {"retries": 2}  # the last good value is kept

    ok(at.radio(key="f-colour").set_value("red").run())
    ok(at.text_input(key="f-tags").input("").run())
    assert "tags" not in state.draft.data and state.draft.data["colour"] == "red"


def every_model() -> list:
    from tests.unit.test_docs import every_model as models

    return models()


@pytest.mark.parametrize("model", [*SOURCE_FILE_MODELS.values(), *CHECKS.values()], ids=lambda m: m.__name__)
def test_every_field_of_the_forms_has_a_widget_kind_help_and_a_label(model) -> None:
    for spec in field_specs(model):
        assert spec.label and spec.help, f"{model.__name__}.{spec.key} has no label or help"
        assert spec.kind in {"text", "int", "float", "bool", "choice", "secret", "scalar", "text_list", "model",
                             "union", "yaml"}


def test_fields_fall_back_to_yaml_only_for_mappings_and_lists_of_models() -> None:
    from portal.onboarding.fields import members

    fallback = set()
    for model in every_model():
        for name, info in model.model_fields.items():
            if kind_of(info) == "yaml":
                fallback.add(f"{model.__name__}.{name}")
                shown = " ".join(str(m) for m in members(info.annotation))
                assert "dict" in shown or "list" in shown or "Any" in shown, f"{model.__name__}.{name}: {shown}"
    assert "SqlTable.filter" in fallback
