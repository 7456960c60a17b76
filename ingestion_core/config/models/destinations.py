"""Destination files: ``configs/destinations/<name>.yaml``, one per destination, by ``type``.

Previews always land in a local DuckDB file; these are the destinations of real runs.
"""

from __future__ import annotations

import contextlib
import re
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ingestion_core.config.models.base import ConfigModel, SecretRef
from ingestion_core.config.models.sources import FileCredentials, check_bucket_url

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
    keep_history: bool = Field(
        False, description="Full loads keep the earlier dated folders: each full load writes the dated folder of "
        "the run (layout) and replaces only that folder; quality checks read the newest folder. parquet / jsonl.",
    )

    _bucket = field_validator("bucket_url")(check_bucket_url)

    @model_validator(mode="after")
    def _history_needs_dated_folders(self) -> FilesystemDestination:
        if not self.keep_history:
            return self
        if self.format == "delta":
            raise PydanticCustomError(
                "keep_history_delta", "keep_history keeps dated folders of parquet / jsonl files; Delta tables keep "
                "their earlier versions themselves (time travel); remove keep_history or set format: parquet",
                {"at": "keep_history"},
            )
        problem = dated_folder_problem(self.layout)
        if problem:
            raise PydanticCustomError(
                "keep_history_layout", "keep_history needs a dated folder in layout, but '{layout}' {problem}; "
                "use the default {default}", {"layout": self.layout[:200], "problem": problem,
                                               "default": DEFAULT_LAYOUT, "at": "layout"},
            )
        return self


DATE_PLACEHOLDERS = frozenset({"YYYY", "YY", "Y", "MMMM", "MMM", "MM", "M", "DD", "D", "HH", "H", "mm", "m", "ss",
                               "s", "dddd", "ddd", "dd", "d", "Q", "curr_date", "timestamp", "timestamp_ms"})
"""dlt layout placeholders taken from the run's date and time (dlt's ``current_datetime``)."""
FOLDER_PLACEHOLDERS = DATE_PLACEHOLDERS | {"table_name", "schema_name"}


def dated_folder_problem(layout: str) -> str | None:
    """Why ``layout`` has no folder a full load can own (None when it has one): the folder part
    (before the last ``/``) names the table and a date, and nothing that varies within a run."""
    folder = layout.rsplit("/", 1)[0] if "/" in layout else ""
    names = set(re.findall(r"\{(.*?)\}", folder))
    if "table_name" not in names:
        return "has no {table_name} folder"
    if not names & DATE_PLACEHOLDERS:
        return "has no date in its folders (e.g. {YYYY}/{MM}/{DD})"
    if names - FOLDER_PLACEHOLDERS:
        return f"has {', '.join(sorted(names - FOLDER_PLACEHOLDERS))} in its folders, which change within a run"
    return None


_PART = r"[A-Za-z0-9_][A-Za-z0-9_-]*"
VOLUME_PATTERN = rf"^/Volumes/{_PART}/{_PART}/{_PART}(/\S*)?$"


