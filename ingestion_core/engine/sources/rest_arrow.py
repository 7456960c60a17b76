"""Large REST loads through dlt's Arrow path: rows -> root + child Arrow tables, as dlt's
relational normalizer would make them.

dlt's per-row JSON normalizer is the cost of a large REST load; its Arrow path skips it. dlt
turns nested Arrow types into JSON columns, so the tables are built here the way the JSON
normalizer builds them: nested objects flattened with ``__``; each list a child table
``<table>__<field>`` with ``_dlt_parent_id``, ``_dlt_list_idx`` and ``_dlt_id`` (dlt's own
nested row hash); the root's ``_dlt_id`` from dlt's ``generate_dlt_ids``, its ``_dlt_load_id``
the package's; ISO timestamp strings typed by dlt's own detection (the first value decides).
In dlt's schema the child tables are nested tables as the JSON normalizer makes them (``parent``
set, dlt's hints on the ``_dlt_*`` columns, no table hint of their own), so either path adds to
tables the other made, in any order.

Whatever dlt's JSON path would type otherwise raises :class:`ArrowFallback`, and the runner
reads the table again on the JSON path (``backend_override="dicts"``): mixed types in a column
(bool / int, str / int, an int first then floats), a timestamp column with a value that does not
parse, lists of lists, ints beyond 64 bits, names that collide once normalized, and a column the
existing schema types differently, a table merged once (its child rows carry ``_dlt_root_id``).

Example (what :class:`~ingestion_core.engine.sources.rest.RestSource` does for a full load)::

    resource = arrow_resource(rest_api_resource, "orders")
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from ingestion_core.engine.sources import ReadAgainError

CHUNK_ROWS = 5000
"""Rows per Arrow chunk: dlt computes a table's schema once per Arrow item, so bigger is cheaper."""
FLUSH_SECONDS = 1.0
"""A chunk goes on once its first record waited this long, full or not: a slow API's records are
counted (the run's rows so far) while it is read, not per 5,000."""
BACKEND = "rest_arrow"
ROW_KEY = {"_dlt_id": {"name": "_dlt_id", "unique": True, "row_key": True}}
NESTED_KEYS = {**ROW_KEY, "_dlt_parent_id": {"name": "_dlt_parent_id", "parent_key": True}}
"""dlt's hints on a nested table's _dlt_* columns (the schema's default hints: row_key, unique,
parent_key; not null comes with the Arrow fields)."""
_DLT_TYPES = {"int64": "bigint", "double": "double", "bool": "bool", "string": "text",
              "timestamp[us, tz=UTC]": "timestamp"}


class ArrowFallback(ReadAgainError):
    """Rows the converter cannot type the way dlt's JSON normalizer would: load them as dicts."""


def arrow_resource(resource: Any, name: str, pipeline: str, cancel: Any = None, cursor: str | None = None) -> Any:
    """``resource`` (dlt's rest_api resource: paginator, guard, data_selector, incremental and
    parents stay inside it) re-yielded as root + child Arrow tables of ``CHUNK_ROWS`` rows, for
    the dlt pipeline named ``pipeline``; ``cancel`` (an Event) is checked before every record,
    so no page is asked for once the run is cancelled; ``cursor``: the incremental cursor path."""
    import dlt

    # the root's _dlt_load_id is set here; dlt adds none to this pipeline's child tables (as on the
    # JSON path). dlt's extractor reads it when the extract starts: set before
    os.environ[f"{pipeline.upper()}__NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID"] = "false"

    from dlt.common.jsonpath import extract_simple_field_name

    count_nested_tables_by_their_root()
    columns = dict(ROW_KEY)
    if column := cursor and extract_simple_field_name(cursor):  # dlt's incremental hints it on the JSON path
        columns[column] = {"name": column, "incremental": True}
    wrapped = dlt.resource(_arrow_chunks(resource, name, cancel), name=name, section=resource.section, columns=columns)
    wrapped.backend = BACKEND
    return wrapped


