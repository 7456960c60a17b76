"""The fixed cost of an `ingest` process: what it imports and builds before the first row.

`ingest preview` of a PostgreSQL table has a target of < 3 s as a whole process (issue #3),
most of it imports. These tests fail when a heavy module or model build comes back on a path
that does not need it. Each check runs in a fresh interpreter (this process has imported
everything already)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from ingestion_core.config.models.source_file import parse_source_file, source_file_adapter
from ingestion_core.quality.schema_changes import declared_columns

HEAVY = ["dlt", "pandas", "pyarrow", "numpy", "sqlalchemy", "duckdb", "connectorx", "streamlit", "requests",
         "fsspec", "sqlglot"]
LATER = ["pandas", "pyarrow", "numpy", "duckdb", "connectorx", "streamlit", "requests"]
"""Imported by the load itself (pyarrow imports pandas), never before: planning stays light."""
NOT_FOR_SQL = ["ingestion_core.engine.sources.rest", "ingestion_core.engine.sources.files",
               "ingestion_core.engine.sources.rest_client",
               "ingestion_core.databricks", "ingestion_core.engine.destinations.databricks"]

PG_SOURCE = """\
name: pg
owner: data-ops
source: {type: postgres, host: 127.0.0.1, database: shop, username: ana, password: '${env:PG_PASSWORD}'}
tables:
  - {name: orders, mode: merge, primary_key: id}
"""


def fresh_python(code: str, env: dict[str, str] | None = None) -> dict:
    """Runs ``code`` in a new interpreter; it prints one JSON line, returned."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, check=False, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_cli_and_building_its_parser_imports_nothing_heavy() -> None:
    loaded = fresh_python(f"""
        import json, sys
        from ingestion_core.cli.main import build_parser
        build_parser()
        print(json.dumps([m for m in {HEAVY + NOT_FOR_SQL!r} if m in sys.modules]))
    """)
    assert loaded == []


@pytest.mark.parametrize("argv", [["list"], ["validate"], ["runs"], ["schema"]])
def test_commands_that_never_run_dlt_do_not_import_it(argv: list[str]) -> None:
    loaded = fresh_python(f"""
        import contextlib, io, json, sys
        from ingestion_core.cli.main import main
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            main({argv!r})
        print(json.dumps([m for m in ("dlt", "streamlit", "pandas") if m in sys.modules]))
    """)
    assert loaded == []


def test_the_first_dlt_config_lookup_after_the_preload_does_not_import_streamlit(tmp_path: Path) -> None:
    """dlt's secrets.toml provider imports Streamlit (0.5-0.8 s) to look for ``st.secrets`` when
    no secrets.toml exists: the first ``run_source`` of a process (not only an ``ingest`` command)
    skips that, as the lookup could only find nothing outside a Streamlit app."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import json, sys
        from ingestion_core.common import preload
        from dlt.common.configuration.container import Container
        from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext
        preload.load_heavy_modules()
        Container()[PluggableRunContext].providers  # builds the secrets.toml provider: its lookups run
        print(json.dumps("streamlit" in sys.modules))
    """)], capture_output=True, text=True, cwd=tmp_path, check=False, timeout=120)  # no .dlt/secrets.toml here
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) is False


def test_planning_a_sql_preview_builds_only_its_own_models(ingest_env: Path) -> None:
    """Loading a postgres source and planning its preview (dlt and SQLAlchemy are needed by then):
    no pandas / pyarrow / numpy / DuckDB / connectorx yet, no REST, file or Databricks module,
    and of the eight file models only the postgres one built."""
    (ingest_env / "configs" / "sources" / "pg.yaml").write_text(PG_SOURCE)
    state = fresh_python(f"""
        import json, sys
        from ingestion_core.cli.engine import load_source_arg
        from ingestion_core.engine.destinations.duckdb import preview_plan
        from ingestion_core.config.models.source_file import SOURCE_FILE_MODELS, source_file_adapter
        from ingestion_core.pipeline.runner import _plan
        from ingestion_core.engine.sources import get_source_kind
        config = load_source_arg("pg")
        _plan(config, "preview", preview_plan(config.name), "ana", "cli", 10, None, None)
        get_source_kind(config.source_type)
        print(json.dumps({{
            "loaded": [m for m in {LATER + NOT_FOR_SQL!r} if m in sys.modules],
            "built": sorted(k for k, m in SOURCE_FILE_MODELS.items() if m.__pydantic_complete__),
            "union_built": source_file_adapter.cache_info().currsize,
        }}))
    """)
    assert state == {"loaded": [], "built": ["postgres"], "union_built": 0}


def test_a_rejected_file_reports_the_union_errors_as_always() -> None:
    """A valid file is validated by its own model; a rejected one by the whole union, so the
    errors keep their locations (tagged by source type) and messages."""
    bad = {"name": "pg", "owner": "data-ops", "tables": [{"name": "t"}],
           "source": {"type": "postgres", "host": "h", "database": "d", "username": "u", "password": "literal"}}
    with pytest.raises(ValidationError) as direct:
        source_file_adapter().validate_python(bad)
    with pytest.raises(ValidationError) as parsed:
        parse_source_file(bad)
    assert parsed.value.errors() == direct.value.errors()
    assert parsed.value.errors()[0]["loc"][0] == "postgres"
    with pytest.raises(ValidationError, match=r"source\.type is missing or unknown"):
        parse_source_file({**bad, "source": {"type": "nosuch"}})


