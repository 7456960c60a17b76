"""Parquet / JSONL files or Delta tables on local disk, ADLS, S3 or GCS (date-partitioned
layout by default). dlt merges into files only with the Delta table format (upsert).

dlt reads the landed tables back (quality checks, custom_sql) through DuckDB; Delta tables need
DuckDB's ``delta`` extension, which DuckDB would download. The ``duckdb-extension-delta`` package
ships it: :func:`install_duckdb_extension` installs it from there once, after which dlt's own
``delta_scan`` autoloads it offline.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from pathlib import Path
from typing import Any

from ingestion_core.engine.destinations import DestinationPlan, register_destination
from ingestion_core.observe.run_log import LOGGER
from ingestion_core.storage.object_stores import bucket_url, file_credentials

_INIT_LOCKS: dict[str, threading.Lock] = {}
_INIT_LOCKS_GUARD = threading.Lock()


@register_destination("filesystem")
def build(name: str, config: Any) -> DestinationPlan:
    url = bucket_url(config.bucket_url)
    delta = config.format == "delta"
    if delta:
        install_duckdb_extension("delta")
    credentials = file_credentials(config.credentials, config.bucket_url)
    options: dict[str, Any] = {"credentials": credentials} if credentials is not None else {}
    if getattr(config, "keep_history", False):
        # one moment for the whole run: its files, the folder a full load replaces and the folder the
        # checks read are the same dated folder, whenever each table loads
        options["current_datetime"] = run_moment()
    destination = filesystem_destination_class(bool(options.get("current_datetime")))(
        bucket_url=url, layout=config.layout, destination_name=name, **options,
    )
    return DestinationPlan(
        name=name, type="filesystem", destination=destination,
        loader_file_format="parquet" if delta else config.format,
        table_format="delta" if delta else None, merge_strategy="upsert",
        serial_load=delta, location=url,
    )


def _init_lock(key: str) -> threading.Lock:
    with _INIT_LOCKS_GUARD:
        return _INIT_LOCKS.setdefault(key, threading.Lock())


def run_moment() -> Any:
    """The date and time a run's dated folders are named after (UTC)."""
    import pendulum

    return pendulum.now("UTC")


@functools.cache
def filesystem_destination_class(keep_history: bool = False) -> type:
    """dlt's filesystem destination, but a dataset's storage is initialized by one table at a time.

    The tables of a run load in parallel into one dataset, and the first load of each writes the
    dataset's ``init`` file. Two writers of one blob on Azure fail ("The specified block list is
    invalid": each commit drops the other's uncommitted blocks); S3 and GCS keep the last write.

    ``keep_history``: a table loaded with ``replace`` (mode full) is the files of the run's dated
    folder only (the layout's folders, dated by the destination's ``current_datetime``): dlt
    replaces that folder, leaves the earlier ones, and reads (quality checks) the newest one."""
    import dlt
    from dlt.destinations.impl.filesystem.filesystem import FilesystemClient

    class SerialInitFilesystemClient(FilesystemClient):
        def initialize_storage(self, truncate_tables: Any = None) -> None:
            with _init_lock(f"{self.config.bucket_url}|{self.dataset_path}"):
                super().initialize_storage(truncate_tables)

    class DatedFolderFilesystemClient(SerialInitFilesystemClient):
        def get_table_prefix(self, table_name: str, schema_name: str | None = None) -> str:
            if self.is_dlt_table(table_name) or not _replaces(self.schema, table_name):
                return super().get_table_prefix(table_name, schema_name)
            return self.pathlib.join(self.dataset_path, dated_folder(
                self.config.layout, table_name, schema_name or self.schema.name, self.config.current_datetime), "")

    class Filesystem(dlt.destinations.filesystem):
        @property
        def destination_type(self) -> str:
            return "dlt.destinations.filesystem"  # what dlt records in state and traces: unchanged

        @property
        def client_class(self) -> type:
            if self.is_hf:
                return super().client_class
            return DatedFolderFilesystemClient if keep_history else SerialInitFilesystemClient

    return Filesystem


def _replaces(schema: Any, table_name: str) -> bool:
    from dlt.common.schema.utils import get_write_disposition

    return table_name in schema.tables and get_write_disposition(schema.tables, table_name) == "replace"


def dated_folder(layout: str, table_name: str, schema_name: str, moment: Any) -> str:
    """The folder part of ``layout`` for a table at ``moment``, e.g. ``orders/2026/12/07``
    (a layout whose folders name only the table, the schema and dates: see keep_history)."""
    from dlt.destinations.path_utils import prepare_datetime_params

    folder = layout.rsplit("/", 1)[0]
    return folder.format(table_name=table_name, schema_name=schema_name, **prepare_datetime_params(moment))


@functools.cache
def install_duckdb_extension(name: str) -> bool:
    """Install DuckDB extension ``name`` from its ``duckdb-extension-<name>`` package (once per
    process; DuckDB keeps it in its extension folder), unless DuckDB has it already. False when
    neither: reading then needs DuckDB to download it, and says so when it cannot."""
    import duckdb

    with duckdb.connect() as connection:
        installed = connection.execute("SELECT installed FROM duckdb_extensions() WHERE extension_name = ?",
                                       [name]).fetchone()
        if installed and installed[0]:
            return True
        spec = importlib.util.find_spec(f"duckdb_extension_{name}")
        if spec is None or not spec.submodule_search_locations:
            LOGGER.warning("DuckDB's %s extension is not installed: pip install duckdb-extension-%s==%s",
                           name, name, duckdb.__version__)
            return False
        path = Path(next(iter(spec.submodule_search_locations))) / "extensions" / f"v{duckdb.__version__}" / \
            f"{name}.duckdb_extension"
        try:
            connection.execute(f"INSTALL '{path.as_posix().replace(chr(39), chr(39) * 2)}'")  # our package's file
        except duckdb.Error as exc:  # the load does not need it; the checks that do will say why
            LOGGER.warning("DuckDB's %s extension could not be installed from %s: %s", name, path, exc)
            return False
    return True
