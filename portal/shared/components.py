"""Rendering helpers shared by the pages. They take plain values from ``ingestion_core`` and
only display them; nothing here reads or writes configs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from ingestion_core.config.secrets import mask
from ingestion_core.config.store import SourceSummary
from ingestion_core.config.validation import ConfigIssue
from ingestion_core.observe.records import ErrorInfo
from ingestion_core.observe.run_metrics import human_duration
from portal.shared.identity import ActingUser
from portal.shared.markdown import code, md_escape

SOURCE_COLUMNS = ("name", "type", "owner", "tables", "destination", "enabled", "valid")


def issue_markdown(issue: ConfigIssue) -> str:
    """One issue as ``<yaml.path>: <message>``, the path in code style."""
    message = md_escape(issue.message)
    return f"{code(issue.path)}: {message}" if issue.path else message


def on_picked(picked: Callable[[], str | None], action: Callable[[str], None]) -> None:
    """A button's ``on_click`` for an action on the page's picked source (``args=(picked, action)``):
    ``action`` gets the source picked when the click is handled, not the one the button was drawn
    for. A click that comes while the page is still switching to another source (its old buttons
    still showing) then acts on the source the page is switching to, as the rest of that rerun
    does; with ``args=(name,)`` it started a test run of the previous source while the page opened
    the new one."""
    name = picked()
    if name:
        action(name)


# st.status's icons when complete / failed; a cancel is neither
OUTCOME_ICONS = {"complete": ":material/check:", "error": ":material/error:", "cancelled": ":material/cancel:"}
CANCELLED = "Cancelled"  # the error class of a run someone stopped (records.cancelled_error)


def outcome_box(label: str, state: str, *, expanded: bool) -> DeltaGenerator:
    """The box of a finished run (``state``: complete, error or cancelled): st.status's look, drawn
    as an expander. st.status sleeps 0.05 s in the script each time it is drawn (so that a later
    ``update`` reaches the browser): on the results of a test run that sleep held back the sample
    rows, and a finished box is never updated."""
    return st.expander(label, expanded=expanded, icon=OUTCOME_ICONS[state])


def run_state(status: str, ok: bool) -> str:
    """The outcome box's state for a run that ended with ``status`` (``ok``: counts as done)."""
    return "cancelled" if status == "cancelled" else "complete" if ok else "error"


def run_error(where: str, error: ErrorInfo, *, icon: str = ":material/error:", show_class: bool = False,
              column: DeltaGenerator | None = None) -> None:
    """A run's or a table's error with what to do (secrets masked). A cancel is not an error: it
    says who stopped it, as information."""
    column = column or st
    if error.error_class == CANCELLED:
        column.info(f"**{md_escape(where)}**: {md_escape(mask(error.message))}. {md_escape(error.hint)}",
                    icon=OUTCOME_ICONS["cancelled"])
        return
    kind = f"{error.error_class}: " if show_class else ""
    text = f"**{md_escape(where)}**: {kind}{md_escape(mask(error.message))}"
    if error.hint:
        text += f"\n\n**What to do:** {md_escape(error.hint)}"
    if error.transient:
        text += "\n\nThis looks transient: running it again may be enough."
    column.error(text, icon=icon)


def tables_progress(done: int, total: int) -> str:
    """``3 of 5 tables done``; before the run has listed its tables (total 0), ``starting``."""
    return f"{done} of {total} tables done" if total else "starting: reading the config and connecting"


# --- time, for people ----------------------------------------------------------------------

def viewer_timezone() -> str:
    """The viewer's time zone as their browser reports it (``st.context.timezone``); UTC when it
    does not say (AppTest, old browsers)."""
    try:
        return st.context.timezone or "UTC"
    except Exception:  # outside a script run
        return "UTC"


def time_column(label: str, **options: object) -> object:
    """A data-grid column of times in the viewer's time zone, to the minute (never microseconds)."""
    options.setdefault("format", "YYYY-MM-DD HH:mm")
    options.setdefault("help", f"In your time zone ({viewer_timezone()})")
    return st.column_config.DatetimeColumn(label, timezone=viewer_timezone(), **options)


