"""Full REST loads through dlt's Arrow path (engine/sources/rest_arrow.py) against the real HTTP
API (tests/http_api.py): the same records loaded once on the Arrow path and once on dlt's JSON
path (``INGEST_REST_ARROW=0``, today's path) land the same DuckDB tables: names, columns in
order with types and nullability, row counts, every row's values (child rows through their
parent rows), dlt's hashed child ids. Records the Arrow path cannot type as dlt does fall back
to the JSON path (the run record says so) and land exactly what the JSON path lands."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dlt.common.normalizers.json.helpers import get_nested_row_hash

from ingestion_core.config.store import ConfigStore
from ingestion_core.engine.sources import rest_arrow
from ingestion_core.pipeline.runner import run_source
from tests.http_api import ApiServer, make_item, running_api
from tests.integration.test_cancel import SOURCE as SLOW_SOURCE
from tests.integration.test_cancel import (
    test_a_cancelled_run_stops_its_requests_and_holds_the_lock_until_it_has as cancel_case,
)
from tests.integration.test_rest_api import OFFSET, ids, landed, write_source

TABLE = "  - {name: items, path: offset/items, primary_key: id%s}\n"


@pytest.fixture
def http_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiServer]:
    monkeypatch.setattr(rest_arrow, "CHUNK_ROWS", 100)  # several chunks per run
    with running_api() as api:
        yield api


def rich(i: int) -> dict[str, Any]:
    """make_item plus nested lists of objects (with grandchild lists), nulls first, late and
    empty / null lists, camelCase keys, dates, timestamps with an offset."""
    item = make_item(i)
    item["lines"] = [{"sku": f"s{i}-{n}", "qty": n, "attrs": {"color": "red" if n else None},
                      "codes": [n, None, n * 2] if i % 3 else []} for n in range(i % 4)]
    item["note"] = None if i < 150 else f"late {i}"
    item["maybe"] = None if i % 5 else [f"m{i}"]
    item["userName"] = f"User {i}"
    item["Nested Obj"] = None if i % 7 == 0 else {"innerKey": i, "when": "2024-03-01T10:00:00+02:00"}
    item["day"] = f"2024-01-{i % 28 + 1:02d}"
    item["score"] = None if i < 5 else i / 8
    return item


def landed_tables(dataset: str) -> dict[str, Any]:
    """Per table: columns (name, type, nullable) in order, row count, and every row's values
    (child rows: with their list index and their parent row's values, recursively)."""
    names = [t for (t,) in landed("SELECT table_name FROM information_schema.tables WHERE table_schema = "
                                  f"'{dataset}' AND table_name NOT LIKE '_dlt%' ORDER BY 1")]
    rows, out = {}, {}
    for name in names:
        columns = landed("SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE "
                         f"table_schema = '{dataset}' AND table_name = '{name}' ORDER BY ordinal_position")
        data = landed(f'SELECT * FROM {dataset}."{name}"')
        rows[name] = [dict(zip([c[0] for c in columns], r, strict=True)) for r in data]
        out[name] = {"columns": columns, "rows": len(data)}
    by_id = {r["_dlt_id"]: (name, r) for name, table in rows.items() for r in table}

    def values(name: str, row: dict[str, Any]) -> tuple:
        own = tuple(sorted((k, str(v)) for k, v in row.items() if not k.startswith("_dlt") or k == "_dlt_list_idx"))
        if "_dlt_parent_id" not in row:
            return (name, own)
        assert row["_dlt_id"] == get_nested_row_hash(row["_dlt_parent_id"], name, row["_dlt_list_idx"])
        return (name, own, values(*by_id[row["_dlt_parent_id"]]))

    for name, table in rows.items():
        out[name]["values"] = sorted(values(name, r) for r in table)
    loads = {r for (r,) in landed(f"SELECT load_id FROM {dataset}._dlt_loads")}
    for table in rows.values():
        assert all(r.get("_dlt_load_id", next(iter(loads))) in loads for r in table)
    return out


def dlt_tables(dataset: str) -> dict[str, Any]:
    """The user tables of the newest dlt schema stored in ``dataset`` (parent, hints, columns)."""
    (schema,) = landed(f"SELECT schema FROM {dataset}._dlt_version ORDER BY inserted_at DESC LIMIT 1")[0]
    return {n: t for n, t in json.loads(schema)["tables"].items() if not n.startswith("_dlt")}


def assert_same_as_the_json_path() -> None:
    """Source ``arrow`` landed what source ``json`` landed: the DuckDB tables (:func:`landed_tables`)
    and dlt's schema of them (child tables nested in their parents, the same hints)."""
    expected, got = landed_tables("json"), landed_tables("arrow")
    assert sorted(got) == sorted(expected)
    for name in expected:
        assert got[name]["columns"] == expected[name]["columns"], name
        assert got[name]["rows"] == expected[name]["rows"], name
        assert got[name]["values"] == expected[name]["values"], name
    got_schema, expected_schema = dlt_tables("arrow"), dlt_tables("json")
    assert got_schema == expected_schema, differences(got_schema, expected_schema)


def differences(got: Any, expected: Any, path: str = "") -> list[str]:
    """Where two JSON documents differ (paths and both values)."""
    if isinstance(got, dict) and isinstance(expected, dict):
        return [d for k in sorted(set(got) | set(expected), key=str)
                for d in differences(got.get(k), expected.get(k), f"{path}.{k}")]
    return [] if got == expected else [f"{path}: {got!r} != {expected!r}"]


def load_both(api: ApiServer, records: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
              table: str = TABLE % "") -> tuple[Any, Any]:
    """The records loaded by source ``arrow`` (Arrow path on) and ``json`` (today's path): the two
    runs' item results."""
    api.items = records
    results = []
    for name, switch in (("json", "0"), ("arrow", "1")):
        monkeypatch.setenv("INGEST_REST_ARROW", switch)
        record = run_source(write_source(api, table, name=name, paginator=OFFSET), actor="ana")
        assert record.status == "success", record.tables[0].error
        results.append(record.tables[0])
    assert_same_as_the_json_path()
    return results[0], results[1]


def test_nested_lists_objects_timestamps_and_nulls_land_as_on_the_json_path(
        http_api: ApiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    json_path, arrow_path = load_both(http_api, [rich(i) for i in range(1, 251)], monkeypatch)
    assert (json_path.backend, arrow_path.backend, arrow_path.attempts) == ("rest_api", "rest_arrow", 1)
    tables = landed_tables("arrow")
    assert set(tables) == {"items", "items__tags", "items__lines", "items__lines__codes", "items__maybe"}
    types = {c: t for c, t, _ in tables["items"]["columns"]}
    assert types["updated_at"] == types["nested_obj__when"] == "TIMESTAMP WITH TIME ZONE"
    assert (types["note"], types["score"], types["day"]) == ("VARCHAR", "DOUBLE", "VARCHAR")
    assert arrow_path.rows == json_path.rows and arrow_path.child_rows == json_path.child_rows
    assert arrow_path.rows_so_far == json_path.rows_so_far == arrow_path.records == 250  # child rows are no records
    assert arrow_path.columns == json_path.columns and arrow_path.schema_changes == json_path.schema_changes


def test_append_and_incremental_runs_land_as_on_the_json_path(http_api: ApiServer,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    table = TABLE % ", mode: incremental, cursor: updated_at, initial_value: '2024-01-01T00:00:00Z'"
    load_both(http_api, [rich(i) for i in range(1, 201)], monkeypatch, table)
    _, arrow_path = load_both(http_api, [rich(i) for i in range(1, 251)], monkeypatch, table)
    assert arrow_path.backend == "rest_arrow" and arrow_path.records == 50


EDGE_CASES = {
    "int_then_float": [{"x": 1}, {"x": 2.5}],
    "bool_int_mix": [{"x": True}, {"x": 3}],
    "str_int_mix": [{"x": "a"}, {"x": 3}],
    "timestamp_then_garbage": [{"x": "2024-01-01T10:00:00Z"}, {"x": "not a time"}],
    "list_of_lists": [{"x": [[1, 2], [3]]}, {"x": [[4]]}],
    "ints_then_floats_in_a_later_chunk": [{"x": n} for n in range(150)] + [{"x": 0.5}],
    "names_that_collide": [{"userName": "a", "user_name": "b"}],
}


@pytest.mark.parametrize("case", EDGE_CASES)
def test_records_arrow_cannot_type_as_dlt_fall_back_to_the_json_path(
        http_api: ApiServer, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    records = [{"id": i + 1, **r} for i, r in enumerate(EDGE_CASES[case] * 2)]
    _, arrow_path = load_both(http_api, records, monkeypatch)
    assert (arrow_path.backend, arrow_path.attempts) == ("rest_api", 2)  # fell back, read again as dicts


@pytest.mark.parametrize("nested", [False, True])
def test_a_decimal_field_whose_first_value_is_whole_stays_on_the_arrow_path(
        http_api: ApiServer, monkeypatch: pytest.MonkeyPatch, nested: bool) -> None:
    """1.0 in the JSON is a float (dlt types the column double), unlike 1: the record says which,
    so the table is not read twice (an API's pages asked for again)."""
    prices = [0.0, 1.5, 2.0, None, 3.25]
    records = [{"id": i + 1, "price": ({"eur": p} if nested else p)} for i, p in enumerate(prices * 30)]
    _, arrow_path = load_both(http_api, records, monkeypatch)
    assert (arrow_path.backend, arrow_path.attempts) == ("rest_arrow", 1)
    column = "price__eur" if nested else "price"
    assert (column, "DOUBLE", "YES") in landed_tables("arrow")["items"]["columns"]


def in_turn(api: ApiServer, monkeypatch: pytest.MonkeyPatch, *steps: tuple[str, str, list[Any]],
            status: str = "success", **run: Any) -> list[Any]:
    """Each step (``INGEST_REST_ARROW`` for source ``arrow``, table YAML, records) run by source
    ``json`` (always the JSON path) and source ``arrow`` (``run``: run_source's options); each run
    ends with ``status``, and both sources landed the same. Returns the ``arrow`` runs' item results."""
    results = []
    for switch, table, records in steps:
        api.items = records
        outcomes = []
        for name, on in (("json", "0"), ("arrow", switch)):
            monkeypatch.setenv("INGEST_REST_ARROW", on)
            record = run_source(write_source(api, table, name=name, paginator=OFFSET), actor="ana", **run)
            assert record.status == status, record.tables[0].error
            error = record.tables[0].error
            outcomes.append(error and (error.error_class, error.message.replace("json", "arrow")))
        assert outcomes[0] == outcomes[1]
        results.append(record.tables[0])
    assert_same_as_the_json_path()
    return results


APPEND = TABLE % ", mode: append"


def test_the_arrow_path_adds_to_child_tables_the_json_path_made(http_api: ApiServer,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    runs = in_turn(http_api, monkeypatch, ("0", APPEND, [rich(i) for i in range(1, 101)]),
                   ("1", APPEND, [rich(i) for i in range(101, 201)]))
    assert [(r.backend, r.attempts) for r in runs] == [("rest_api", 1), ("rest_arrow", 1)]


def test_the_json_path_adds_to_child_tables_the_arrow_path_made(http_api: ApiServer,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The switch turned off and on again: each path adds to the other's child tables."""
    runs = in_turn(http_api, monkeypatch, ("1", APPEND, [rich(i) for i in range(1, 101)]),
                   ("0", APPEND, [rich(i) for i in range(101, 201)]),
                   ("1", APPEND, [rich(i) for i in range(201, 301)]))
    assert [r.backend for r in runs] == ["rest_arrow", "rest_api", "rest_arrow"]


def test_a_run_that_falls_back_adds_to_child_tables_the_arrow_path_made(http_api: ApiServer,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The blocker of the Arrow path's first version: records for the JSON path after the Arrow
    path had made the child tables failed at normalize (``_dlt_parent_id`` nulls)."""
    later = [{**rich(i), "x": 1 if i == 101 else 2.5} for i in range(101, 201)]  # int then floats: falls back
    runs = in_turn(http_api, monkeypatch, ("1", APPEND, [rich(i) for i in range(1, 101)]), ("1", APPEND, later),
                   ("1", APPEND, [rich(i) for i in range(201, 301)]))
    assert [(r.backend, r.attempts) for r in runs] == [("rest_arrow", 1), ("rest_api", 2), ("rest_arrow", 1)]


def test_a_table_the_arrow_path_made_changes_to_merge_as_one_the_json_path_made(
        http_api: ApiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """merge goes through the JSON path, which adds ``_dlt_root_id`` (not null) to the child
    tables; DuckDB cannot add such a column to a table, whichever path made it: the change fails
    alike, with the same message, and the tables stay as they were."""
    changed = [{**rich(i), "userName": f"changed {i}"} for i in range(51, 151)]
    in_turn(http_api, monkeypatch, ("1", APPEND, [rich(i) for i in range(1, 101)]))
    in_turn(http_api, monkeypatch, ("1", TABLE % ", mode: merge", changed), status="failed")


def test_dlt_counts_rows_written_into_a_nested_table_at_extract_by_its_root(tmp_path: Path) -> None:
    """dlt 1.31 alone fails this extract (KeyError 'resource' in its extract metrics); with
    ``count_nested_tables_by_their_root`` the rows count for the root's resource and the
    nested table stays as dlt's normalizer makes it (no resource of its own)."""
    import dlt

    rest_arrow.count_nested_tables_by_their_root()

    @dlt.resource(name="items")
    def items() -> Iterator[Any]:
        dlt.current.get_resource().apply_hints(table_name="items__tags", parent_table_name="items",
                                               create_table_variant=True)
        yield {"id": 1, "_dlt_id": "a"}
        yield dlt.mark.with_table_name({"value": "x", "_dlt_parent_id": "a", "_dlt_list_idx": 0, "_dlt_id": "b"},
                                       "items__tags")

    pipeline = dlt.pipeline("nested", pipelines_dir=str(tmp_path), dataset_name="d",
                            destination=dlt.destinations.duckdb(str(tmp_path / "d.duckdb")))
    info = pipeline.extract(items())
    metrics = info.metrics[info.loads_ids[0]][0]  # the resource's extract (then the state's)
    assert metrics["resource_metrics"]["items"].items_count == 2
    assert set(metrics["table_metrics"]) == {"items", "items__tags"}
    tags = pipeline.default_schema.tables["items__tags"]
    assert tags["parent"] == "items" and "resource" not in tags


def test_a_column_the_existing_table_types_otherwise_falls_back(http_api: ApiServer,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    table = APPEND
    load_both(http_api, [{"id": i, "x": "a"} for i in range(1, 11)], monkeypatch, table)  # x: text
    _, arrow_path = load_both(http_api, [{"id": i, "x": i} for i in range(11, 21)], monkeypatch, table)
    assert (arrow_path.backend, arrow_path.attempts) == ("rest_api", 2)
    assert ("x", "VARCHAR", "YES") in landed_tables("arrow")["items"]["columns"]  # dlt made the ints text


def test_incremental_continues_from_the_cursor_of_the_json_path(http_api: ApiServer,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_source(http_api, "  - {name: items, path: offset/items, mode: incremental, cursor: updated_at,\n"
                          "     cursor_param: since, initial_value: '2024-01-01T00:00:00Z', primary_key: id}\n",
                          paginator=OFFSET)
    http_api.items = [{k: v for k, v in make_item(i).items() if k != "tags"} for i in range(1, 251)]
    monkeypatch.setenv("INGEST_REST_ARROW", "0")
    first = run_source(config, actor="ana")
    assert first.status == "success" and first.tables[0].backend == "rest_api" and ids("items") == list(range(1, 251))
    http_api.items.extend({k: v for k, v in make_item(i).items() if k != "tags"} for i in range(251, 261))
    http_api.clear_log()
    monkeypatch.setenv("INGEST_REST_ARROW", "1")
    second = run_source(config, actor="ana")
    assert second.status == "success" and second.tables[0].backend == "rest_arrow"
    assert ids("items") == list(range(1, 261))
    sent = http_api.log_for("/offset/")
    assert sent[0].params["since"] == make_item(250)["updated_at"] and len(sent) == 1  # only the new page
    assert second.tables[0].cursor == {"column": "updated_at", "last_value": make_item(260)["updated_at"]}


def test_an_int_over_64_bits_falls_back_and_fails_as_on_the_json_path(http_api: ApiServer,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    http_api.items = [{"id": 1, "x": 1}, {"id": 2, "x": 2 ** 63}]
    failures = []
    for name, switch in (("json", "0"), ("arrow", "1")):
        monkeypatch.setenv("INGEST_REST_ARROW", switch)
        record = run_source(write_source(http_api, TABLE % "", name=name, paginator=OFFSET), actor="ana")
        failures.append((record.status, record.tables[0].error.error_class, record.tables[0].backend))
    assert failures == [("failed", "NormalizeJobFailed", "rest_api")] * 2  # the Arrow path fell back to it


@pytest.fixture
def slow_api(ingest_env: Path) -> Iterator[ApiServer]:
    """test_cancel's API: a million records, pages held on request."""
    with running_api(1_000_000, virtual=True, slow_from_page=1, slow_seconds=0) as server:
        (ingest_env / "configs" / "sources" / "api.yaml").write_text(SLOW_SOURCE.format(url=server.url))
        yield server


def test_a_cancel_stops_the_requests_of_an_arrow_run(slow_api: ApiServer, ingest_env: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """test_cancel's case on the Arrow path: no page is asked for after the cancel, though a chunk
    holds 50 pages (the cancel is checked per record, not per chunk)."""
    monkeypatch.setenv("INGEST_REST_ARROW", "1")
    cancel_case(slow_api, ingest_env, tmp_path, "reads")


def landed_files(lake: Path, dataset: str, file_format: str) -> dict[str, Any]:
    """:func:`landed_tables` for a filesystem destination: per table its columns (name, Arrow
    type, nullable) in order, row count and every row's values (child rows through their parents)."""
    import pyarrow as pa
    import pyarrow.json as pj
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    def read(folder: Path) -> Any:
        if file_format == "delta":
            return DeltaTable(str(folder)).to_pyarrow_table()
        files = sorted(folder.rglob(f"*.{file_format}*"))
        assert files, folder
        return pa.concat_tables([pq.read_table(f) if file_format == "parquet" else json_lines(f) for f in files],
                                promote_options="permissive")

    def json_lines(path: Path) -> Any:
        data = path.read_bytes()
        return pj.read_json(io.BytesIO(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data))

    folders = sorted(p for p in (lake / dataset).iterdir() if p.is_dir() and not p.name.startswith("_dlt"))
    tables = {p.name: read(p) for p in folders}
    rows = {n: t.to_pylist() for n, t in tables.items()}
    by_id = {r["_dlt_id"]: (name, r) for name, table in rows.items() for r in table}

    def values(name: str, row: dict[str, Any]) -> tuple:
        own = tuple(sorted((k, str(v)) for k, v in row.items() if not k.startswith("_dlt") or k == "_dlt_list_idx"))
        return (name, own) if "_dlt_parent_id" not in row else (name, own, values(*by_id[row["_dlt_parent_id"]]))

    return {n: {"columns": [(f.name, str(f.type), f.nullable) for f in t.schema], "rows": t.num_rows,
                "values": sorted(values(n, r) for r in rows[n])} for n, t in tables.items()}


@pytest.mark.parametrize("file_format", ["parquet", "delta", "jsonl"])
def test_filesystem_destinations_land_as_on_the_json_path(http_api: ApiServer, monkeypatch: pytest.MonkeyPatch,
                                                          ingest_env: Path, file_format: str) -> None:
    """Parquet and Delta files: the Arrow path lands what the JSON path lands (two runs, a full
    load and an append). JSONL stays on the JSON path."""
    lake = ingest_env / "lake"
    (ingest_env / "configs" / "destinations" / "lake.yaml").write_text(
        f"type: filesystem\nbucket_url: {lake}\nformat: {file_format}\n")
    backends = []
    for mode, records in (("full", [rich(i) for i in range(1, 201)]), ("append", [rich(i) for i in range(201, 301)])):
        http_api.items = records
        for name, switch in (("json", "0"), ("arrow", "1")):
            monkeypatch.setenv("INGEST_REST_ARROW", switch)
            write_source(http_api, TABLE % f", mode: {mode}", name=name, paginator=OFFSET)
            path = ingest_env / "configs" / "sources" / f"{name}.yaml"
            path.write_text(path.read_text().replace("tables:\n", "destination: lake\ntables:\n"))
            record = run_source(ConfigStore().load_source(name).config, actor="ana")
            assert record.status == "success", record.tables[0].error
        backends.append(record.tables[0].backend)
    expected, got = landed_files(lake, "json", file_format), landed_files(lake, "arrow", file_format)
    assert sorted(got) == sorted(expected) and "items__lines__codes" in got
    for name in expected:
        assert got[name] == expected[name], name
    assert backends == (["rest_api"] * 2 if file_format == "jsonl" else ["rest_arrow"] * 2)


def test_child_tables_of_the_first_arrow_version_fail_the_table_with_the_fix() -> None:
    """That version made child tables as root tables (no ``parent``): neither path can add to
    them; the table fails before reading, naming the refresh that loads it again."""
    import dlt
    from dlt.common.schema.utils import new_table

    schema = dlt.Schema("api")
    schema.update_table(new_table("items", columns=[{"name": "id", "data_type": "bigint"}]))
    schema.update_table(new_table("items__tags", columns=[{"name": "value", "data_type": "text"}]))
    with pytest.raises(rest_arrow.ArrowTablesError, match=r"items__tags .*ingest run <source> --refresh items"):
        rest_arrow.Converter(schema, "items", "1")
    schema.tables["items__tags"]["parent"] = "items"  # as dlt's JSON path (and the Arrow path now) make it
    rest_arrow.Converter(schema, "items", "1")


@pytest.mark.parametrize(("value", "on"), [(None, True), ("1", True), ("0", False), (" off ", False), ("false", False)])
def test_the_arrow_path_is_on_unless_switched_off(monkeypatch: pytest.MonkeyPatch, value: str | None, on: bool) -> None:
    from ingestion_core.common import settings

    if value is None:
        monkeypatch.delenv("INGEST_REST_ARROW", raising=False)
    else:
        monkeypatch.setenv("INGEST_REST_ARROW", value)
    assert settings.rest_arrow() is on