def count_nested_tables_by_their_root() -> None:
    """dlt 1.31's extract metrics fail (``KeyError: 'resource'``) once a resource has written a
    nested table: ``Extract._compute_metrics`` groups the tables written at extract by
    ``schema.get_table(name)["resource"]``, which dlt sets on root tables only (``merge_table``
    refuses it on a nested one). dlt's own JSON path never meets it, as nested tables get their
    rows at normalize; any resource that yields into a table hinted ``parent_table_name`` does
    (dicts too; tests/integration/test_rest_arrow.py shows it). Here the metrics lookup sees a
    nested table's root's resource, for the call only: the schema dlt saves is unchanged. Patches
    dlt's ``Extract`` class once per process (idempotent); drop it when dlt looks up the root itself."""
    from dlt.common.schema.utils import get_root_table, is_nested_table
    from dlt.extract.extract import Extract

    compute = Extract._compute_metrics
    if getattr(compute, "counts_nested_tables", False):
        return

    def _compute_metrics(self: Any, load_id: str, source: Any) -> Any:
        tables = source.schema.tables
        lent = [t for t in tables.values() if is_nested_table(t) and "resource" not in t]
        for table in lent:
            table["resource"] = get_root_table(tables, table["name"]).get("resource")
        try:
            return compute(self, load_id, source)
        finally:
            for table in lent:
                table.pop("resource", None)

    _compute_metrics.counts_nested_tables = True  # type: ignore[attr-defined]
    Extract._compute_metrics = _compute_metrics  # type: ignore[method-assign]


def _arrow_chunks(resource: Any, name: str, cancel: Any) -> Any:
    def gen() -> Iterator[Any]:
        import dlt

        current = dlt.current.get_resource()  # the wrapped resource as hinted by the runner
        schema = dlt.current.source_schema()
        converter = Converter(schema, schema.naming.normalize_table_identifier(current.table_name),
                              dlt.current.load_package_state()["load_id"])
        children: dict[str, str] = {}  # child table -> its parent
        for rows in _batches(resource, CHUNK_ROWS, name, cancel):
            for table_name, parent, arrow in converter.tables(rows):
                if parent is not None and table_name not in children:
                    children[table_name] = parent
                    _hint_nested(current, table_name, parent)
                # the root's rows go to the resource's table; the child tables' are marked (not records)
                yield arrow if parent is None else dlt.mark.with_table_name(arrow, table_name)
                nested_as_on_the_json_path(schema, children)
    return gen


def _hint_nested(resource: Any, table: str, parent: str) -> None:
    """A table variant of the resource for the child table ``table``: nested in ``parent`` (as
    dlt's relational normalizer makes it), none of the root's columns or keys, dlt's hints on
    its _dlt_* columns."""
    resource.apply_hints(table_name=table, columns={}, primary_key=[], merge_key=[], create_table_variant=True)
    resource.apply_hints(table_name=table, parent_table_name=parent, columns=NESTED_KEYS, create_table_variant=True)


ROOT_ONLY = ("resource", "write_disposition", "variant_name", "schema_contract", "table_format", "file_format")
"""Table hints a resource's table variant carries that dlt's normalizer never gives a nested
table: a nested table inherits them from its root (a write disposition of its own would keep
the table out of its root's merge, should the table change to merge)."""


def nested_as_on_the_json_path(schema: Any, children: dict[str, str]) -> None:
    """The child tables in ``schema`` as dlt's relational normalizer makes them: ``parent`` set,
    no table hint of their own (:data:`ROOT_ONLY`). Called after each chunk is written (dlt
    merges the variant's hints into the table again with every Arrow item)."""
    for table in children:
        entry = schema.tables.get(table)
        if entry is not None:
            for hint in ROOT_ONLY:
                entry.pop(hint, None)


def _batches(resource: Any, size: int, name: str, cancel: Any) -> Iterator[list[Any]]:
    """Chunks of ``size`` records, or fewer once the chunk's first record waited ``FLUSH_SECONDS``
    (checked as each record arrives); the cancel is checked before every record."""
    from ingestion_core.common.cancellation import raise_if_cancelled

    rows: list[Any] = []
    started = 0.0
    for row in resource:
        if cancel is not None:
            raise_if_cancelled(cancel, name)
        if not rows:
            started = time.monotonic()
        rows.append(row)
        if len(rows) >= size or time.monotonic() - started >= FLUSH_SECONDS:
            yield rows
            rows = []
    if rows:
        yield rows


class ArrowTablesError(ValueError):
    """The table's child tables were made by the Arrow path before it made them nested tables
    (dlt's format): neither path can add to them; the table fails before anything is loaded."""


