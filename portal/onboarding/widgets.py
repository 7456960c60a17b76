"""The widget registry of the forms: one Streamlit widget per field kind (see
:mod:`portal.onboarding.fields`), and pickers keyed by field name that offer real values (the table's
columns, the destinations) when they are known.

Every widget is keyed by its field's YAML path (``tables[0].cursor`` -> ``f-tables-0-cursor``)
and writes into the draft in its ``on_change`` callback, which Streamlit runs before the page
script: each rerun validates the new values first, so every error is drawn under its field.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import streamlit as st
from pydantic import BaseModel

from ingestion_core.config.secrets import find_references, is_reference
from ingestion_core.config.validation import ConfigIssue
from ingestion_core.onboarding import (
    Draft,
    describe_reference,
    get_path,
    is_under,
    reference_for,
    remove_path,
    secret_status,
    set_path,
)
from portal.onboarding.fields import (
    MISSING,
    FieldSpec,
    field_specs,
    is_empty,
    list_text,
    member_for,
    parse_list,
    parse_scalar,
    parse_yaml_value,
    tag_help,
    tag_of,
    yaml_text,
)
from portal.shared.markdown import code, md_escape

WIDGET_PREFIX = "f-"
# Text fields commit a short pause after typing, not only on blur or Enter: Streamlit does not
# commit a password field left with Tab (focus moves to its own "Show password" button, so the
# field never blurs out of the widget), and the typed password was lost on Next.
LIVE = "300ms"
# A secret field commits on every change: left with Tab it never blurs (above), and a click on Next
# within the pause above went out before the commit and lost the password (every time, on a quiet
# machine: tests/browser/test_wizard_values.py). Each keystroke's commit is sent before the click.
SECRET_LIVE = "0ms"
_MISSING_WORDS = re.compile(r"is required|\bmissing\b|needs at least 1", re.I)


@dataclass
class FormState:
    """What the form keeps between reruns besides the draft itself."""

    draft: Draft
    raw: dict[str, str] = field(default_factory=dict)  # text of YAML fields that does not parse
    raw_errors: dict[str, str] = field(default_factory=dict)
    replacing: set[str] = field(default_factory=set)  # secret fields whose Replace was clicked


@dataclass
class FormContext:
    state_key: str  # where the FormState lives in st.session_state
    state: FormState
    issues: list[ConfigIssue]
    show_all: bool = False  # the step was submitted: show 'required' errors of empty fields too
    columns: list[Any] = field(default_factory=list)  # ColumnInfo of the table being edited
    cursor_candidates: list[str] = field(default_factory=list)
    choices: dict[str, list[str]] = field(default_factory=dict)  # field key -> known values
    disabled: set[str] = field(default_factory=set)
    claimed: set[int] = field(default_factory=set)  # ids of issues already drawn
    in_expander: bool = False

    @property
    def data(self) -> dict[str, Any]:
        return self.state.draft.data


def widget_key(path: str, suffix: str = "") -> str:
    slug = re.sub(r"[^A-Za-z0-9_]+", "-", path).strip("-")
    return f"{WIDGET_PREFIX}{slug}{'-' + suffix if suffix else ''}"


RESET_PREFIXES = (WIDGET_PREFIX, "wiz-pick-")


def reset_widgets(prefixes: tuple[str, ...] = RESET_PREFIXES) -> None:
    """Forget every field widget, so that they are drawn again from the draft (after the draft
    changed by other means than its widgets: a template, YAML mode, a table removed)."""
    for key in [k for k in st.session_state if isinstance(k, str) and k.startswith(prefixes)]:
        del st.session_state[key]


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def label_of(spec: FieldSpec) -> str:
    # a lone '*' after a space is no emphasis, so it needs no backslash (which the aria-label would keep)
    return md_escape(spec.label) + (" *" if spec.required else "")


# --- writing values back -------------------------------------------------------------------

def store_value(data: dict[str, Any], path: str, spec: FieldSpec, value: Any) -> None:
    """Empty removes the key; a default that was not written stays unwritten."""
    present = get_path(data, path, MISSING) is not MISSING
    if is_empty(value) or (not present and spec.default is not MISSING and value == spec.default):
        remove_path(data, path)
    else:
        set_path(data, path, value)


def _state(state_key: str) -> FormState | None:
    return st.session_state.get(state_key)


def _changed(state_key: str, path: str, key: str, spec: FieldSpec, convert: Callable[[FieldSpec, Any], Any]) -> None:
    state = _state(state_key)
    if state is None:
        return
    # the field's table or parent may have gone away in the same rerun
    with contextlib.suppress(IndexError, KeyError, TypeError, AttributeError):
        store_value(state.draft.data, path, spec, convert(spec, st.session_state.get(key)))


def _index_of(options: list[Any], value: Any) -> int | None:
    return options.index(value) if value in options else None


def _as_text(spec: FieldSpec, value: Any) -> Any:
    return (value or "").strip() or None


def _as_is(spec: FieldSpec, value: Any) -> Any:
    return value


def _as_scalar(spec: FieldSpec, value: Any) -> Any:
    text = (value or "").strip()
    return parse_scalar(text, spec.item_types) if text else None


def _as_list(spec: FieldSpec, value: Any) -> Any:
    if isinstance(value, list):
        return value
    return parse_list(value or "", spec.item_types or (str,))


# --- the registry --------------------------------------------------------------------------

Widget = Callable[[FieldSpec, str, FormContext], None]
WIDGETS: dict[str, Widget] = {}
Picker = Callable[[FieldSpec, str, FormContext], bool]
PICKERS: dict[str, Picker] = {}


def widget(*kinds: str) -> Callable[[Widget], Widget]:
    def register(func: Widget) -> Widget:
        for kind in kinds:
            WIDGETS[kind] = func
        return func
    return register


def picker(*keys: str) -> Callable[[Picker], Picker]:
    """A widget for fields of a given name, used when it can offer real values (returns False
    to fall back to the widget of the field's kind)."""
    def register(func: Picker) -> Picker:
        for key in keys:
            PICKERS[key] = func
        return func
    return register


def seed(key: str, value: Any) -> None:
    """Give a widget its first value through the session state, not through ``value=`` alone: a
    value set this way reaches the browser also when the widget was drawn before (a draft
    changed by a template, an autofill or YAML mode). The field widgets pass the same value as
    their element default too (see :func:`_common`)."""
    if key not in st.session_state:
        st.session_state[key] = value


def _common(spec: FieldSpec, path: str, ctx: FormContext, convert: Callable[[FieldSpec, Any], Any],
            initial: Any, default: tuple[str, Any] | None = None) -> dict[str, Any]:
    """The arguments every field widget shares. ``default``: the widget's own default argument
    (``("value", initial)``, ``("index", 2)``) when it is not ``value=initial``."""
    key = widget_key(path)
    seed(key, initial)
    name, value = default or ("value", initial)
    # The element's default is the draft's value too, not the widget's own (a number's minimum,
    # ''): a browser that draws the widget without the seeded value (the one-shot set_value of the
    # run that seeded it) shows its element default and commits it, and the on_change wrote that
    # into the draft (a newcomer's connect_timeout_seconds became 1, the minimum, under load).
    return {"key": key, name: value, "help": spec.help or None, "disabled": path in ctx.disabled,
            "on_change": _changed, "args": (ctx.state_key, path, key, spec, convert)}


@widget("text")
def text_widget(spec: FieldSpec, path: str, ctx: FormContext) -> None:
    current = get_path(ctx.data, path)
    default = spec.default if isinstance(spec.default, str) else ""
    st.text_input(label_of(spec), live=LIVE,
                  **_common(spec, path, ctx, _as_text, default if current is None else str(current)))


@widget("scalar")
def scalar_widget(spec: FieldSpec, path: str, ctx: FormContext) -> None:
    current = get_path(ctx.data, path)
    st.text_input(label_of(spec), live=LIVE,
                  **_common(spec, path, ctx, _as_scalar, "" if current is None else str(current)))


@widget("int", "float")
def number_widget(spec: FieldSpec, path: str, ctx: FormContext) -> None:
    whole = spec.kind == "int"
    current = get_path(ctx.data, path)
    if current is None and spec.default not in (MISSING, None):
        current = spec.default
    if not isinstance(current, (int, float)) or isinstance(current, bool):
        current = None
    cast = int if whole else float
    # No min_value / max_value: a browser silently refuses to commit a number out of the widget's
    # bounds (Retry attempts -3 kept the old value, said nothing, and Save saved the old one). Any
    # number reaches the draft, and the model's range check says under the field what is allowed.
    args = _common(spec, path, ctx, _as_is, None if current is None else cast(current))
    args["help"] = " ".join(part for part in (spec.help, _range_text(spec)) if part) or None
    st.number_input(label_of(spec), step=1 if whole else None, **args)


def _range_text(spec: FieldSpec) -> str:
    """'Allowed: 0 to 20.' from the field's bounds (exclusive bounds said as 'more than')."""
    low = "" if spec.minimum is None else f"{spec.minimum:g}"
    high = "" if spec.maximum is None else f"{spec.maximum:g}"
    if low and high:
        return f"Allowed: {low} to {high}."
    return f"Allowed: from {low}." if low else (f"Allowed: up to {high}." if high else "")


@widget("bool")
def bool_widget(spec: FieldSpec, path: str, ctx: FormContext) -> None:
    current = get_path(ctx.data, path)
    value = current if isinstance(current, bool) else bool(spec.default is True)
    st.checkbox(label_of(spec), **_common(spec, path, ctx, _as_is, value))


@widget("choice")
def choice_widget(spec: FieldSpec, path: str, ctx: FormContext) -> None:
    current = get_path(ctx.data, path)
    options: list[Any] = ([None] if spec.optional else []) + list(spec.choices)
    if current in options:
        index: int | None = options.index(current)
    elif spec.default is not MISSING and spec.default in options:
        index = options.index(spec.default)
    else:
        index = None

    def show(option: Any) -> str:
        return "(default)" if option is None else str(option)

    args = _common(spec, path, ctx, _as_is, None if index is None else options[index], ("index", index))
    if len(options) <= 6:
        st.radio(label_of(spec), options, format_func=show, horizontal=True, **args)
    else:
        st.selectbox(label_of(spec), options, format_func=show, **args)


@widget("text_list")
def list_widget(spec: FieldSpec, path: str, ctx: FormContext) -> None:
    current = get_path(ctx.data, path)
    st.text_input(label_of(spec), placeholder="a, b, c", live=LIVE,
                  **_common(spec, path, ctx, _as_list, list_text(current)))


@widget("yaml")
def yaml_widget(spec: FieldSpec, path: str, ctx: FormContext) -> None:
    key = widget_key(path)
    text = ctx.state.raw.get(path)
    if text is None:
        text = yaml_text(get_path(ctx.data, path))
    seed(key, text)
    st.text_area(label_of(spec), height=80, key=key, value=text, disabled=path in ctx.disabled,
                 help=(spec.help + " Written as YAML, e.g. {key: value} or [a, b].").strip(),
                 on_change=_yaml_changed, args=(ctx.state_key, path, key, spec))
    problem = ctx.state.raw_errors.get(path)
    if problem:
        st.error(md_escape(problem), icon=":material/error:")


def _yaml_changed(state_key: str, path: str, key: str, spec: FieldSpec) -> None:
    state = _state(state_key)
    if state is None:
        return
    text = st.session_state.get(key) or ""
    value, problem = parse_yaml_value(text)
    if problem:
        state.raw[path], state.raw_errors[path] = text, problem
        return
    state.raw.pop(path, None)
    state.raw_errors.pop(path, None)
    with contextlib.suppress(IndexError, KeyError, TypeError, AttributeError):
        store_value(state.draft.data, path, spec, value)


@widget("secret")
def secret_widget(spec: FieldSpec, path: str, ctx: FormContext) -> None:
    draft = ctx.state.draft
    current = get_path(ctx.data, path)
    if isinstance(current, str) and current and not is_reference(current) and find_references(current):
        text_widget(spec, path, ctx)  # a URL with an inline reference: not a secret itself
        return
    typed = draft.secrets.get(path)
    if isinstance(current, str) and is_reference(current) and not typed and path not in ctx.state.replacing:
        _secret_is_set(spec, path, ctx, current)
        return
    key = widget_key(path)
    seed(key, typed or "")
    # value=: the element default is the typed secret too (see _common), so a browser drawing the
    # field without its seeded value does not commit '' and drop what was typed
    st.text_input(label_of(spec), type="password", key=key, value=typed or "", disabled=path in ctx.disabled,
                  live=SECRET_LIVE,
                  help=f"{spec.help} Typed once: stored in the secrets file when you save; the YAML only "
                       "gets a reference to it.",
                  on_change=_secret_typed, args=(ctx.state_key, path, key))
    if typed:
        reference = reference_for(str(ctx.data.get("name") or ""), path)
        st.caption(f":material/lock: Saved to the {md_escape(describe_reference(reference))} when you save; "
                   f"the file gets `{reference}`.")
    if path in ctx.state.replacing:
        st.button("Keep the current secret", key=widget_key(path, "keep"), on_click=_stop_replacing,
                  args=(ctx.state_key, path))


def _secret_is_set(spec: FieldSpec, path: str, ctx: FormContext, reference: str) -> None:
    status = secret_status(reference)
    text, action = st.columns([4, 1], vertical_alignment="bottom")
    with text:
        st.markdown(f"**{label_of(spec)}**")
        if status.is_set:
            st.caption(f":material/lock: set ({md_escape(describe_reference(reference))}). The value is never shown.")
        else:
            st.warning(f"Not set: {md_escape(reference)} is referenced, but no value was found "
                       f"({md_escape(status.where)}). Replace it to type the value.", icon=":material/warning:")
    action.button("Replace", key=widget_key(path, "replace"), disabled=path in ctx.disabled,
                  on_click=_start_replacing, args=(ctx.state_key, path))


def _secret_typed(state_key: str, path: str, key: str) -> None:
    state = _state(state_key)
    if state is None:
        return
    value = st.session_state.get(key) or ""
    if value:
        state.draft.secrets[path] = value
    else:
        state.draft.secrets.pop(path, None)


def _start_replacing(state_key: str, path: str) -> None:
    state = _state(state_key)
    if state is not None:
        state.replacing.add(path)


def _stop_replacing(state_key: str, path: str) -> None:
    state = _state(state_key)
    if state is not None:
        state.replacing.discard(path)
        state.draft.secrets.pop(path, None)


@widget("model")
def model_widget(spec: FieldSpec, path: str, ctx: FormContext) -> None:
    current = get_path(ctx.data, path)
    if current is True:  # the shorthand of "on with the defaults" (reconcile: true)
        set_path(ctx.data, path, current := {})
    if spec.optional:
        seed(widget_key(path, "on"), isinstance(current, dict))
        on = st.toggle(label_of(spec), key=widget_key(path, "on"), help=spec.help,
                       disabled=path in ctx.disabled, on_change=_model_toggled, args=(ctx.state_key, path))
        if not on:
            return
    with st.container(border=True):
        if not spec.optional:
            st.markdown(f"**{label_of(spec)}**", help=spec.help or None)
        render_fields(spec.models[0], path, ctx)


def _model_toggled(state_key: str, path: str) -> None:
    """On writes an empty mapping into the draft (the toggle is drawn from the draft again after
    a step switch: an 'on' kept only in the widget was lost); off removes it."""
    state = _state(state_key)
    if state is None:
        return
    if st.session_state.get(widget_key(path, "on")):
        if not isinstance(get_path(state.draft.data, path), dict):
            with contextlib.suppress(IndexError, KeyError, TypeError, AttributeError):
                set_path(state.draft.data, path, {})
        return
    remove_path(state.draft.data, path)
    _forget_secrets_under(state, path)


@widget("union")
def union_widget(spec: FieldSpec, path: str, ctx: FormContext) -> None:
    current = get_path(ctx.data, path)
    tag = current.get("type") if isinstance(current, dict) else None
    options: list[Any] = ([None] if spec.optional else []) + [tag_of(m) for m in spec.models]
    describe = {tag_of(m): tag_help(m) for m in spec.models}
    key = widget_key(path, "type")
    seed(key, tag if tag in options else None)
    st.selectbox(label_of(spec), options, key=key,
                 format_func=lambda t: "(none)" if t is None else f"{t}: {describe.get(t, '')}",
                 help=spec.help or None, disabled=path in ctx.disabled, on_change=_union_changed,
                 args=(ctx.state_key, path, key))
    member = member_for(spec, tag)
    if member is not None:
        with st.container(border=True):
            render_fields(member, path, ctx, skip=("type",))


def _union_changed(state_key: str, path: str, key: str) -> None:
    state = _state(state_key)
    if state is None:
        return
    tag = st.session_state.get(key)
    _forget_secrets_under(state, path)
    for stale in [k for k in st.session_state if isinstance(k, str) and k.startswith(widget_key(path) + "-")
                  and k != key]:
        del st.session_state[stale]
    if tag is None:
        remove_path(state.draft.data, path)
    else:
        set_path(state.draft.data, path, {"type": tag})


def _forget_secrets_under(state: FormState, path: str) -> None:
    for typed in [p for p in state.draft.secrets if is_under(p, path)]:
        del state.draft.secrets[typed]


# --- pickers offering real values ----------------------------------------------------------

def _column_label(ctx: FormContext) -> Callable[[Any], str]:
    types = {c.name: c.type for c in ctx.columns}
    return lambda c: "(none)" if c is None else (f"{c} · {types[c]}" if c in types else str(c))


@picker("cursor")
def cursor_picker(spec: FieldSpec, path: str, ctx: FormContext) -> bool:
    if not ctx.columns:
        return False
    current = get_path(ctx.data, path)
    names = [c.name for c in ctx.columns]
    options: list[Any] = [None, *ctx.cursor_candidates, *(n for n in names if n not in ctx.cursor_candidates)]
    if current is not None and current not in options:
        options.append(current)
    initial = current if current in options else None
    st.selectbox(label_of(spec), options, format_func=_column_label(ctx),
                 **_common(spec, path, ctx, _as_is, initial, ("index", _index_of(options, initial))))
    return True


@picker("primary_key", "include_columns", "exclude_columns", "columns")
def columns_picker(spec: FieldSpec, path: str, ctx: FormContext) -> bool:
    if not ctx.columns:
        return False
    current = get_path(ctx.data, path)
    chosen = current if isinstance(current, list) else ([current] if isinstance(current, str) else [])
    options = [c.name for c in ctx.columns] + [c for c in chosen if c not in {c.name for c in ctx.columns}]
    initial = [c for c in chosen if c in options]
    st.multiselect(label_of(spec), options, format_func=_column_label(ctx), accept_new_options=True,
                   **_common(spec, path, ctx, _as_list, initial, ("default", initial)))
    return True


@picker("column", "destination", "schema")
def choice_picker(spec: FieldSpec, path: str, ctx: FormContext) -> bool:
    known = [c.name for c in ctx.columns] if spec.key == "column" else ctx.choices.get(spec.key, [])
    if not known:
        return False
    current = get_path(ctx.data, path)
    if current is None and isinstance(spec.default, str):
        current = spec.default
    options: list[Any] = ([None] if spec.optional else []) + list(known)
    if current is not None and current not in options:
        options.append(current)
    show = _column_label(ctx) if spec.key == "column" else (lambda v: "(default)" if v is None else str(v))
    initial = current if current in options else None
    st.selectbox(label_of(spec), options, format_func=show, accept_new_options=True,
                 **_common(spec, path, ctx, _as_is, initial, ("index", _index_of(options, initial))))
    return True


# --- rendering a model ---------------------------------------------------------------------

def render_fields(model: type[BaseModel], path: str, ctx: FormContext, *, only: Iterable[str] | None = None,
                  skip: Iterable[str] = (), more_label: str = "More settings", inline: bool = False) -> None:
    """Every field of ``model`` at ``path``; fields with defaults go under "More settings"
    (``inline``: all in one column)."""
    wanted, skipped = (set(only) if only is not None else None), set(skip)
    specs = [s for s in field_specs(model) if s.key not in skipped and (wanted is None or s.key in wanted)]
    for spec in (s for s in specs if not s.advanced):
        render_field(spec, join(path, spec.key), ctx)
    advanced = [s for s in specs if s.advanced]
    if not advanced:
        return
    if ctx.in_expander or inline:  # Streamlit cannot nest expanders
        for spec in advanced:
            render_field(spec, join(path, spec.key), ctx)
        return
    flagged = any(is_under(i.path, join(path, s.key)) for s in advanced for i in ctx.issues if _visible(i, ctx))
    with st.expander(more_label, expanded=flagged, icon=":material/tune:"):
        ctx.in_expander = True
        try:
            for spec in advanced:
                render_field(spec, join(path, spec.key), ctx)
        finally:
            ctx.in_expander = False


def render_field(spec: FieldSpec, path: str, ctx: FormContext) -> None:
    special = PICKERS.get(spec.key)
    if not (special and special(spec, path, ctx)):
        WIDGETS.get(spec.kind, yaml_widget)(spec, path, ctx)
    show_issues(ctx, path)


def _visible(issue: ConfigIssue, ctx: FormContext) -> bool:
    """'Required' errors of fields left empty wait until the step is submitted."""
    if ctx.show_all or not _MISSING_WORDS.search(issue.message):
        return True
    return not is_empty(get_path(ctx.data, issue.path)) or issue.path in ctx.state.draft.secrets


def show_issues(ctx: FormContext, path: str) -> None:
    """The errors at ``path`` or below it not drawn yet, in plain words under the field."""
    for issue in ctx.issues:
        if id(issue) in ctx.claimed or not is_under(issue.path, path) or not _visible(issue, ctx):
            continue
        ctx.claimed.add(id(issue))
        where = "" if issue.path == path else f"{code(issue.path[len(path):].lstrip('.'))}: "
        icon = ":material/error:" if issue.severity == "error" else ":material/warning:"
        show = st.error if issue.severity == "error" else st.warning
        show(where + md_escape(issue.message), icon=icon)


def show_leftover(ctx: FormContext, prefixes: Iterable[str], *, title: str = "Also to fix",
                  only: Callable[[ConfigIssue], bool] | None = None) -> None:
    """Issues of this step that no widget drew (a whole-file problem, a field on no widget).
    ``prefixes``: paths the step covers (``*``: every path); ``only``: a further filter."""
    prefixes = tuple(prefixes)
    left = [i for i in ctx.issues if id(i) not in ctx.claimed and _visible(i, ctx)
            and any(p == "*" or is_under(i.path, p) for p in prefixes) and (only is None or only(i))]
    if not left:
        return
    lines = [f"- {code(i.path or 'file')}: {md_escape(i.message)}" for i in left]
    ctx.claimed.update(id(i) for i in left)
    st.error(f"**{title}**\n" + "\n".join(lines), icon=":material/error:")
