"""Destination files: ``configs/destinations/<name>.yaml``, one per destination, by ``type``.

Previews always land in a local DuckDB file; these are the destinations of real runs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, TypeAdapter, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ingestion_core.models.base import ConfigModel, SecretRef
from ingestion_core.models.sources import FileCredentials, check_bucket_url

DEFAULT_LAYOUT = "{table_name}/{YYYY}/{MM}/{DD}/{load_id}.{file_id}.{ext}"


class DestinationBase(ConfigModel):
    version: Literal[1] = Field(1, description="Format version of this file.")
    description: str = Field("", description="What this destination is, for people.")


class DuckDbDestination(DestinationBase):
    """A local DuckDB database file: the embedded default."""

    type: Literal["duckdb"] = Field(description="DuckDB file.")
    path: str | None = Field(
        None, description="Database file. Default: <INGEST_DATA_DIR>/<destination name>.duckdb."
    )


class FilesystemDestination(DestinationBase):
    """Parquet / JSONL files or Delta tables on local disk, ADLS, S3 or GCS."""

    type: Literal["filesystem"] = Field(description="Files or Delta tables.")
    bucket_url: str = Field(description="Where to write, e.g. file:///lake/raw, s3://bucket/raw, az://raw.")
    format: Literal["parquet", "jsonl", "delta"] = Field(
        "parquet", description="parquet or jsonl files, or delta tables (needed for merge and scd2)."
    )
    layout: str = Field(
        DEFAULT_LAYOUT, description="File layout for parquet / jsonl (placeholders of dlt's filesystem destination)."
    )
    credentials: FileCredentials | None = Field(None, description="Object store credentials, by reference.")

    _bucket = field_validator("bucket_url")(check_bucket_url)


class DatabricksStaging(ConfigModel):
    """Where dlt stages files before COPY INTO: a cloud bucket or a Unity Catalog volume."""

    bucket_url: str | None = Field(None, description="abfss://... or s3://... staging folder.")
    volume: str | None = Field(None, description="Unity Catalog volume, e.g. /Volumes/main/raw/staging.")
    credentials: FileCredentials | None = Field(None, description="Staging credentials, by reference.")

    @model_validator(mode="after")
    def _one_place(self) -> DatabricksStaging:
        if bool(self.bucket_url) == bool(self.volume):
            raise PydanticCustomError(
                "staging_place",
                "staging needs exactly one of bucket_url (e.g. abfss://staging@account.dfs.core.windows.net/dlt) "
                "or volume (e.g. /Volumes/main/raw/staging); found {found}",
                {"found": "both" if self.bucket_url else "neither"},
            )
        return self


class DatabricksDestination(DestinationBase):
    """Databricks Unity Catalog through a SQL warehouse."""

    type: Literal["databricks"] = Field(description="Databricks Unity Catalog.")
    server_hostname: str = Field(description="Workspace host, e.g. adb-123.4.azuredatabricks.net.")
    http_path: str = Field(description="HTTP path of the SQL warehouse, e.g. /sql/1.0/warehouses/abc.")
    catalog: str = Field(description="Unity Catalog catalog to load into.")
    access_token: SecretRef | None = Field(None, description="Reference to a personal access token.")
    client_id: str | None = Field(None, description="OAuth M2M service principal id.")
    client_secret: SecretRef | None = Field(None, description="Reference to the service principal secret.")
    staging: DatabricksStaging | None = Field(None, description="Staging storage for the load.")

    @model_validator(mode="after")
    def _credentials(self) -> DatabricksDestination:
        if not self.access_token and not (self.client_id and self.client_secret):
            raise PydanticCustomError(
                "databricks_auth",
                "databricks needs access_token (e.g. ${secrets.databricks.access_token}), or client_id "
                "and client_secret (OAuth M2M); give one of them",
            )
        return self


DestinationConfig = Annotated[
    DuckDbDestination | FilesystemDestination | DatabricksDestination, Field(discriminator="type")
]
DESTINATION_ADAPTER: TypeAdapter[Any] = TypeAdapter(DestinationConfig, config=ConfigDict(hide_input_in_errors=True))
DESTINATION_TYPES = ("duckdb", "filesystem", "databricks")


def supports_merge(destination: Any) -> bool:
    """dlt merges into files only with the Delta table format."""
    return not (isinstance(destination, FilesystemDestination) and destination.format != "delta")