class Converter:
    """Chunks of rows of one table -> [(table name, parent table or None, Arrow table)], root
    first. Column types of earlier chunks and runs (the schema) win: a chunk that would type a
    column otherwise falls back."""

    def __init__(self, schema: Any, root: str, load_id: str):
        from dlt.common.normalizers.json.relational import DataItemNormalizer

        self.schema, self.naming, self.root, self.load_id = schema, schema.naming, root, load_id
        self.types: dict[str, dict[str, str]] = {}  # table -> column -> dlt type, this run's chunks
        self.rows: list[Any] = []  # the chunk's records
        detections = set(schema.settings.get("detections") or ()) - {"iso_timestamp"}
        if detections:
            raise ArrowFallback(f"the schema detects {', '.join(sorted(detections))} too")
        propagation = DataItemNormalizer.get_normalizer_config(schema).get("propagation") or {}
        if propagation.get("root") or root in (propagation.get("tables") or {}):
            # the table was merged once: dlt's JSON path adds _dlt_root_id to its child rows
            raise ArrowFallback("child rows carry the root row's id (_dlt_root_id)")
        legacy = [t for t, v in schema.tables.items() if t.startswith(f"{root}__") and not v.get("parent")]
        if legacy:
            raise ArrowTablesError(
                f"{root}: the child tables {', '.join(legacy)} were made by an earlier version of the Arrow path, "
                "which neither path can add to. Load the table again from scratch: ingest run <source> --refresh "
                f"{root} (its child tables are dropped with it)")

    def tables(self, rows: list[Any]) -> list[tuple[str, str | None, Any]]:
        import pyarrow as pa

        try:
            array = pa.array(rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError) as exc:
            raise ArrowFallback(f"rows Arrow cannot type: {exc}") from None
        if not pa.types.is_struct(array.type):
            raise ArrowFallback(f"records are {array.type}, not objects")
        self.rows = rows  # the records, for a root field's first value as the JSON had it
        return self._relational(array, self.root, None, None)

    # --- one table and its lists -------------------------------------------------------------

    def _relational(self, array: Any, table: str, parent_ids: Any, list_idx: Any,
                    parent: str | None = None) -> list[tuple[str, str | None, Any]]:
        import pyarrow as pa
        from dlt.common.normalizers.json.helpers import get_nested_row_hash
        from dlt.common.normalizers.utils import generate_dlt_ids

        out: dict[str, Any] = {}
        lists: dict[tuple[str, ...], Any] = {}
        if pa.types.is_struct(array.type):
            self._columns(array, table, out, lists)
        elif pa.types.is_list(array.type) or pa.types.is_large_list(array.type):
            raise ArrowFallback(f"{table}: a list of lists")
        elif not pa.types.is_null(array.type):
            self._add(out, table, "value", array)
        n = len(array)
        if parent_ids is None:
            row_ids = pa.array(generate_dlt_ids(n), pa.string())
            system = {"_dlt_load_id": pa.array([self.load_id] * n, pa.string()), "_dlt_id": row_ids}
        else:
            pairs = zip(parent_ids.to_pylist(), list_idx.to_pylist(), strict=True)
            hashes = [get_nested_row_hash(p, table, i) for p, i in pairs]
            row_ids = pa.array(hashes, pa.string())
            system = {"_dlt_parent_id": parent_ids, "_dlt_list_idx": list_idx, "_dlt_id": row_ids}
        result = [(table, parent, _table(out, system))]
        for path, list_array in lists.items():
            result.extend(self._child(list_array, self.naming.shorten_fragments(table, *path), row_ids, table))
        return result

    def _columns(self, array: Any, table: str, out: dict[str, Any], lists: dict[tuple[str, ...], Any]) -> None:
        """dlt's flattening, in its order (a stack: the fields of a row, then its objects', last
        object first): objects -> ``a__b`` columns (a null object nulls its fields), lists apart."""
        import pyarrow as pa

        stack: list[tuple[Any, tuple[str, ...], tuple[str, ...]]] = [(array, (), ())]  # + the fields' keys
        while stack:
            struct, path, keys = stack.pop()
            for field, child in zip(struct.type, struct.flatten(), strict=True):
                if not field.name or field.name.isspace():
                    raise ArrowFallback(f"{table}: a field without a name")
                name = self.naming.normalize_identifier(field.name)
                if pa.types.is_struct(field.type):
                    stack.append((child, (*path, name), (*keys, field.name)))
                elif pa.types.is_list(field.type) or pa.types.is_large_list(field.type):
                    key = (*path, self.naming.normalize_table_identifier(field.name))
                    if key in lists:
                        raise ArrowFallback(f"{table}: two lists named {'__'.join(key)} once normalized")
                    lists[key] = child
                elif not pa.types.is_null(field.type):  # dlt makes no column of only-null values
                    column = self.naming.shorten_fragments(*path, name) if path else name
                    self._add(out, table, column, child, (*keys, field.name))

    def _add(self, out: dict[str, Any], table: str, column: str, array: Any, keys: tuple[str, ...] = ()) -> None:
        if column in out:
            raise ArrowFallback(f"{table}: two fields named {column} once normalized")
        out[column] = self._typed(table, column, array, keys)

    def _typed(self, table: str, column: str, array: Any, keys: tuple[str, ...]) -> Any:
        """The column as dlt types it: the type it already has (this run or the schema), else
        the first value's; anything else falls back."""
        import pyarrow as pa
        import pyarrow.compute as pc

        known = self._known(table, column)
        if pa.types.is_string(array.type) and known != "text":
            array = _timestamps(array, table, column, force=known == "timestamp")
        elif pa.types.is_int64(array.type) and known == "double":
            array = pc.cast(array, pa.float64())  # dlt coerces later ints into a double column
        dlt_type = _DLT_TYPES.get(str(array.type))
        if dlt_type is None:
            raise ArrowFallback(f"{table}.{column}: values of type {array.type}")
        if dlt_type == "double" and known is None and self._first_is_int(table, array, keys):
            raise ArrowFallback(f"{table}.{column}: a whole number first, then decimals (dlt adds a variant column)")
        if known is not None and known != dlt_type:
            raise ArrowFallback(f"{table}.{column}: {dlt_type} values in a {known} column")
        self.types.setdefault(table, {})[column] = dlt_type
        return array

    def _first_is_int(self, table: str, array: Any, keys: tuple[str, ...]) -> bool:
        """The first non-null value of a double column was an int in the JSON: dlt would type the
        column bigint (and add a variant column for the decimals). A root field's value is read from
        the record (``keys``: its path of keys); a child table's first whole value counts as an int
        (safe side: 1.0 falls back too)."""
        import pyarrow.compute as pc

        index = pc.index(pc.is_valid(array), True).as_py()
        if index < 0:
            return False
        if table != self.root or not keys:
            return float(array[index].as_py()).is_integer()
        value = self.rows[index]
        for key in keys:
            value = value[key]
        return type(value) is int

    def _known(self, table: str, column: str) -> str | None:
        if column in self.types.get(table, {}):
            return self.types[table][column]
        existing = self.schema.tables.get(table, {}).get("columns", {}).get(column, {})
        return existing.get("data_type")

    def _child(self, list_array: Any, table: str, parent_ids: Any, parent: str) -> list[tuple[str, str | None, Any]]:
        import pyarrow as pa
        import pyarrow.compute as pc

        values = pc.list_flatten(list_array)
        if len(values) == 0:
            return []
        parents = pc.take(parent_ids, pc.list_parent_indices(list_array))
        return self._relational(values, table, parents, pa.array(_list_index(list_array), pa.int64()), parent)


