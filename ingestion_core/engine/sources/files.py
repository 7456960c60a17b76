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
        credentials = store_access(source.bucket_url, source.credentials)  # type: ignore[attr-defined]
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

        source = config.source
        url = bucket_url(source.bucket_url)  # type: ignore[attr-defined]
        credentials = file_credentials(source.credentials, url)  # type: ignore[attr-defined]
        ambient = credentials is None and store_kind(url) is not None
        try:
            filesystem, path = fsspec_from_config(filesystem_config(url, credentials))
            entries = filesystem.ls(path if "://" in url else url, detail=False)
        except Exception as exc:
            problem = store_problem(exc, url, ambient)
            if problem is None:
                raise
            return ConnectionReport(False, *problem)
        return ConnectionReport(True, f"listed {len(entries)} entries", details={"entries": len(entries)})


def store_access(url: str, credentials: Any) -> Any:
    """What dlt's ``filesystem`` source reads ``url`` with: the configured credentials as a dlt spec;
    with credentials off, the object store's fsspec client built with the machine's own (see
    :func:`filesystem_config`; dlt alone would refuse Azure without an account in its config);
    None for a local folder."""
    url = bucket_url(url)
    resolved = file_credentials(credentials, url)
    if resolved is None and store_kind(url) is not None:
        from dlt.common.storages import fsspec_from_config

        return fsspec_from_config(filesystem_config(url, None))[0]
    return resolved


def filesystem_config(url: str, credentials: Any) -> Any:
    """dlt's ``FilesystemConfiguration`` for ``url``. With credentials off, an object store is
    reached with the machine's own, resolved as dlt resolves them for the run's ``filesystem``
    source (dlt's config providers, then each store's default chain: boto3's for S3 (environment,
    profile, instance role), DefaultAzureCredential and adlfs's ``AZURE_STORAGE_*`` variables for
    Azure, ``google.auth.default`` for GCS)."""
    from dlt.common.configuration import resolve_configuration
    from dlt.common.storages.configuration import FilesystemConfiguration

    if credentials is not None or store_kind(url) is None:
        return FilesystemConfiguration(url, credentials=credentials)
    resolved = resolve_configuration(FilesystemConfiguration(), explicit_value={"bucket_url": url},
                                     accept_partial=True)
    if store_kind(url) == "gs" and not resolved.credentials.is_resolved():
        # gcsfs would take the unresolved key as a token and fail on a missing field, or read anonymously
        raise NoAmbientCredentials("google.auth found no default credentials")
    return resolved


class NoAmbientCredentials(RuntimeError):
    """Credentials are off and the machine has none for the store."""


AUTH_ERROR = re.compile(
    r"SignatureDoesNotMatch|InvalidAccessKeyId|request signature we calculated|InvalidClientTokenId|"
    r"AuthenticationFailed|Server failed to authenticate|AuthorizationFailure|InvalidAuthenticationInfo|"
    r"AccessDenied|Access Denied|invalid_grant|\b403\b|Forbidden", re.I)
NOT_FOUND_ERROR = re.compile(r"NoSuchBucket|ContainerNotFound|container does not exist|\b404\b|not found", re.I)
NO_CREDENTIALS_ERROR = re.compile(
    r"NoAmbientCredentials|NoCredentialsError|Unable to locate credentials|connection_string or account_name|"
    r"DefaultAzureCredential failed|CredentialUnavailableError|DefaultCredentialsError", re.I)
AMBIENT_CREDENTIALS = {
    "s3": "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the environment of the portal and "
          "the runs, or an instance profile / IAM role of the machine",
    "az": "`az login`, a managed identity of the machine, or AZURE_STORAGE_CONNECTION_STRING (or "
          "AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY) in the environment; an az:// URL names "
          "no account: write abfss://<container>@<account>.dfs.core.windows.net/<folder> or set "
          "AZURE_STORAGE_ACCOUNT_NAME",
    "gs": "GOOGLE_APPLICATION_CREDENTIALS naming a service account key file, `gcloud auth "
          "application-default login`, or the machine's service account",
}
SECRET_FIELDS = {
    "s3": "aws_access_key_id and the secret behind aws_secret_access_key",
    "az": "azure_storage_account_name and the secret behind azure_storage_account_key (or "
          "azure_storage_sas_token, azure_connection_string, azure_client_secret)",
    "gs": "gcp_client_email and the secret behind gcp_private_key",
}


def store_problem(exc: BaseException, url: str, ambient: bool = False) -> tuple[str, str] | None:
    """(reason, mitigation) for an object store that refused the credentials (``ambient``: the
    machine's own, credentials being off), found none, or has no such bucket / folder; None for
    anything else. Never quotes a secret (the text is masked too)."""
    from ingestion_core.engine.errors import describe

    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    text = " ".join(f"{type(e).__name__} {e}" for e in chain)
    kind = store_kind(url)
    if kind and ambient and NO_CREDENTIALS_ERROR.search(text):
        return (f"Credentials are off and this machine has no credentials for {url} ({describe(exc)})",
                f"give the machine access: {AMBIENT_CREDENTIALS[kind]}; or turn Credentials on and enter "
                f"{SECRET_FIELDS[kind]}")
    if kind and (isinstance(exc, PermissionError) or AUTH_ERROR.search(text)):
        if ambient:
            return (f"the object store refused this machine's credentials for {url} ({describe(exc)}); "
                    "Credentials are off, so the machine's own are used",
                    f"give the identity the machine uses ({AMBIENT_CREDENTIALS[kind]}) read access to the "
                    f"bucket, or turn Credentials on and enter {SECRET_FIELDS[kind]}")
        return (f"the object store refused the credentials for {url} ({describe(exc)})",
                f"check {SECRET_FIELDS[kind]} (the secrets file or environment variable "
                "the reference points to); the key may be wrong, expired or lack read access to the bucket")
    if isinstance(exc, FileNotFoundError) or NOT_FOUND_ERROR.search(text):
        return (f"{url} was not found ({describe(exc)})",
                "check bucket_url: the bucket (or container) and folder must exist and be spelled as in the store")
    return None
