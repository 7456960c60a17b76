"""Where files live and how to reach them: local paths (relative to the project folder) and
object stores (S3, ADLS / Azure Blob, GCS) with their credentials as dlt specs. One module for
the file sources, the filesystem and Databricks destinations, and discovery.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

from ingestion_core.common import settings
from ingestion_core.config.secrets import resolve_value


def bucket_url(url: str) -> str:
    """A local path without a scheme is taken relative to the project folder."""
    return url if "://" in url else str(settings.resolve_local_path(url))


S3_SCHEMES = ("s3", "s3a")
AZURE_SCHEMES = ("az", "azure", "abfs", "abfss", "adl")
GCS_SCHEMES = ("gs", "gcs")


def store_kind(url: str | None, values: dict[str, Any] | None = None) -> str | None:
    """``s3``, ``az``, ``gs`` or None (local): from the URL's scheme, else from the credential names."""
    scheme = url.split("://", 1)[0].lower() if url and "://" in url else None
    for kind, schemes in (("s3", S3_SCHEMES), ("az", AZURE_SCHEMES), ("gs", GCS_SCHEMES)):
        if scheme in schemes:
            return kind
    if scheme or not values:
        return None
    if any(k.startswith("aws_") for k in values) or "region_name" in values:
        return "s3"
    if any(k.startswith("azure_") for k in values):
        return "az"
    if any(k.startswith("gcp_") for k in values):
        return "gs"
    return "s3" if "endpoint_url" in values else None


def file_credentials(credentials: Any, url: str | None = None) -> Any:
    """The FileCredentials model, resolved, as dlt credentials for the store of ``url`` (or None).

    ``endpoint_url`` is the S3-compatible endpoint for s3:// and the blob endpoint for az:// (e.g.
    Azurite's http://127.0.0.1:10000/devstoreaccount1)."""
    if credentials is None:
        return None
    values = resolve_value(credentials.model_dump(exclude_none=True))
    kind = store_kind(url, values)
    if kind == "s3":
        from dlt.common.configuration.specs import AwsCredentials

        aws = {k: v for k, v in values.items() if k.startswith("aws_") or k in ("region_name", "endpoint_url")}
        return AwsCredentials(**aws) if aws else None
    if kind == "az":
        return _azure_credentials(values)
    if kind == "gs":
        return _gcp_credentials(values)
    return None


def _azure_credentials(values: dict[str, Any]) -> Any:
    if "azure_connection_string" in values:
        return _azure_from_connection_string(values["azure_connection_string"])
    endpoint = values.get("endpoint_url")
    if any(k.startswith("azure_client") or k == "azure_tenant_id" for k in values):
        from dlt.common.configuration.specs import AzureServicePrincipalCredentialsWithoutDefaults

        principal = AzureServicePrincipalCredentialsWithoutDefaults(
            azure_storage_account_name=values.get("azure_storage_account_name"),
            azure_tenant_id=values.get("azure_tenant_id"), azure_client_id=values.get("azure_client_id"),
            azure_client_secret=values.get("azure_client_secret"),
        )
        if endpoint:  # adlfs talks https://{azure_account_host}
            principal.azure_account_host = endpoint.split("://", 1)[-1].rstrip("/")
        return principal
    if not any(k.startswith("azure_storage") for k in values):
        return None
    return _azure_account(values.get("azure_storage_account_name"), values.get("azure_storage_account_key"),
                          values.get("azure_storage_sas_token"), endpoint)


def _azure_account(name: str | None, key: str | None, sas: str | None, endpoint: str | None) -> Any:
    """Account key or SAS token (on an optional blob endpoint); the account name alone means the
    ambient identity (DefaultAzureCredential)."""
    endpoint = endpoint.rstrip("/") if endpoint else None
    if not key and not sas:
        from dlt.common.configuration.specs import AzureCredentials

        ambient = AzureCredentials(azure_storage_account_name=name)
        if endpoint:  # adlfs talks https://{azure_account_host}
            ambient.azure_account_host = endpoint.split("://", 1)[-1]
        return ambient
    credentials = azure_blob_credentials_class()(
        azure_storage_account_name=name, azure_storage_account_key=key, azure_storage_sas_token=sas,
        azure_blob_endpoint=endpoint,
    )
    if key and not sas:
        with contextlib.suppress(Exception):  # as dlt does: a SAS for consumers that need one (Databricks COPY INTO)
            credentials.create_sas_token()
    # resolved here: dlt rebuilds unresolved credentials as its own class and would drop the endpoint
    return credentials.resolve()