def test_schema_changes_use_the_columns_the_load_read_instead_of_reading_them_again(ingest_env: Path) -> None:
    """With the load's planned columns, the source is not asked again: here it does not even
    exist, so asking it would give None."""
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    config = parse_source_file({"name": "gone", "owner": "data-ops", "source": {"type": "sqlite",
                                "path": str(ingest_env / "missing.sqlite")}, "tables": [{"name": "Orders"}]})
    table = config.tables[0]
    assert declared_columns(config, table, "duckdb", NamingConvention()) is None
    planned = [("OrderId", {"data_type": "bigint"}), ("Amount", {"data_type": "decimal", "precision": 12,
                                                                 "scale": 2}), ("Blob", {})]
    assert declared_columns(config, table, "duckdb", NamingConvention(), planned) == {
        "order_id": "bigint", "amount": "decimal(12,2)", "blob": None}


def test_the_cli_skips_the_last_garbage_collections_at_exit() -> None:
    """The objects alive at exit are frozen (gc.freeze) so the interpreter's final collections
    do not walk them (0.5 s of a preview); the exit handlers registered before still run after."""
    state = fresh_python("""
        import atexit, contextlib, gc, io, json
        atexit.register(lambda: print(json.dumps({"frozen": gc.get_freeze_count()})))
        from ingestion_core.cli.main import main
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            main(["list"])
        print(json.dumps({"frozen": gc.get_freeze_count()}))
    """)
    assert state["frozen"] > 10_000


def test_deferred_models_built_by_threads_at_once_validate_right() -> None:
    """Table threads may be the first to use a model (a check, a table): its deferred build must
    not let another thread validate with a half-built class (pydantic >= 2.14 locks the build)."""
    state = fresh_python("""
        import json
        from concurrent.futures import ThreadPoolExecutor
        from ingestion_core.config.models.source_file import Retries, Workers
        from ingestion_core.config.models.tables import SqlTable

        def build(i):
            out = []
            for make in (lambda: SqlTable(name=f"t{i}", mode="append"), lambda: Retries(attempts=2),
                         lambda: Workers(tables_in_parallel=3)):
                try:
                    out.append(type(make()).__name__)
                except Exception as exc:
                    out.append(f"{type(exc).__name__}: {exc}")
            try:
                SqlTable(name="x", no_such_key=1)
                out.append("unknown key accepted")
            except Exception as exc:
                out.append(type(exc).__name__)
            return out

        with ThreadPoolExecutor(16) as pool:
            print(json.dumps(sorted({json.dumps(r) for r in pool.map(build, range(64))})))
    """)
    assert state == [json.dumps(["SqlTable", "Retries", "Workers", "ValidationError"])]


THREAD_IMPORTS = """
import contextlib, io, json, sys, threading
from ingestion_core.common import preload

in_threads = []


class Watch:
    def find_spec(self, name, path, target=None):
        if threading.current_thread() is not threading.main_thread() and name not in sys.modules:
            in_threads.append(name)


sys.meta_path.insert(0, Watch())
from ingestion_core.cli.main import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
readers = {reader: [m for m in names if m in sys.modules] for reader, names in preload.SOURCE_MODULES.items()}
print(json.dumps({"code": code, "readers": readers, "preloaded_in_threads": sorted(
    set(in_threads) & {*preload.CORE_MODULES, *(m for names in preload.SOURCE_MODULES.values() for m in names)})}))
"""


def preview_process(args: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(THREAD_IMPORTS), *args], capture_output=True,
                          text=True, env=dict(os.environ), check=False, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_sql_run_imports_only_the_sql_readers_dlt_modules_and_before_its_threads(ingest_env: Path) -> None:
    """An ``ingest run`` / ``preview`` of a SQL source imports dlt's SQL source but not its REST
    and file sources (0.05 s a process), and every module of the preload before the table threads
    start (two threads importing one module at once can deadlock: ingestion_core.common.preload)."""
    from ingestion_core.demo import generate_demo

    generate_demo(ingest_env / "demo" / "data")
    (ingest_env / "configs" / "sources" / "demo_shop.yaml").write_text(
        (Path(__file__).resolve().parents[2] / "configs" / "sources" / "demo_shop.yaml").read_text())
    for command in (["run", "demo_shop", "--tables", "customers,products"], ["preview", "demo_shop"]):
        state = preview_process(command)
        assert state["code"] == 0
        assert state["readers"] == {"sql": ["dlt.sources.sql_database"], "rest": [], "files": []}, command
        assert state["preloaded_in_threads"] == [], command


def test_a_rest_preview_imports_only_the_rest_readers_dlt_modules_and_before_its_threads(
        ingest_env: Path) -> None:
    from tests.http_api import running_api

    with running_api(items=300) as api:
        (ingest_env / "configs" / "sources" / "api.yaml").write_text(
            f"name: api\nowner: data-ops\nsource:\n  type: rest_api\n  base_url: {api.url}/\n"
            "  paginator: {type: offset, limit: 100, total_path: total}\n"
            "tables:\n  - {name: items, path: offset/items, data_selector: data, mode: full}\n"
            "  - {name: more, path: offset/items, data_selector: data, mode: full}\n")
        state = preview_process(["preview", "api", "--limit", "200"])
    assert state["code"] == 0
    assert state["readers"] == {"sql": [], "rest": ["dlt.sources.rest_api", "dlt.sources.helpers.rest_client"],
                                "files": []}
    assert state["preloaded_in_threads"] == []


def test_numpy_starts_no_blas_threads_unless_asked_for() -> None:
    """OpenBLAS starts a thread per core when numpy is imported (0.04 s CPU of an ``ingest``
    process); nothing in the library multiplies matrices. A value set by the user wins."""
    code = """
        import json, os
        import ingestion_core, numpy
        print(json.dumps(len(os.listdir("/proc/self/task"))))
    """
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}  # this process set it
    threads = [subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                              env=child_env, check=True, timeout=120).stdout.strip()
               for child_env in (env, {**env, "OPENBLAS_NUM_THREADS": "2"})]
    assert threads == ["1", "2"]