def relative_time(moment: datetime | None, now: datetime | None = None) -> tuple[str, str]:
    """(``"5 min ago"`` / ``"in 2 h"``, the moment in the viewer's time zone and in UTC, for a
    tooltip); ``("never", "")`` for None."""
    if moment is None or pd.isna(moment):
        return "never", ""
    moment = pd.Timestamp(moment).tz_convert("UTC") if pd.Timestamp(moment).tzinfo else \
        pd.Timestamp(moment).tz_localize("UTC")
    now = pd.Timestamp(now or datetime.now(UTC)).tz_convert("UTC")
    seconds = (now - moment).total_seconds()
    span = human_duration(abs(seconds)).split(" ")[:2]  # "3 h", "5 min", "12 s": the leading unit
    text = "just now" if abs(seconds) < 60 else (f"{' '.join(span)} ago" if seconds > 0 else f"in {' '.join(span)}")
    local = moment.tz_convert(ZoneInfo(viewer_timezone()))
    hover = f"{local:%Y-%m-%d %H:%M} {local.tzname()}" + (
        "" if local.utcoffset().total_seconds() == 0 else f" · {moment:%Y-%m-%d %H:%M} UTC")
    return text, hover


# --- navigation ----------------------------------------------------------------------------

def ensure_app_navigation() -> None:
    """Run a page through app.py's navigation, also on the first visit after a server start.

    Because the repo has a ``pages/`` folder, Streamlit serves the first session of a fresh
    server in its legacy mode when that session opens a deep link (``/sources``): it runs the
    page file alone, with a sidebar listing file names and without app.py's sidebar. Called
    first in every page; in that case it switches the legacy mode off and reruns through app.py.
    (AppTest starts every run in that mode; there the rerun would swallow each click.)
    """
    from streamlit import config
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory and not config.get_option("global.appTest"):
        PagesManager.uses_pages_directory = False
        st.rerun()


# --- sidebar -------------------------------------------------------------------------------

# Streamlit 1.67 has no option for it: a field's "?" help icon is a <button> in its label, a Tab
# stop between one field and the next. This takes the label icons (never buttons with help, whose
# tooltip wraps the button itself) out of the Tab order, now and as reruns redraw them; they still
# open on hover and click. Installed once per browser tab.
HELP_ICONS_OFF_TAB = """<script>
(() => {
  if (window.__helpIconsOffTab) return;
  window.__helpIconsOffTab = true;
  const selector = '[data-testid="stWidgetLabel"] [data-testid="stTooltipIcon"] button:not([tabindex="-1"])';
  const skip = () => document.querySelectorAll(selector).forEach(icon => icon.setAttribute("tabindex", "-1"));
  skip();
  new MutationObserver(skip).observe(document.body, {childList: true, subtree: true});
})();
</script>"""


def help_icons_off_tab() -> None:
    """Tab goes from field to field, not to each field's help icon (see ``HELP_ICONS_OFF_TAB``)."""
    st.html(HELP_ICONS_OFF_TAB, unsafe_allow_javascript=True)


def home_relative(path: Path) -> str:
    """``path`` with the user's home folder written ``~`` (shorter, and the same on every machine of a team)."""
    try:
        return f"~/{path.absolute().relative_to(Path.home())}"
    except (ValueError, RuntimeError):  # not under the home folder, or no home
        return str(path)


def render_sidebar(config_dir: Path, user: ActingUser, pages: Sequence[object] = ()) -> None:
    """The page links, where the configs come from, who is acting, their teams and rights, and
    sign-out. The links are drawn here rather than by Streamlit's own sidebar navigation, which a
    first visit (served in the pages-folder mode) would fill with raw file names."""
    with st.sidebar:
        with st.container(key="page-links", gap=None):
            for page in pages:
                st.page_link(page)
        if pages:
            st.divider()
        st.caption(f":material/folder: Configs: `{home_relative(config_dir)}`")
        who = (f"**{md_escape(user.display_name)}** ({md_escape(user.name)})" if user.display_name
               else f"**{md_escape(user.name)}**")
        st.caption(f":material/person: Acting as {who}")
        principal = user.principal
        if principal.local:
            st.caption(":material/shield_person: every user is an admin: no `teams.yaml` in the config dir")
        else:
            teams = ", ".join(f"{code(t)}" for t in sorted(principal.teams)) or "none"
            role = " · **admin**" if principal.admin else ""
            st.caption(f":material/group: Teams: {teams}{role}")
        if user.problem:
            st.error(md_escape(user.problem), icon=":material/error:")
        if not user.auth_configured and not user.signed_in:
            st.caption(":material/lock_open: local mode: no sign-in configured")
        elif user.signed_in and user.auth_configured:
            st.button("Sign out", key="sign-out", icon=":material/logout:", on_click=st.logout)


