"""Connection models, one per source ``type``. Tables are described in ``tables:`` beside them.

Database sources take discrete fields (host, port, database, username, password) or a whole
SQLAlchemy ``url``; a password only ever as a reference.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ingestion_core.config.models.base import (
    ConfigModel,
    ConnectionUrl,
    SecretRef,
    check_credential_keys,
    url_credential_problem,
)
from ingestion_core.config.models.rest import RestApiConnection


class DatabaseConnection(ConfigModel):
    """Fields shared by the server databases."""

    default_port: ClassVar[int] = 0

    url: ConnectionUrl | None = Field(
        None,
        description="A whole SQLAlchemy URL instead of the fields below, e.g. "
        "postgresql+psycopg2://app:${secrets.sales.password}@db:5432/sales.",
    )
    host: str | None = Field(None, description="Server host name or IP address.")
    port: int | None = Field(None, ge=1, le=65535, description="Server port. Default: the usual port of the database.")
    database: str | None = Field(None, description="Database to read from.")
    username: str | None = Field(None, description="User name (plain text or a reference).")
    password: SecretRef | None = Field(None, description="Reference to the password, e.g. ${secrets.sales.password}.")
    connect_timeout_seconds: int = Field(15, ge=1, le=600, description="Give up connecting after this long.")
    options: dict[str, str] = Field(
        default_factory=dict, description="Extra driver options passed in the URL query (e.g. sslmode: require)."
    )

    @field_validator("options")
    @classmethod
    def _no_credentials_in_options(cls, value: dict[str, str]) -> dict[str, str]:
        return check_credential_keys(value, "options")

    @model_validator(mode="after")
    def _url_or_fields(self) -> DatabaseConnection:
        if self.url and (self.host or self.database):
            raise PydanticCustomError(
                "url_and_fields",
                "give either url or host / database, not both; remove url or remove host and database",
                {"at": "url"},
            )
        if not self.url:
            missing = [f for f in self.required_fields() if not getattr(self, f)]
            if missing:
                raise PydanticCustomError(
                    "missing_connection",
                    "{missing} missing: fill {missing}, or give the whole connection as url",
                    {"missing": " and ".join(missing), "at": missing[0]},
                )
        return self

    def required_fields(self) -> tuple[str, ...]:
        return ("host", "database")

    def effective_port(self) -> int:
        return self.port or self.default_port


class PostgresSource(DatabaseConnection):
    """PostgreSQL (and compatible servers)."""

    type: Literal["postgres"] = Field(description="PostgreSQL.")
    default_port: ClassVar[int] = 5432


class MySqlSource(DatabaseConnection):
    """MySQL or MariaDB, read through PyMySQL."""

    type: Literal["mysql"] = Field(description="MySQL or MariaDB.")
    default_port: ClassVar[int] = 3306


class SqlServerOptions(DatabaseConnection):
    """ODBC settings SQL Server and Azure SQL share."""

    default_port: ClassVar[int] = 1433
    driver: str = Field("ODBC Driver 18 for SQL Server", description="Name of the installed ODBC driver.")
    encrypt: bool = Field(True, description="Encrypt the connection.")
    trust_server_certificate: bool = Field(False, description="Accept a self-signed server certificate.")


class MsSqlSource(SqlServerOptions):
    """Microsoft SQL Server, read through pyodbc and Microsoft's ODBC driver."""

    type: Literal["mssql"] = Field(description="Microsoft SQL Server.")
    trusted_connection: bool = Field(
        False, description="Windows authentication (Trusted_Connection=yes): sign in as the account the "
        "process runs as (Kerberos on Linux); leave username and password out.",
    )

    @model_validator(mode="after")
    def _windows_or_sql_login(self) -> MsSqlSource:
        if self.trusted_connection and (self.username or self.password):
            raise PydanticCustomError(
                "trusted_with_login",
                "trusted_connection: true signs in with the Windows account the process runs as; remove "
                "username and password, or set trusted_connection: false to use the SQL login",
                {"at": "trusted_connection"},
            )
        return self


class AzureSqlSource(SqlServerOptions):
    """Azure SQL Database, with a SQL login or an Entra ID service principal."""

    type: Literal["azure_sql"] = Field(description="Azure SQL Database.")
    authentication: Literal["sql_password", "service_principal", "managed_identity"] = Field(
        "sql_password", description="How to sign in."
    )
    tenant_id: str | None = Field(None, description="Entra ID tenant (service_principal).")
    client_id: str | None = Field(None, description="Application (client) id (service_principal).")
    client_secret: SecretRef | None = Field(None, description="Reference to the client secret (service_principal).")

    @field_validator("host")
    @classmethod
    def _azure_host(cls, value: str | None) -> str | None:
        if value and "." not in value:
            return f"{value}.database.windows.net"
        return value

    @model_validator(mode="after")
    def _auth_fields(self) -> AzureSqlSource:
        needed_by = {
            "sql_password": ("username", "password"),
            "service_principal": ("tenant_id", "client_id", "client_secret"),
            "managed_identity": (),
        }
        needed = needed_by[self.authentication]
        missing = [f for f in needed if not getattr(self, f)]
        if missing and not self.url:
            raise PydanticCustomError(
                "missing_auth",
                "authentication {auth} needs {missing}; add {missing}, or choose another authentication "
                "({valid})",
                {"auth": self.authentication, "missing": ", ".join(missing), "at": missing[0],
                 "valid": ", ".join(needed_by)},
            )
        return self


