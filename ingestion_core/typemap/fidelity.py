"""Type fidelity: no value changes silently between a SQL source and the destination.

Before a table is read, :func:`plan_table` decides for every column how it lands:

- ``exact``: the value lands as it is (integers keep their width, NaN and -0.0 stay);
- ``converted``: it lands with a documented lossless type change, done in the SELECT so that
  every backend reads the same thing (interval as ISO-8601 text, money as decimal, json as its
  exact text...);
- ``refused``: the product cannot land it exactly; the table stops before reading a row, with a
  message naming the column and the choices (``column_types: {col: text}`` or
  ``exclude_columns``).

The rules per source dialect live in :mod:`ingestion_core.typemap.rules`; docs/type-mappings.md
lists them. A value that breaks its column's plan at read time (a NaN in a ``numeric(10,2)``,
a MySQL zero date, an infinite PostgreSQL timestamp) stops the table with a
:class:`ColumnTypeError` naming the column, never a silent NULL or a rounded value.

Example::

    plan = plan_table(engine, reflected, "postgres")
    [d["decision"] for d in plan.records()]   # ["exact", "converted", ...]
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from ingestion_core.typemap.columns import (  # noqa: F401  (the vocabulary, named here too)
    CONNECTORX_COLUMN,
    DECIMAL_MAX_PRECISION,
    DIALECT_FAMILY,
    FACT_PROBES,
    GUARD_MARK,
    TEXT_CASTS,
    TYPE_KEYS,
    TYPE_RULES,
    ColumnInfo,
    ColumnPlan,
    ColumnTypeError,
    Decision,
    Reader,
    Rule,
    as_text,
    choices_text,
    decimal_landing,
    parse_column_type,
    type_rule,
)

if TYPE_CHECKING:  # kept out of imports: the config models import parse_column_type
    import sqlalchemy as sa

LOGGER = logging.getLogger("ingestion_core.typemap.fidelity")

# --- the plan ------------------------------------------------------------------------------

@dataclass
class TablePlan:
    table: str
    family: str
    columns: dict[str, ColumnPlan]
    not_null: frozenset[str] = frozenset()  # columns the source declares NOT NULL

    def records(self) -> list[dict[str, Any]]:
        return [c.record() for c in self.columns.values()]

    @property
    def refused(self) -> list[ColumnPlan]:
        return [c for c in self.columns.values() if c.decision == "refused"]

    def raise_if_refused(self) -> None:
        if not self.refused:
            return
        parts = "; ".join(f"'{c.name}' ({c.source_type}): {c.note}" for c in self.refused)
        names = [c.name for c in self.refused]
        raise ColumnTypeError(
            f"table {self.table}: {len(names)} column(s) cannot land exactly: {parts}. Choices: land a column "
            f"as text with column_types: {{{names[0]}: text}}, or leave columns out with "
            f"exclude_columns: [{', '.join(names)}]", names, self.records())

    def connectorx_blocker(self) -> str | None:
        """Why connectorx cannot read this table exactly, naming the column; None when it can."""
        return next((f"column {c.name} ({c.source_type}): {c.pyarrow_only}" for c in self.columns.values()
                     if c.pyarrow_only), None)

    def needs_arrow_fixup(self) -> bool:
        """connectorx would read some decimal as text, converted in Arrow afterwards."""
        return any(c.cx_read is not None and c.landed.get("data_type") == "decimal" for c in self.columns.values())

    def select_list(self, query: Any, table: sa.Table, connectorx: bool) -> Any:
        """The SELECT with each column replaced by its read expression (labels keep the names)."""
        import sqlalchemy as sa

        if not isinstance(query, sa.Select):
            return query
        expressions = []
        for column in table.columns:
            plan = self.columns.get(column.name)
            reader = plan and ((plan.cx_read if connectorx else None) or plan.read)
            expressions.append(reader(column).label(column.name) if reader else column)
        return query.with_only_columns(*expressions, maintain_column_froms=True)

    def dlt_columns(self, reflected: dict[str, Any]) -> dict[str, Any]:
        """dlt column hints: the reflected ones (nullable, primary key...) with our types."""
        hints = {}
        for name, plan in self.columns.items():
            base = {k: v for k, v in (reflected.get(name) or {"name": name}).items() if k not in TYPE_KEYS}
            hints[name] = {**base, **plan.landed}
        return hints

    def conform_arrow(self, item: Any) -> Any:
        """connectorx batches cast to the landed types (safe casts: a value that does not fit
        raises, naming the column), and NOT NULL columns marked so: connectorx calls every field
        nullable, which made dlt warn on every batch that the table's hints differ."""
        import pyarrow as pa

        if not isinstance(item, pa.Table):
            return item
        for name, plan in self.columns.items():
            if name not in item.column_names:
                continue
            index = item.column_names.index(name)
            field = item.schema.field(index)
            target = _arrow_target(plan.landed) or field.type
            nullable = field.nullable and not (name in self.not_null and item.column(index).null_count == 0)
            if field.type == target and field.nullable == nullable:
                continue
            try:
                converted = item.column(index).cast(target, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise self.column_error(plan, str(exc)) from None
            item = item.set_column(index, pa.field(name, target, nullable), converted)
        return item

    def column_error(self, plan: ColumnPlan, detail: str) -> ColumnTypeError:
        detail = " ".join(detail.split())[:240]
        return ColumnTypeError(
            f"table {self.table}, column '{plan.name}' ({plan.source_type}): a value cannot land as "
            f"{plan.landed_type} ({detail}); {choices_text(plan.name)}", [plan.name], self.records())

    def explain_failure(self, exc: BaseException) -> ColumnTypeError | None:
        """The column behind a read failure, when it can be told from the error."""
        chain = list(_chain(exc))
        if any(isinstance(e, ColumnTypeError) for e in chain):
            return None
        for error in chain:
            text = str(error)
            if GUARD_MARK in text:  # a PostgreSQL guard: the message is ours, inside the driver's error
                message = text[text.index(GUARD_MARK):].split('"')[0].rstrip("\\").strip()  # \" in a panic's text
                name = message[len(GUARD_MARK):].split(" ", 1)[0]
                return ColumnTypeError(f"table {self.table}, {message[len('ingest: '):]}", [name], self.records())
            field_name = getattr(error, "field_name", None) or getattr(error, "_field_name", None)
            position = CONNECTORX_COLUMN.search(text)  # "error deserializing column 3: ..."
            if position and int(position.group(1)) < len(self.columns):
                field_name = list(self.columns)[int(position.group(1))]
            if field_name in self.columns:
                detail = str(chain[-1]).strip().splitlines() or [type(chain[-1]).__name__]
                return self.column_error(self.columns[field_name], detail[-1])
        return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The error and its causes, outermost first (dlt wraps in ``exception``, Python in __cause__)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        inner = getattr(current, "exception", None) or current.__cause__
        current = inner if isinstance(inner, BaseException) else None


def _arrow_target(landed: dict[str, Any]) -> Any:
    import pyarrow as pa

    kind = landed.get("data_type")
    if kind == "decimal" and landed.get("precision"):
        return pa.decimal128(landed["precision"], landed.get("scale", 0))
    if kind == "bigint":
        return {8: pa.int8(), 16: pa.int16(), 32: pa.int32()}.get(landed.get("precision") or 64, pa.int64())
    if kind == "double":
        return pa.float64()
    return None


# --- rules ---------------------------------------------------------------------------------

# --- building a plan -----------------------------------------------------------------------

def overrides_for(table: Any) -> dict[str, str]:
    """The table's ``column_types`` choices ({column: text | decimal(p,s)}); tables of sources
    that are not SQL have none."""
    return dict(getattr(table, "column_types", None) or {})


def plan_table(engine: sa.Engine, table: sa.Table, source_type: str, *, columns: list[str] | None = None,
               overrides: dict[str, str] | None = None, adapter: Callable[[Any], Any] | None = None,
               cursor: str | None = None) -> TablePlan:
    """Decide how every loaded column lands (``columns``: the names left after include /
    exclude). Raises ColumnTypeError for a choice that cannot apply (an override of a column
    the table lacks, a cursor that would land reordered)."""
    from ingestion_core.typemap import rules as type_rules  # rules register themselves

    family = DIALECT_FAMILY.get(source_type, source_type)
    type_rules.load_rules(family)
    overrides = overrides or {}
    loaded = [c for c in table.columns if columns is None or c.name in columns]
    unknown = sorted(set(overrides) - {c.name for c in table.columns})
    if unknown:
        raise ColumnTypeError(f"table {table.name}: column_types names column(s) {', '.join(unknown)} that the "
                              f"table does not have; its columns are {', '.join(table.c.keys())}", unknown)
    facts = _probe(engine, table, family)
    plans = {}
    for column in loaded:
        info = ColumnInfo(column, _unwrap(column.type), facts.get("declared", {}).get(column.name)
                          or _declared(column, engine), family, facts)
        plans[column.name] = _plan_column(info, overrides.get(column.name), adapter)
    plan = TablePlan(table.name, family, plans, frozenset(c.name for c in loaded if c.nullable is False))
    _check_cursor(plan, cursor)
    return plan


def _plan_column(info: ColumnInfo, override: str | None, adapter: Callable[[Any], Any] | None) -> ColumnPlan:
    if override:
        return _override_plan(info, override)
    if adapter is not None:
        adapted = adapter(info.type)
        if adapted is not None:
            return _adapted_plan(info, adapted() if isinstance(adapted, type) else adapted)
    own = TYPE_RULES.get(info.family, [])
    for rule in own + [r for r in TYPE_RULES.get("*", []) if r not in own]:
        plan = rule(info)
        if plan is not None:
            return _with_cx_read(plan, info.family)
    return info.plan("refused", {}, f"no exact landing is known for {info.declared}", keeps_order=False)


def _override_plan(info: ColumnInfo, override: str) -> ColumnPlan:
    landed = parse_column_type(override)
    if landed["data_type"] == "text":
        if info.family not in TEXT_CASTS:
            return info.plan("refused", {}, f"column_types text is not available for {info.family} sources")
        return info.plan("converted", landed, "column_types: text (the value as the source prints it)",
                         read=lambda c: as_text(info.family, c), keeps_order=False)
    plan = info.plan("converted", landed, f"column_types: {override} (a value that does not fit stops the "
                                          "load, naming the column)")
    return _with_cx_read(plan, info.family)


def _adapted_plan(info: ColumnInfo, adapted: Any) -> ColumnPlan:
    import sqlalchemy as sa
    from dlt.sources.sql_database.schema_types import sqla_col_to_column_schema

    hint = sqla_col_to_column_schema(sa.Column(info.name, adapted), "full_with_precision") or {}
    landed = {k: v for k, v in hint.items() if k in TYPE_KEYS}
    landed_type = ColumnPlan(info.name, "", "converted", landed).landed_type
    return info.plan("converted", landed, f"the destination's type mapping (a registered type adapter) lands it as "
                     f"{landed_type}; see that destination's docs for what the mapping keeps")


def _with_cx_read(plan: ColumnPlan, family: str) -> ColumnPlan:
    """connectorx reads decimals as decimal128(38,10): beyond 18 digits or 10 decimals it fails
    or rounds, so such columns are read as text and converted exactly in Arrow."""
    landed = plan.landed
    if landed.get("data_type") != "decimal" or plan.cx_read is not None or family not in TEXT_CASTS:
        return plan
    if (landed.get("precision") or 99) <= 18 and landed.get("scale", 0) <= 10:
        return plan
    read = plan.read
    return replace(plan, cx_read=lambda c: as_text(family, read(c) if read else c))


def _check_cursor(plan: TablePlan, cursor: str | None) -> None:
    column = plan.columns.get(cursor or "")
    if column is None or column.keeps_order:
        return
    plan.columns[column.name] = replace(column, decision="refused", note=f"as the incremental cursor: {column.note}")
    raise ColumnTypeError(
        f"table {plan.table}: the incremental cursor '{cursor}' ({column.source_type}) would land as "
        f"{column.landed_type}, which does not sort like the source; choose another cursor column "
        f"(a timestamp or an integer that grows with every change)", [column.name], plan.records())


def _unwrap(kind: Any) -> Any:
    while getattr(kind, "data_type", None) is not None and type(kind).__name__ == "DOMAIN":
        kind = kind.data_type
    return kind


def _declared(column: sa.Column, engine: sa.Engine) -> str:
    try:
        return column.type.compile(dialect=engine.dialect).lower()
    except Exception:  # NullType and dialect types without a DDL form
        return type(column.type).__name__.lower()


def _probe(engine: sa.Engine, table: sa.Table, family: str) -> dict[str, Any]:
    probe = FACT_PROBES.get(family)
    if probe is None:
        return {}
    try:
        return probe(engine, table)
    except Exception as exc:  # the declared names are for display; rules fall back to SQLAlchemy's view
        LOGGER.warning("%s: could not read the declared column types (%s)", table.name, exc)
        return {}


# --- reading -------------------------------------------------------------------------------

class _PlannedLoaderMixin:
    """Reads with the plan's SELECT and names the column behind a failure."""

    plan: ClassVar[TablePlan]
    connectorx: ClassVar[bool] = False

    def make_query(self) -> Any:
        return self.plan.select_list(super().make_query(), self.table, self.connectorx)  # type: ignore[misc]

    def load_rows(self, backend_kwargs: dict[str, Any] | None = None) -> Iterator[Any]:
        try:
            for item in super().load_rows(backend_kwargs):  # type: ignore[misc]
                yield self.plan.conform_arrow(item) if self.connectorx else item
        except (KeyboardInterrupt, SystemExit, GeneratorExit):
            raise
        except BaseException as exc:  # connectorx's stream reports a server error as a panic (a BaseException)
            named = self.plan.explain_failure(exc)
            if named is None:
                raise
            LOGGER.debug("%s: read failed: %r", self.plan.table, exc)
            raise named from None


def connectorx_url(engine: sa.Engine) -> str:
    """The URL connectorx connects with (secrets included: never log it). Its MySQL reader refuses
    URL parameters it does not know (connect_timeout, init_command); the PostgreSQL reader takes
    them all, ``options`` (the session settings) included, spaces written %20 (it reads '+' as is)."""
    from urllib.parse import quote, urlencode

    url = engine.url
    query = {} if url.get_backend_name() == "mysql" else dict(url.query)
    base = url.set(drivername=url.get_backend_name(), query={}).render_as_string(hide_password=False)
    return f"{base}?{urlencode(query, doseq=True, quote_via=quote)}" if query else base


class _ConnectorXUrl:
    def get_connection_url(self) -> str:
        return connectorx_url(self.engine)  # type: ignore[attr-defined]


def loader_class(plan: TablePlan, backend: str) -> type:
    """A dlt table loader bound to ``plan`` for ``backend`` (pyarrow or connectorx)."""
    from dlt.sources.sql_database.helpers import ConnectorXTableLoader, TableLoader

    bases = (_PlannedLoaderMixin, _ConnectorXUrl, ConnectorXTableLoader) if backend == "connectorx" else \
        (_PlannedLoaderMixin, TableLoader)
    return type(f"Planned{bases[-1].__name__}", bases, {"plan": plan, "connectorx": backend == "connectorx"})


def apply_plan_hints(resource: Any, plan: TablePlan) -> None:
    """Replace dlt's reflected column types with the plan's (other hints kept)."""
    reflected = dict(resource.columns or {}) if not callable(resource.columns) else {}
    hints = plan.dlt_columns(reflected)
    resource.apply_hints(columns={})  # reset: merging would keep reflected precision on text columns
    resource.apply_hints(columns=hints)