# --- sources -------------------------------------------------------------------------------

def source_metrics(summaries: Sequence[SourceSummary]) -> None:
    valid = sum(s.valid for s in summaries)
    sources, good, bad = st.columns(3)
    sources.metric("Sources", len(summaries), border=True)
    good.metric("Valid", valid, border=True)
    bad.metric("Invalid", len(summaries) - valid, border=True)


def sources_frame(summaries: Sequence[SourceSummary]) -> pd.DataFrame:
    rows = [{"name": s.name, "type": s.type, "owner": s.owner, "tables": s.tables,
             "destination": s.destination, "enabled": s.enabled, "valid": s.valid} for s in summaries]
    return pd.DataFrame(rows, columns=list(SOURCE_COLUMNS))


def sources_table(summaries: Sequence[SourceSummary], *, key: str) -> str | None:
    """The sources as a table; the name of the one whose row was clicked (None)."""
    event = st.dataframe(
        sources_frame(summaries),
        key=key,
        hide_index=True,
        width="stretch",
        column_config={
            "name": st.column_config.TextColumn("name", help="File name under sources/ and source name"),
            "tables": st.column_config.NumberColumn("tables", help="Entries under tables:", format="%d"),
            "enabled": st.column_config.CheckboxColumn("enabled", help="Disabled sources are not scheduled"),
            "valid": st.column_config.CheckboxColumn("valid", help="Passes validation (problems listed below)"),
        },
        on_select="rerun",
        selection_mode="single-row",
    )
    rows = event.selection.rows if event is not None else []
    return summaries[rows[0]].name if rows else None


def source_problems(summaries: Sequence[SourceSummary], *, key_prefix: str) -> None:
    """An expander per source with problems: errors in red, migration warnings in yellow."""
    flagged = [s for s in summaries if s.issues]
    if not flagged:
        return
    st.subheader("Problems", anchor=False)
    invalid_count = sum(not s.valid for s in flagged)
    for summary in flagged:
        errors = [i for i in summary.issues if i.severity == "error"]
        warnings = [i for i in summary.issues if i.severity != "error"]
        label = f"**{md_escape(summary.name)}**: " + ", ".join(
            _count(n, word) for n, word in ((len(errors), "problem"), (len(warnings), "warning")) if n
        )
        with st.expander(
            label,
            expanded=not summary.valid and invalid_count <= 3,
            icon=":material/error:" if errors else ":material/warning:",
            key=f"{key_prefix}_issues_{summary.name}",
        ):
            if errors:
                st.error(_bullets(errors), icon=":material/error:")
            if warnings:
                st.warning(_bullets(warnings), icon=":material/warning:")


def _bullets(issues: Sequence[ConfigIssue]) -> str:
    return "\n".join(f"- {issue_markdown(i)}" for i in issues)


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def empty_sources(config_dir: Path, templates: Sequence[str]) -> None:
    """What to do when no source is configured yet."""
    lines = [
        "**No sources yet.** Add one in any of three ways:",
        "",
        "1. On the **Sources** page, click **New source** and follow the steps.",
        f"2. Copy a template from `{config_dir / 'templates'}/` to `{config_dir / 'sources'}/<name>.yaml`"
        " and fill it in.",
        "3. Import the Excel job sheet: `ingest import-excel FILE.xlsx --write`.",
        "",
    ]
    if templates:
        lines += ["Templates: " + ", ".join(f"`{t}`" for t in templates), ""]
    lines.append("Then check it with `ingest validate` and refresh this page.")
    st.info("\n".join(lines), icon=":material/info:")