DEV_STORAGE_ACCOUNT = "devstoreaccount1"
# Azurite's published development key (https://learn.microsoft.com/azure/storage/common/storage-use-azurite)
DEV_STORAGE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def parse_connection_string(text: str) -> dict[str, str]:
    """``Key=Value;...`` as a dict with lower-case keys (values keep their ``=`` padding)."""
    parts = (p.strip() for p in text.strip().split(";"))
    return {k.strip().lower(): v.strip() for k, _, v in (p.partition("=") for p in parts if "=" in p)}


def _azure_from_connection_string(text: str) -> Any:
    parts = parse_connection_string(text)
    if parts.get("usedevelopmentstorage", "").lower() == "true":
        proxy = parts.get("developmentstorageproxyuri", "http://127.0.0.1").rstrip("/")
        parts = {"accountname": DEV_STORAGE_ACCOUNT, "accountkey": DEV_STORAGE_KEY,
                 "blobendpoint": f"{proxy}:10000/{DEV_STORAGE_ACCOUNT}"}
    name = parts.get("accountname")
    endpoint = parts.get("blobendpoint")
    suffix = parts.get("endpointsuffix")
    if not endpoint and name and suffix and suffix != "core.windows.net":  # sovereign clouds
        endpoint = f"{parts.get('defaultendpointsprotocol', 'https')}://{name}.blob.{suffix}"
    if not name and endpoint:  # https://<account>.blob.<suffix> or path style http://host:port/<account>
        host, _, path = endpoint.split("://", 1)[-1].rstrip("/").partition("/")
        name = path.rsplit("/", 1)[-1] if path else host.split(".", 1)[0]
    return _azure_account(name, parts.get("accountkey"), parts.get("sharedaccesssignature"), endpoint)


@functools.cache
def azure_blob_credentials_class() -> type:
    """dlt's account key / SAS credentials plus a blob endpoint other than
    https://<account>.blob.core.windows.net (Azurite, private endpoints, sovereign clouds).

    adlfs only builds https://{azure_account_host}, so with an endpoint it gets a connection
    string; delta-rs (object_store) gets the endpoint and, for http, allow_http."""
    from dlt.common.configuration.specs import AzureCredentialsWithoutDefaults, configspec

    @configspec
    class AzureBlobCredentials(AzureCredentialsWithoutDefaults):
        azure_blob_endpoint: str | None = None

        def connection_string(self) -> str:
            parts = [f"DefaultEndpointsProtocol={self.azure_blob_endpoint.split('://', 1)[0]}",
                     f"AccountName={self.azure_storage_account_name}"]
            if self.azure_storage_account_key:
                parts.append(f"AccountKey={self.azure_storage_account_key}")
            elif self.azure_storage_sas_token:
                parts.append(f"SharedAccessSignature={self.azure_storage_sas_token.lstrip('?')}")
            return ";".join([*parts, f"BlobEndpoint={self.azure_blob_endpoint}"]) + ";"

        def to_adlfs_credentials(self) -> dict[str, Any]:
            if not self.azure_blob_endpoint:
                return super().to_adlfs_credentials()
            return {"account_name": self.azure_storage_account_name, "connection_string": self.connection_string()}

        def to_object_store_rs_credentials(self) -> dict[str, str]:
            if not self.azure_blob_endpoint:
                return super().to_object_store_rs_credentials()
            options = {"account_name": self.azure_storage_account_name, "endpoint": self.azure_blob_endpoint}
            if self.azure_storage_account_key:
                options["account_key"] = self.azure_storage_account_key
            elif self.azure_storage_sas_token:
                options["sas_token"] = self.azure_storage_sas_token
            if self.azure_blob_endpoint.startswith("http://"):
                options["allow_http"] = "true"
            return options

    AzureBlobCredentials.__qualname__ = AzureBlobCredentials.__name__  # picklable as files.AzureBlobCredentials
    return AzureBlobCredentials


def __getattr__(name: str) -> Any:
    if name == "AzureBlobCredentials":  # built on first use: importing dlt's specs takes half a second
        return azure_blob_credentials_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _gcp_credentials(values: dict[str, Any]) -> Any:
    if not any(k.startswith("gcp_") for k in values):
        return None
    from dlt.common.configuration.specs import GcpServiceAccountCredentialsWithoutDefaults

    key = values.get("gcp_private_key")
    if key and "\\n" in key and "\n" not in key:  # a PEM pasted from the JSON key file keeps its \n escapes
        key = key.replace("\\n", "\n")
    return GcpServiceAccountCredentialsWithoutDefaults(
        project_id=values.get("gcp_project_id"), client_email=values.get("gcp_client_email"), private_key=key,
    )
