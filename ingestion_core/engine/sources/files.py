"""Files (CSV, JSONL, Parquet) on local disk, ADLS / Azure Blob, S3 or GCS through dlt's
filesystem source and its readers. ``cursor: modification_date`` makes a table incremental on
the files' modification time; any other cursor is a column of the records.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from typing import Any

from ingestion_core.config.models.source_file import SourceFileBase
from ingestion_core.config.models.tables import CsvOptions, FileTable
from ingestion_core.engine.sources import BuildContext, ConnectionReport, lookback_lag, register_source
from ingestion_core.storage.object_stores import bucket_url, file_credentials, store_kind

FILE_CURSOR = "modification_date"


def first_rows(items: Any, limit: int, name: str, cancel: Any = None) -> Iterator[Any]:
    """At most ``limit`` rows of a reader, as one batch; stops reading files once it has them, or
    at the next chunk once ``cancel`` (an Event) is set."""
    import pyarrow as pa

    from ingestion_core.common.cancellation import raise_if_cancelled

    batches: list[Any] = []
    taken = 0
    for item in items:
        if cancel is not None:
            raise_if_cancelled(cancel, name)
        if isinstance(item, pa.Table):
            batches.append(item.slice(0, limit - taken))
            taken += batches[-1].num_rows
        else:
            rows = item if isinstance(item, list) else [item]
            batches.append(rows[: limit - taken])
            taken += len(batches[-1])
        if taken >= limit:
            break
    if batches and all(isinstance(b, pa.Table) for b in batches):
        yield pa.concat_tables(batches)
    elif batches:
        yield [row for batch in batches for row in (batch.to_pylist() if isinstance(batch, pa.Table) else batch)]


READERS = {"csv": "read_csv", "jsonl": "read_jsonl", "parquet": "read_parquet"}


@register_source("filesystem")
class FilesSource:
    def resource(self, ctx: BuildContext) -> Any:
        import dlt
        from dlt.sources import filesystem as fs

        table: FileTable = ctx.table  # type: ignore[assignment]
        source = ctx.config.source
        by_file_date = ctx.settings.mode == "incremental" and table.cursor == FILE_CURSOR
        file_incremental = dlt.sources.incremental(FILE_CURSOR, initial_value=table.initial_value,
                                                   lag=lookback_lag(table, datetime.datetime))
        credentials = file_credentials(source.credentials, source.bucket_url)  # type: ignore[attr-defined]
        files = fs.filesystem(
            bucket_url=bucket_url(source.bucket_url),  # type: ignore[attr-defined]
            file_glob=table.glob,
            incremental=file_incremental if by_file_date else None,
            # an explicit None breaks dlt's config resolution for local paths
            **({"credentials": credentials} if credentials is not None else {}),
        )
        chunk = ctx.limit or ctx.settings.chunk_size
        reader = getattr(fs, READERS[table.format])
        kwargs: dict[str, Any] = {"chunksize": chunk}
        if table.format == "csv":
            options = table.csv or CsvOptions()
            kwargs.update(sep=options.delimiter, header=0 if options.header else None, encoding=options.encoding)
        if table.format == "parquet":
            kwargs = {"chunksize": chunk}
        resource = files | reader(**kwargs)
        if ctx.settings.mode == "incremental" and not by_file_date and table.cursor:
            resource.apply_hints(incremental=dlt.sources.incremental(
                table.cursor, initial_value=table.initial_value, lag=lookback_lag(table, table.initial_value)))
        if ctx.limit:
            # add_limit on a reader would count pages of files, not rows: take the first rows here
            resource = dlt.resource(first_rows(resource, ctx.limit, table.name, ctx.cancel), name=table.name)
        resource.backend = "filesystem"  # type: ignore[attr-defined]
        resource.cursor_in_rows = not by_file_date  # type: ignore[attr-defined]  (the runner's look-back key)
        return resource

    def test_connection(self, config: SourceFileBase) -> ConnectionReport:
        from dlt.common.storages import fsspec_from_config
        from dlt.common.storages.configuration import FilesystemConfiguration

        source = config.source
        url = bucket_url(source.bucket_url)  # type: ignore[attr-defined]
        fs_config = FilesystemConfiguration(url, credentials=file_credentials(source.credentials, url))  # type: ignore[attr-defined]
        filesystem, path = fsspec_from_config(fs_config)
        try:
            entries = filesystem.ls(path if "://" in url else url, detail=False)
        except Exception as exc:
            problem = store_problem(exc, url)
            if problem is None:
                raise
            return ConnectionReport(False, *problem)
        return ConnectionReport(True, f"listed {len(entries)} entries", details={"entries": len(entries)})


AUTH_ERROR = re.compile(
    r"SignatureDoesNotMatch|InvalidAccessKeyId|request signature we calculated|InvalidClientTokenId|"
    r"AuthenticationFailed|Server failed to authenticate|AuthorizationFailure|InvalidAuthenticationInfo|"
    r"AccessDenied|Access Denied|invalid_grant|\b403\b|Forbidden", re.I)
NOT_FOUND_ERROR = re.compile(r"NoSuchBucket|ContainerNotFound|container does not exist|\b404\b|not found", re.I)
SECRET_FIELDS = {
    "s3": "aws_access_key_id and the secret behind aws_secret_access_key",
    "az": "azure_storage_account_name and the secret behind azure_storage_account_key (or "
          "azure_storage_sas_token, azure_connection_string, azure_client_secret)",
    "gs": "gcp_client_email and the secret behind gcp_private_key",
}


def store_problem(exc: BaseException, url: str) -> tuple[str, str] | None:
    """(reason, mitigation) for an object store that refused the credentials or has no such
    bucket / folder; None for anything else. Never quotes a secret (the text is masked too)."""
    from ingestion_core.engine.errors import describe

    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    text = " ".join(f"{type(e).__name__} {e}" for e in chain)
    kind = store_kind(url)
    if kind and (isinstance(exc, PermissionError) or AUTH_ERROR.search(text)):
        return (f"the object store refused the credentials for {url} ({describe(exc)})",
                f"check {SECRET_FIELDS[kind]} (the secrets file or environment variable "
                "the reference points to); the key may be wrong, expired or lack read access to the bucket")
    if isinstance(exc, FileNotFoundError) or NOT_FOUND_ERROR.search(text):
        return (f"{url} was not found ({describe(exc)})",
                "check bucket_url: the bucket (or container) and folder must exist and be spelled as in the store")
    return None
