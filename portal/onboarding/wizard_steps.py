"""The steps of the source form and which issues belong to each: below both the form
(portal.onboarding.wizard) and its review step (portal.onboarding.wizard_review), which both need them."""

from __future__ import annotations

from ingestion_core.config.validation import ConfigIssue
from ingestion_core.onboarding import Draft, is_under

STEPS = ("Type", "Connection", "Tables", "Quality checks", "Review & schedule")
ABOUT_KEYS = ("name", "owner", "description")


def step_issues(step: int, issues: list[ConfigIssue], draft: Draft) -> list[ConfigIssue]:
    """The issues a step shows and that keep it from moving on."""
    if step == 1:
        return [i for i in issues if i.path == "source.type"]
    if step == 2:
        return [i for i in issues if any(is_under(i.path, p) for p in (*ABOUT_KEYS, "source"))]
    if step == 3:
        return [i for i in issues if is_under(i.path, "tables") and ".checks" not in i.path]
    if step == 4:
        return [i for i in issues if is_under(i.path, "tables") and ".checks" in i.path]
    return []