class OracleSource(DatabaseConnection):
    """Oracle Database through python-oracledb (thin mode: no Oracle client needed)."""

    type: Literal["oracle"] = Field(description="Oracle Database.")
    default_port: ClassVar[int] = 1521
    service_name: str | None = Field(None, description="Service name, e.g. ORCLPDB1 (or give sid).")
    sid: str | None = Field(None, description="SID of older databases (or give service_name).")
    thick_mode: bool = Field(False, description="Use the Oracle Instant Client (needed by a few old servers).")

    def required_fields(self) -> tuple[str, ...]:
        return ("host",)

    @model_validator(mode="after")
    def _service_or_sid(self) -> OracleSource:
        if self.url:
            return self
        if bool(self.service_name) == bool(self.sid):
            raise PydanticCustomError(
                "service_or_sid",
                "oracle needs exactly one of service_name or sid (found {found}); {fix}",
                {"found": "both" if self.service_name else "neither",
                 "fix": "remove one of them" if self.service_name else "set service_name (or sid on old servers)",
                 "at": "sid" if self.service_name else "service_name"},
            )
        return self


class SqliteSource(ConfigModel):
    """A SQLite database file."""

    type: Literal["sqlite"] = Field(description="SQLite file.")
    path: str = Field(min_length=1, description="Path of an existing .sqlite file (relative to the project folder); "
                                                 "it is opened read-only.")


FS_SCHEMES = ("file", "s3", "az", "abfs", "abfss", "gs", "gcs")


class FileCredentials(ConfigModel):
    """Credentials of an object store; leave out for local files or ambient credentials."""

    aws_access_key_id: str | None = Field(None, description="S3 access key id.")
    aws_secret_access_key: SecretRef | None = Field(None, description="Reference to the S3 secret key.")
    region_name: str | None = Field(None, description="S3 region.")
    endpoint_url: str | None = Field(
        None, description="Custom endpoint: S3-compatible storage (MinIO, moto, ...) or an Azure blob endpoint "
        "(Azurite: http://127.0.0.1:10000/devstoreaccount1, private endpoints).")
    azure_storage_account_name: str | None = Field(None, description="Azure storage account.")
    azure_storage_account_key: SecretRef | None = Field(None, description="Reference to the account key.")
    azure_storage_sas_token: SecretRef | None = Field(None, description="Reference to a SAS token.")
    azure_connection_string: SecretRef | None = Field(None, description="Reference to a connection string.")
    azure_tenant_id: str | None = Field(None, description="Service principal tenant.")
    azure_client_id: str | None = Field(None, description="Service principal client id.")
    azure_client_secret: SecretRef | None = Field(None, description="Reference to the client secret.")
    gcp_project_id: str | None = Field(None, description="GCS project.")
    gcp_client_email: str | None = Field(None, description="Service account e-mail.")
    gcp_private_key: SecretRef | None = Field(None, description="Reference to the service account key.")


def check_bucket_url(value: str) -> str:
    scheme = value.split("://", 1)[0].lower() if "://" in value else "file"
    if scheme not in FS_SCHEMES:
        raise PydanticCustomError(
            "bad_scheme",
            "bucket_url scheme '{scheme}' is not supported; use one of {valid} (or a local path)",
            {"scheme": scheme, "valid": ", ".join(f"{s}://" for s in FS_SCHEMES)},
        )
    if url_credential_problem(value):
        raise PydanticCustomError(
            "secret_literal",
            "bucket_url holds {problem}; remove it from the URL and give it under credentials as a "
            "reference, e.g. ${secrets.<source>.azure_storage_account_key}",
            {"problem": url_credential_problem(value)},
        )
    return value


class FilesystemSource(ConfigModel):
    """Files (CSV, JSONL, Parquet) on local disk, ADLS / Azure Blob, S3 or GCS."""

    type: Literal["filesystem"] = Field(description="Files on disk or object storage.")
    bucket_url: str = Field(
        description="Folder or bucket, e.g. file:///data/in, s3://bucket/in, az://container/in, "
        "abfss://container@account.dfs.core.windows.net/in, gs://bucket/in or a local path."
    )
    credentials: FileCredentials | None = Field(None, description="Object store credentials, by reference.")

    _bucket = field_validator("bucket_url")(check_bucket_url)


class RestApiSource(RestApiConnection):
    """A REST API; each entry of tables is a resource (endpoint)."""

    type: Literal["rest_api"] = Field(description="REST API.")


SOURCE_MODELS: dict[str, type[ConfigModel]] = {
    m.model_fields["type"].annotation.__args__[0]: m  # type: ignore[union-attr]
    for m in (PostgresSource, MySqlSource, MsSqlSource, AzureSqlSource, OracleSource,
              SqliteSource, RestApiSource, FilesystemSource)
}
SQL_SOURCE_TYPES = ("postgres", "mysql", "mssql", "azure_sql", "oracle", "sqlite")