def _check_volume(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(VOLUME_PATTERN, value.rstrip("/")):
        raise PydanticCustomError(
            "volume_path",
            "'{value}' is not a Unity Catalog volume path: write /Volumes/<catalog>/<schema>/<volume>, "
            "e.g. /Volumes/main/raw/staging",
            {"value": value[:120]},
        )
    return value.rstrip("/") if value else value


class DatabricksStaging(ConfigModel):
    """Where dlt stages files before COPY INTO: a cloud bucket or a Unity Catalog volume."""

    bucket_url: str | None = Field(None, description="abfss://... or s3://... staging folder.")
    volume: str | None = Field(None, description="Unity Catalog volume, e.g. /Volumes/main/raw/staging.")
    credentials: FileCredentials | None = Field(None, description="Staging credentials, by reference.")
    credentials_name: str | None = Field(
        None, description="Unity Catalog storage credential COPY INTO reads the bucket with, instead of "
        "passing the credentials above (bucket_url only).",
    )
    external_location: bool = Field(
        False, description="The bucket is a Unity Catalog external location: COPY INTO reads it with the "
        "warehouse's own grant, no credentials passed (bucket_url only).",
    )

    _volume = field_validator("volume")(_check_volume)

    @model_validator(mode="after")
    def _one_place(self) -> DatabricksStaging:
        if bool(self.bucket_url) == bool(self.volume):
            raise PydanticCustomError(
                "staging_place",
                "staging needs exactly one of bucket_url (e.g. abfss://staging@account.dfs.core.windows.net/dlt) "
                "or volume (e.g. /Volumes/main/raw/staging); found {found}",
                {"found": "both" if self.bucket_url else "neither"},
            )
        if self.bucket_url and not (self.credentials_name or self.external_location):
            _check_copy_into_credentials(self.bucket_url, self.credentials)
        return self


def _check_copy_into_credentials(bucket_url: str, credentials: FileCredentials | None) -> None:
    """COPY INTO can be handed an S3 key pair or an Azure SAS token (made from an account key);
    anything else needs a storage credential or an external location on the Databricks side."""
    scheme = bucket_url.split("://", 1)[0].lower()
    given = {k for k, v in (credentials.model_dump(exclude_none=True) if credentials else {}).items() if v}
    azure_ok = {"azure_storage_account_key", "azure_storage_sas_token", "azure_connection_string"}
    if scheme in ("az", "abfs", "abfss", "adl") and given & azure_ok:
        return
    if scheme == "s3" and "aws_access_key_id" in given:
        return
    raise PydanticCustomError(
        "staging_credentials",
        "COPY INTO cannot read the {scheme}:// staging bucket with {given}: give credentials with an account "
        "key or SAS token (Azure) or an access key (S3), or set credentials_name to a Unity Catalog storage "
        "credential, or external_location: true when the bucket is an external location",
        {"scheme": scheme, "given": ", ".join(sorted(given)) or "no credentials", "at": "credentials"},
    )


class DatabricksTypeMapping(ConfigModel):
    """How source column types are read when loading into Databricks, decided at reflection time
    (before any row is read). Each rule is described in docs/databricks.md."""

    oracle_number: Literal["double", "bigint", "decimal", "string"] = Field(
        "double", description="Oracle NUMBER without precision: double (default), bigint (for whole numbers only: a "
        "fraction is cut off), decimal (DECIMAL(38,10)) or string.",
    )
    oracle_number_with_precision: Literal["decimal", "double"] = Field(
        "decimal", description="Oracle NUMBER(p,s): decimal keeps DECIMAL(p,s) (default), double reads a float.",
    )
    oracle_date: Literal["timestamp", "timestamp_ntz", "date"] = Field(
        "timestamp", description="Oracle DATE (it holds a time of day): timestamp (default, read as UTC), "
        "timestamp_ntz (no time zone) or date (drops the time of day).",
    )
    mssql_time: Literal["string", "time"] = Field(
        "string", description="SQL Server TIME: string 'HH:MM:SS.ffffff' (default); time keeps dlt's time type, "
        "which Databricks cannot load from Parquet.",
    )
    mssql_datetimeoffset: Literal["timestamp", "string"] = Field(
        "timestamp", description="SQL Server DATETIMEOFFSET: timestamp normalised to UTC (default) or string "
        "keeping the original offset.",
    )
    mssql_money: Literal["decimal", "double"] = Field(
        "decimal", description="SQL Server MONEY / SMALLMONEY: DECIMAL(19,4) / DECIMAL(10,4) (default) or double.",
    )
    mssql_uniqueidentifier: Literal["string"] = Field(
        "string", description="SQL Server UNIQUEIDENTIFIER: string (Databricks has no UUID type).",
    )


DATA_SECURITY_MODES = ("SINGLE_USER", "USER_ISOLATION", "DATA_SECURITY_MODE_DEDICATED",
                       "DATA_SECURITY_MODE_STANDARD", "DATA_SECURITY_MODE_AUTO")


class DatabricksCluster(ConfigModel):
    """The job cluster a job run starts (compute: job_cluster). The load runs in Python on the
    driver, so a single node (num_workers: 0) is the usual choice."""

    spark_version: str = Field("15.4.x-scala2.12", description="Databricks Runtime version key.")
    node_type_id: str = Field(
        "Standard_D4ds_v5", description="VM type, e.g. Standard_D4ds_v5 (Azure) or m5d.xlarge (AWS)."
    )
    num_workers: int = Field(0, ge=0, le=100, description="Worker nodes; 0 = a single-node cluster.")
    data_security_mode: Literal[DATA_SECURITY_MODES] = Field(  # type: ignore[valid-type]
        "SINGLE_USER", description="Access mode; a Unity Catalog volume needs SINGLE_USER or USER_ISOLATION.",
    )
    policy_id: str | None = Field(None, description="Cluster policy the job cluster must follow.")


class DatabricksJobs(ConfigModel):
    """How ``ingest deploy`` runs sources as Databricks jobs in this workspace (one job per source)."""

    volume: str = Field(
        description="Unity Catalog volume folder the jobs use: <volume>/configs (read), <volume>/runs (run "
        "records), <volume>/wheels (the package), e.g. /Volumes/main/ingest/files.",
    )
    compute: Literal["job_cluster", "serverless"] = Field(
        "job_cluster", description="job_cluster starts the cluster below for each run; serverless needs "
        "serverless jobs enabled in the workspace.",
    )
    cluster: DatabricksCluster = Field(default_factory=DatabricksCluster, description="The job cluster.")
    serverless_environment_version: str = Field("2", description="Serverless environment version (serverless).")
    secret_scope: str | None = Field(
        None, description="Databricks secret scope the jobs resolve ${secrets.a.b} from (as key a-b).",
    )
    key_vault_url: str | None = Field(
        None, description="Azure Key Vault the jobs resolve ${secrets.a.b} from (as secret a-b), e.g. "
        "https://market-kv.vault.azure.net.",
    )
    notify_on_failure: list[str] = Field(
        default_factory=list, description="E-mail addresses told when a run fails.",
    )
    max_retries: int = Field(
        1, ge=0, le=10, description="Retries of a failed job run. A retry reloads only when the failed attempt "
        "loaded nothing; partial or quality-failed results stand.",
    )
    min_retry_interval_minutes: int = Field(10, ge=0, le=1440, description="Wait before a retry.")
    timeout_minutes: int = Field(0, ge=0, le=10080, description="Longest run before it is cancelled; 0 = no limit.")
    run_as_service_principal: str | None = Field(
        None, description="Application id of the service principal the jobs run as (default: who deploys).",
    )
    job_name_prefix: str = Field("ingest-", description="Job names are <prefix><source name>.")
    tags: dict[str, str] = Field(default_factory=dict, description="Extra tags on every job (and its cluster).")

    _volume = field_validator("volume")(_check_volume)

    @field_validator("notify_on_failure")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        for address in value:
            if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", address):
                raise PydanticCustomError("email", "'{value}' is not an e-mail address", {"value": address[:120]})
        return value


class DatabricksDestination(DestinationBase):
    """Databricks Unity Catalog through a SQL warehouse."""

    type: Literal["databricks"] = Field(description="Databricks Unity Catalog.")
    server_hostname: str = Field(description="Workspace host, e.g. adb-123.4.azuredatabricks.net.")
    http_path: str = Field(description="HTTP path of the SQL warehouse, e.g. /sql/1.0/warehouses/abc.")
    catalog: str = Field(description="Unity Catalog catalog to load into (each source's dataset is a schema).")
    access_token: SecretRef | None = Field(None, description="Reference to a personal access token.")
    client_id: str | None = Field(None, description="OAuth M2M service principal id.")
    client_secret: SecretRef | None = Field(None, description="Reference to the service principal secret.")
    staging: DatabricksStaging | None = Field(None, description="Staging storage for the load.")
    workspace_url: str | None = Field(
        None, description="Workspace URL for the REST API (jobs, secrets, files, warehouse state). "
        "Default: https://<server_hostname>.",
    )
    type_mapping: DatabricksTypeMapping = Field(
        default_factory=DatabricksTypeMapping, description="How Oracle and SQL Server column types land.",
    )
    jobs: DatabricksJobs | None = Field(None, description="Settings of the Databricks jobs `ingest deploy` makes.")

    @model_validator(mode="after")
    def _credentials(self) -> DatabricksDestination:
        if not self.access_token and not (self.client_id and self.client_secret):
            raise PydanticCustomError(
                "databricks_auth",
                "databricks needs access_token (e.g. ${secrets.databricks.access_token}), or client_id "
                "and client_secret (OAuth M2M); give one of them",
            )
        return self

    @property
    def rest_url(self) -> str:
        return (self.workspace_url or f"https://{self.server_hostname}").rstrip("/")


DestinationConfig = Annotated[
    DuckDbDestination | FilesystemDestination | DatabricksDestination, Field(discriminator="type")
]
# defer_build: built only when needed (a rejected file, the JSON Schema); see parse_destination
DESTINATION_ADAPTER: TypeAdapter[Any] = TypeAdapter(
    DestinationConfig, config=ConfigDict(hide_input_in_errors=True, defer_build=True)
)
DESTINATION_TYPES = ("duckdb", "filesystem", "databricks")
DESTINATION_MODELS: dict[str, type[DestinationBase]] = {
    "duckdb": DuckDbDestination, "filesystem": FilesystemDestination, "databricks": DatabricksDestination,
}


def parse_destination(data: Any) -> Any:
    """Validate a destination file's data: a valid one by its own model alone (only that
    model's validator is built), a rejected one by the union, whose errors are located as always."""
    model = DESTINATION_MODELS.get(data.get("type")) if isinstance(data, dict) and isinstance(data.get("type"), str) \
        else None
    if model is not None:
        with contextlib.suppress(ValidationError):
            return model.model_validate(data)
    return DESTINATION_ADAPTER.validate_python(data)


_PLAIN_FILES = "writes plain {format} files, which cannot merge; set format: delta in configs/destinations/{name}.yaml"
MODE_LIMITS: dict[str, tuple[tuple[str, ...], str]] = {
    # dlt merges into files only with the Delta table format
    "parquet": (("full", "append", "incremental"), _PLAIN_FILES),
    "jsonl": (("full", "append", "incremental"), _PLAIN_FILES),
    # dlt's Delta merge strategies are upsert, insert-only and cdc: no scd2
    "delta": (("full", "append", "incremental", "merge"), "writes Delta tables, where dlt merges by upsert and keeps "
              "no scd2 history; set destination to a duckdb or databricks destination"),
}
"""Per file format: the modes a filesystem destination can load, and why not the others (with the fix)."""


def mode_refusal(destination: Any, name: str, mode: str) -> tuple[str, tuple[str, ...]] | None:
    """(why destination ``name`` cannot load a table of ``mode``, with the fix; the modes it can),
    or None when it can."""
    if not isinstance(destination, FilesystemDestination):
        return None
    modes, why = MODE_LIMITS[destination.format]
    return None if mode in modes else (why.format(format=destination.format, name=name), modes)
