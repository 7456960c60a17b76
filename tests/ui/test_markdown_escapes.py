"""Text shown literally stays literal: no Markdown escape shows through (``sales\\_crm.yaml`` inside a
code span, ``tables\\[0\\].mode``, raw backticks, ``Name \\*`` labels)."""

from __future__ import annotations

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

from ingestion_core.config.validation import ConfigIssue
from portal.onboarding.widgets import label_of
from portal.shared.components import issue_markdown
from portal.shared.markdown import code, md_escape
from tests.ui.test_sources import SHOP, sources_page
from tests.ui.test_wizard import REPO, click, ok, write_source

# a code span with a backslash before a Markdown character in it shows that backslash
ESCAPE_IN_CODE = re.compile(r"`[^`]*\\[\\`*_{}\[\]<>()#+!|~$][^`]*`")


def leaks(markdown: str) -> list[str]:
    return ESCAPE_IN_CODE.findall(markdown)


def test_no_portal_module_escapes_inside_a_code_span() -> None:
    offenders = [f"{path.name}:{n}" for path in sorted((REPO / "portal").rglob("*.py"))
                 for n, line in enumerate(path.read_text().splitlines(), 1) if "`{md_escape(" in line]
    assert offenders == []


def test_code_spans_and_issue_paths_show_names_as_they_are() -> None:
    assert code("sales_crm.yaml") == "`sales_crm.yaml`"
    assert code("a`b") == "`a'b`"
    assert issue_markdown(ConfigIssue(path="tables[0].mode", message="bad mode")) == "`tables[0].mode`: bad mode"
    assert md_escape("a_b") == "a\\_b"  # outside code spans the escape is right


def test_a_required_label_has_no_backslash_for_the_aria_label() -> None:
    from portal.onboarding.fields import FieldSpec
    spec = FieldSpec(key="name", label="Name", help="", kind="text", required=True, default=None, optional=False)
    assert label_of(spec) == "Name *"


def test_delete_confirmation_shows_the_bin_folder_as_it_is(ingest_env: Path) -> None:
    write_source(ingest_env, "sales_crm", SHOP.replace("name: shop", "name: sales_crm"))
    at = sources_page()
    ok(at.selectbox(key="sources-pick").select("sales_crm").run())
    click(at, "sources-delete")
    warning = at.warning[0].value
    assert leaks(warning) == [] and "bin" in warning and "restore" in warning


def test_databricks_jobs_page_renders_its_how_to_without_escaped_backticks(ingest_env: Path) -> None:
    at = ok(AppTest.from_file(str(REPO / "pages" / "jobs.py"), default_timeout=30).run())
    message = at.info[0].value
    assert "\\`" not in message and "`type: databricks`" in message
