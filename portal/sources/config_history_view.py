"""The Config history page: every save of a source (who, when, what), the diff of any revision
against the one before and against the file now, and restoring a revision.

The history and the restore come from ``ConfigStore`` (``history``, ``revision_text``,
``restore_revision``); the restore is checked there against the actor's rights, so a user of
another team sees the refusal with whom to ask. ``?source=NAME`` opens one source directly.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import pandas as pd
import streamlit as st

from ingestion_core.config import access
from ingestion_core.config.access import AccessDeniedError
from ingestion_core.config.store import Change, ConfigNotFoundError, ConfigStore, ConflictError, parse_yaml
from ingestion_core.config.validation import ConfigError
from portal.shared import data
from portal.shared.identity import acting_user
from portal.shared.markdown import code, md_escape

KIND = "sources"
OUTCOME_KEY = "history_restore_outcome"
HISTORY_COLUMNS = ("time", "actor", "action", "revision_before", "revision_after", "restored_from")


def render() -> None:
    st.title("Config history", anchor=False)
    st.caption("Every save of a source: who, when and what changed. Restore an earlier revision as a new save.")
    store = ConfigStore()
    name = _pick_source(store)
    if name is not None:
        render_source(name, store)


def render_source(name: str, store: ConfigStore | None = None) -> None:
    """The saves of one source with diffs and restore (the History tab of the source's home)."""
    _show_outcome()
    store = store or ConfigStore()
    changes = store.history(KIND, name)
    if not changes:
        st.info(f"No saves of **{md_escape(name)}** were recorded yet: history starts with the first save "
                "through the portal or the CLI.", icon=":material/info:")
        return
    st.dataframe(history_frame(changes), key="history-table", hide_index=True, width="stretch")
    change = _pick_change(changes)
    current_text, current_revision = _current(store, name)
    _diffs(store, name, change, current_text, current_revision)
    _restore(store, name, change, current_revision)


def history_frame(changes: Sequence[Change]) -> pd.DataFrame:
    rows = [{c: getattr(change, c) or "" for c in HISTORY_COLUMNS} for change in changes]
    return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))


def unified_diff(old: str | None, new: str | None, old_label: str, new_label: str) -> str:
    """A unified diff ('' when equal); a missing side counts as an empty file."""
    lines = difflib.unified_diff((old or "").splitlines(keepends=True), (new or "").splitlines(keepends=True),
                                 old_label, new_label)
    return "".join(lines)


def _pick_source(store: ConfigStore) -> str | None:
    names = store.names_with_history(KIND)
    if not names:
        st.info("No sources yet: their history appears here after the first save.", icon=":material/info:")
        return None
    wanted = st.query_params.get("source")
    index = names.index(wanted) if wanted in names else 0
    name = st.selectbox("Source", names, index=index, key="history-source")
    if name and st.query_params.get("source") != name:
        st.query_params["source"] = name
    return name


def _label(change: Change) -> str:
    revision = change.revision_after or "(deleted)"
    restored = f", from {change.restored_from}" if change.restored_from else ""
    return f"{revision} · {change.action}{restored} by {change.actor} at {change.time[:19].replace('T', ' ')}"


def _pick_change(changes: Sequence[Change]) -> Change:
    labels = [_label(c) for c in changes]
    chosen = st.selectbox("Revision", range(len(changes)), format_func=labels.__getitem__, key="history-revision")
    return changes[chosen or 0]


def _current(store: ConfigStore, name: str) -> tuple[str | None, str | None]:
    try:
        return store.read(KIND, name)
    except ConfigNotFoundError:
        return None, None


def _diffs(store: ConfigStore, name: str, change: Change, current_text: str | None,
           current_revision: str | None) -> None:
    before = store.revision_text(KIND, name, change.revision_before) if change.revision_before else None
    after = store.revision_text(KIND, name, change.revision_after) if change.revision_after else None
    previous, now = st.tabs(["Against the previous revision", "Against the current file"])
    with previous:
        _show_diff(unified_diff(before, after, f"{change.revision_before or 'none'}/{name}.yaml",
                                f"{change.revision_after or 'deleted'}/{name}.yaml"))
    with now:
        if current_text is None:
            st.caption(f"{name}.yaml does not exist now (deleted); restoring a revision brings it back.")
        _show_diff(unified_diff(after, current_text, f"{change.revision_after or 'deleted'}/{name}.yaml",
                                f"current/{name}.yaml"))
        if current_revision:
            st.caption(f"Current revision: `{current_revision}`")


def _show_diff(diff: str) -> None:
    if diff:
        st.code(diff, language="diff")
    else:
        st.caption("No differences.")


def _restore(store: ConfigStore, name: str, change: Change, current_revision: str | None) -> None:
    revision = change.revision_after
    if not revision or revision == current_revision:
        return
    user = acting_user()
    owner = _owner_in(store, name, revision)
    if not access.can(user.principal, "restore", owner):
        st.caption(f"You may view this source; team {code(owner or 'none')} or an admin may restore it.")
    st.button(f"Restore revision {revision}", key="history-restore", icon=":material/restore:",
              on_click=_do_restore, args=(name, revision, current_revision))


def _owner_in(store: ConfigStore, name: str, revision: str) -> str | None:
    """The owner team written in a kept revision (None if unreadable)."""
    parsed, _ = parse_yaml(store.revision_text(KIND, name, revision) or "")
    owner = parsed.get("owner") if isinstance(parsed, dict) else None
    return owner if isinstance(owner, str) else None


def _do_restore(name: str, revision: str, expected: str | None) -> None:
    try:
        new = ConfigStore().restore_revision(KIND, name, revision, actor=acting_user().principal,
                                             expected_revision=expected)
    except AccessDeniedError as exc:
        _outcome_is("error", f"Not restored. {exc}", ":material/lock:")
    except ConflictError as exc:
        _outcome_is("error", f"Not restored: {exc}", ":material/sync_problem:")
    except (ConfigError, ConfigNotFoundError) as exc:
        _outcome_is("error", f"Not restored: {exc}", ":material/error:")
    else:
        data.refresh_sources()
        _outcome_is("success", f"Revision {revision} of {name} is restored as a new save (revision {new}).",
                    ":material/check_circle:")


def _outcome_is(kind: str, text: str, icon: str) -> None:
    """Kept for the rerun that follows the button's callback, which draws it once."""
    st.session_state[OUTCOME_KEY] = (kind, text, icon)


def _show_outcome() -> None:
    outcome = st.session_state.pop(OUTCOME_KEY, None)
    if outcome is not None:
        kind, text, icon = outcome
        (st.success if kind == "success" else st.error)(md_escape(text), icon=icon)
