"""1,000 hypothesis-generated configs and 1,000 generated form inputs: 0 unhandled exceptions.

Config dicts (valid configs mutated: keys dropped, added, misspelt, values replaced by random types, or
random documents) go through ``validate_source_data``; form inputs (random widget values for every field
of every source type, typed secrets included) go through the onboarding functions the portal pages call,
up to saving. Validation returns issues and never raises anything else; a save raises only ConfigError /
ConflictError. The strategies are those of tests/unit/test_model_fuzz.py and test_onboarding_fuzz.py;
examples are derandomized (the same 1,000 every run). Figures are printed with ``-s``."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestion_core import onboarding
from ingestion_core.config.store import ConfigStore, ConflictError, validate_source_data
from ingestion_core.config.validation import ConfigError
from ingestion_core.onboarding import Draft
from tests.unit.test_model_fuzz import KEYS, VALUES, _assert_readable, _locations, _mutate
from tests.unit.test_models import DESTINATIONS, VALID_CONFIGS
from tests.unit.test_onboarding_fuzz import check_issues, form_inputs

EXAMPLES = 1000
THOUSAND = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))
FIGURES: Counter[str] = Counter()


@st.composite
def config_dicts(draw: st.DrawFn) -> Any:
    """A valid config with 1 to 4 random mutations, or (one in five) a random document."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.dictionaries(KEYS, VALUES, max_size=6) | VALUES)
    doc = copy.deepcopy(VALID_CONFIGS[draw(st.sampled_from(sorted(VALID_CONFIGS)))])
    data = draw(st.data())
    for _ in range(draw(st.integers(1, 4))):
        if _locations(doc):
            _mutate(data, doc)
    return doc


@THOUSAND
@given(doc=config_dicts())
def test_1000_config_dicts_validate_without_raising(doc: Any) -> None:
    before = copy.deepcopy(doc)
    config, issues = validate_source_data(doc, DESTINATIONS)  # any exception fails the test
    assert doc == before
    _assert_readable(issues)
    assert (config is None) == any(i.severity == "error" for i in issues)
    FIGURES["config accepted" if config is not None else "config rejected"] += 1


@THOUSAND
@given(draft=form_inputs())
def test_1000_form_inputs_go_through_onboarding_without_raising(ingest_env: Path, draft: Draft) -> None:
    store = ConfigStore()
    model, issues = onboarding.validate_draft(draft, store)
    check_issues(issues, draft.secrets)
    check_issues(onboarding.validate_yaml(onboarding.yaml_of_draft(draft), draft, store)[1], draft.secrets)
    check_issues(onboarding.connection_model(draft)[1], draft.secrets)
    try:
        saved = onboarding.save_draft(draft, actor="fuzz", store=store)
    except (ConfigError, ConflictError):
        FIGURES["form refused"] += 1
        assert model is None or store.path("sources", draft.data["name"]).exists()
        return
    FIGURES["form saved"] += 1
    assert model is not None
    saved.path.unlink()


def test_fuzz_figures() -> None:
    """Prints the counts of the two runs above (when they ran in this session)."""
    print(f"\nfuzz: {dict(sorted(FIGURES.items()))}, 0 unhandled exceptions")
    if FIGURES:
        assert sum(FIGURES.values()) >= EXAMPLES