def _timestamps(array: Any, table: str, column: str, force: bool) -> Any:
    """dlt's ``iso_timestamp`` detection: the first non-null string decides; every value must parse."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from dlt.common.schema.detections import is_iso_timestamp

    valid = array.drop_null()
    if len(valid) == 0:
        return array
    if not force and not is_iso_timestamp(str, valid[0].as_py()):
        return array
    try:
        return pc.cast(array, pa.timestamp("us", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ArrowFallback(f"{table}.{column}: a timestamp value that does not parse: {exc}") from None


def _table(data: dict[str, Any], system: dict[str, Any]) -> Any:
    """dlt's column order: the first row's columns, its _dlt_* columns, then the columns in the
    order their first value appears; _dlt_* not null, as dlt declares them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    first = {n: pc.index(pc.is_valid(a), True).as_py() for n, a in data.items()}
    data = {n: a for n, a in data.items() if first[n] >= 0}  # a column of only nulls: dlt makes none
    late = sorted((n for n in data if first[n] > 0), key=lambda n: first[n])  # sort is stable
    names = [n for n in data if first[n] == 0] + list(system) + late
    columns = {**data, **system}
    fields = [pa.field(n, columns[n].type, nullable=not n.startswith("_dlt_")) for n in names]
    return pa.Table.from_arrays([columns[n] for n in names], schema=pa.schema(fields))


def _list_index(list_array: Any) -> Any:
    import numpy as np
    import pyarrow.compute as pc

    lengths = pc.fill_null(pc.list_value_length(list_array), 0).to_numpy()
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.arange(total, dtype=np.int64) - starts
