"""Text in Streamlit's Markdown, shown as it is: the two helpers every portal module uses (the
identity screens and the rendering components alike), so they sit below both."""

from __future__ import annotations

import re

# Characters Streamlit's Markdown would act on: emphasis, code, links, HTML-like tags, tables,
# and '$', which starts LaTeX (a message about ${secrets.x.y} would otherwise render as math).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~$])")


def md_escape(text: str) -> str:
    """``text`` shown literally inside Markdown (st.markdown, st.error, labels)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


def code(text: object) -> str:
    """``text`` as inline code in Markdown: shown literally, so it takes no ``md_escape`` (inside
    backticks a backslash shows as itself: ``sales\\_crm.yaml``). A backtick in it becomes a quote."""
    return f"`{str(text).replace('`', chr(39))}`"
