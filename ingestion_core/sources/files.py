"""Files (CSV, JSONL, Parquet) on local disk, ADLS / Azure Blob, S3 or GCS through dlt's
filesystem source and its readers. ``cursor: modification_date`` makes a table incremental on
the files' modification time; any other cursor is a column of the records.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ingestion_core import settings
from ingestion_core.models.source_file import SourceFileBase
from ingestion_core.models.tables import CsvOptions, FileTable
from ingestion_core.secrets import resolve_value
from ingestion_core.sources import BuildContext, ConnectionReport, register_source

FILE_CURSOR = "modification_date"


def bucket_url(url: str) -> str:
    """A local path without a scheme is taken relative to the project folder."""
    return url if "://" in url else str(settings.resolve_local_path(url))


def file_credentials(credentials: Any) -> Any:
    """The FileCredentials model, resolved, as dlt credentials (or None)."""
    if credentials is None:
        return None
    values = resolve_value(credentials.model_dump(exclude_none=True))
    aws = {k: v for k, v in values.items() if k.startswith("aws_") or k in ("region_name", "endpoint_url")}
    if aws:
        from dlt.common.configuration.specs import AwsCredentials

        return AwsCredentials(**aws)
    if "azure_connection_string" in values:
        return _azure_from_connection_string(values["azure_connection_string"])
    if any(k.startswith("azure_client") for k in values):
        from dlt.common.configuration.specs import AzureServicePrincipalCredentialsWithoutDefaults

        return AzureServicePrincipalCredentialsWithoutDefaults(
            azure_storage_account_name=values.get("azure_storage_account_name"),
            azure_tenant_id=values.get("azure_tenant_id"), azure_client_id=values.get("azure_client_id"),
            azure_client_secret=values.get("azure_client_secret"),
        )
    if any(k.startswith("azure_") for k in values):
        from dlt.common.configuration.specs import AzureCredentialsWithoutDefaults

        return AzureCredentialsWithoutDefaults(**{k: v for k, v in values.items() if k.startswith("azure_storage")})
    if any(k.startswith("gcp_") for k in values):
        from dlt.common.configuration.specs import GcpServiceAccountCredentialsWithoutDefaults

        return GcpServiceAccountCredentialsWithoutDefaults(
            project_id=values.get("gcp_project_id"), client_email=values.get("gcp_client_email"),
            private_key=values.get("gcp_private_key"),
        )
    return None


def _azure_from_connection_string(text: str) -> Any:
    from dlt.common.configuration.specs import AzureCredentialsWithoutDefaults

    parts = dict(p.split("=", 1) for p in text.split(";") if "=" in p)
    credentials = AzureCredentialsWithoutDefaults(
        azure_storage_account_name=parts.get("AccountName"), azure_storage_account_key=parts.get("AccountKey"),
    )
    if parts.get("BlobEndpoint"):
        host = parts["BlobEndpoint"].split("://", 1)[-1].rstrip("/")
        credentials.azure_account_host = host.rsplit("/", 1)[0] if "/" in host else host
    return credentials


def first_rows(items: Any, limit: int) -> Iterator[Any]:
    """At most ``limit`` rows of a reader, as one batch; stops reading files once it has them."""
    import pyarrow as pa

    batches: list[Any] = []
    taken = 0
    for item in items:
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
        file_incremental = dlt.sources.incremental(FILE_CURSOR, initial_value=table.initial_value)
        credentials = file_credentials(source.credentials)  # type: ignore[attr-defined]
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
            resource.apply_hints(incremental=dlt.sources.incremental(table.cursor, initial_value=table.initial_value))
        if ctx.limit:
            # add_limit on a reader would count pages of files, not rows: take the first rows here
            resource = dlt.resource(first_rows(resource, ctx.limit), name=table.name)
        resource.backend = "filesystem"  # type: ignore[attr-defined]
        return resource

    def test_connection(self, config: SourceFileBase) -> ConnectionReport:
        from dlt.common.storages import fsspec_from_config
        from dlt.common.storages.configuration import FilesystemConfiguration

        source = config.source
        url = bucket_url(source.bucket_url)  # type: ignore[attr-defined]
        fs_config = FilesystemConfiguration(url, credentials=file_credentials(source.credentials))  # type: ignore[attr-defined]
        filesystem, path = fsspec_from_config(fs_config)
        entries = filesystem.ls(path if "://" in url else url, detail=False)
        return ConnectionReport(True, f"listed {len(entries)} entries", details={"entries": len(entries)})
