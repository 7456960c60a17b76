"""Databricks Unity Catalog through dlt's databricks destination.

- Credentials by reference: a personal access token, or an OAuth M2M service principal
  (client id / secret).
- Catalog from the destination file; each source's dataset becomes a schema in it.
- Staging: a cloud bucket (ADLS / S3) with its own credentials (e.g. a storage account in
  another tenant: COPY INTO gets a SAS token made from its key), a Unity Catalog storage
  credential, an external location, or a Unity Catalog volume (dlt PUTs the files there).
- The destination's ``type_mapping`` is put in force for the Oracle / SQL Server type
  adapters (``ingestion_core.typemap.databricks``).

:func:`test_connection` checks the workspace, the SQL warehouse, the staging volume and the
SQL driver, and says which one fails and what to do.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from ingestion_core.config.secrets import mask, resolve_value
from ingestion_core.engine.destinations import DestinationPlan, register_destination
from ingestion_core.engine.sources import ConnectionReport
from ingestion_core.storage.object_stores import file_credentials
from ingestion_core.typemap.databricks import use_type_mapping

DRIVER_INSTALL = "pip install 'dlt[databricks]==1.31.0' (it brings databricks-sql-connector)"
_WAREHOUSE_PATH = re.compile(r"^/sql/1\.0/(?:warehouses|endpoints)/(?P<id>[A-Za-z0-9]+)/?$")


def volume_name(volume: str) -> str:
    """/Volumes/main/raw/staging -> main.raw.staging (how dlt names a staging volume)."""
    parts = volume.strip("/").split("/")
    return ".".join(parts[1:4])


def _credential_values(config: Any) -> dict[str, Any]:
    """dlt's databricks credentials, references resolved (never log them)."""
    return resolve_value(config.model_dump(exclude_none=True, include={
        "server_hostname", "http_path", "catalog", "access_token", "client_id", "client_secret"}))


@register_destination("databricks")
def build(name: str, config: Any) -> DestinationPlan:
    import dlt

    use_type_mapping(config.type_mapping)
    values = _credential_values(config)
    staging = None
    kwargs: dict[str, Any] = {}
    if config.staging and config.staging.bucket_url:
        staging = dlt.destinations.filesystem(
            bucket_url=config.staging.bucket_url,
            credentials=file_credentials(config.staging.credentials, config.staging.bucket_url),
        )
        if config.staging.credentials_name:
            kwargs["staging_credentials_name"] = config.staging.credentials_name
        kwargs["is_staging_external_location"] = config.staging.external_location
    elif config.staging and config.staging.volume:
        kwargs["staging_volume_name"] = volume_name(config.staging.volume)
    destination = dlt.destinations.databricks(credentials=values, destination_name=name, **kwargs)
    return DestinationPlan(
        name=name, type="databricks", destination=destination, staging=staging,
        location=f"{config.server_hostname}/{config.catalog}",
    )


# --- test connection -----------------------------------------------------------------------

class CheckFailed(Exception):
    def __init__(self, reason: str, mitigation: str):
        super().__init__(reason)
        self.reason, self.mitigation = reason, mitigation


def test_connection(config: Any, timeout_seconds: float = 20.0) -> ConnectionReport:
    """Workspace (credentials), SQL warehouse, staging volume, SQL driver, then ``SELECT 1``:
    ok, or the first that fails with what to do. ``details`` lists every check."""
    started = time.monotonic()
    checks: list[dict[str, Any]] = []
    state: dict[str, Any] = {}
    steps: list[tuple[str, Callable[[], str]]] = [
        ("workspace", lambda: _check_workspace(config, timeout_seconds, state)),
        ("warehouse", lambda: _check_warehouse(config, state)),
        ("staging", lambda: _check_staging(config, state)),
        ("driver", _check_driver),
        ("query", lambda: _check_query(config, timeout_seconds)),
    ]
    failure: CheckFailed | None = None
    for name, step in steps:
        if failure and name in ("warehouse", "staging", "query"):
            checks.append({"check": name, "ok": None, "detail": "not checked"})
            continue
        try:
            checks.append({"check": name, "ok": True, "detail": mask(step())})
        except CheckFailed as exc:
            checks.append({"check": name, "ok": False, "detail": mask(exc.reason)})
            failure = failure or exc
    details = {"checks": checks}
    if failure:
        return ConnectionReport(False, failure.reason, failure.mitigation, time.monotonic() - started, details)
    return ConnectionReport(True, "connected", "", time.monotonic() - started, details)


def _api_failure(what: str, exc: Exception, url: str) -> CheckFailed:
    from databricks.sdk import errors

    text = mask(f"{type(exc).__name__}: {exc}")[:400]
    if isinstance(exc, (errors.Unauthenticated, errors.PermissionDenied)) or "401" in text or "403" in text:
        return CheckFailed(f"the workspace {url} refused the credentials ({text})",
                           "check access_token, or client_id and client_secret, and the references they point to; "
                           "the service principal must be added to the workspace")
    if isinstance(exc, errors.NotFound):
        return CheckFailed(f"{what} not found ({text})", "check the value in the destination file")
    return CheckFailed(f"the workspace {url} cannot be reached ({text})",
                       "check server_hostname (or workspace_url), and that this machine can reach the "
                       "workspace (network, proxy, firewall)")


def _check_workspace(config: Any, timeout_seconds: float, state: dict[str, Any]) -> str:
    from ingestion_core.storage.workspace import workspace_client

    try:
        client = workspace_client(config, timeout_seconds=timeout_seconds)
        me = client.current_user.me()
    except Exception as exc:  # the SDK raises ValueError, TimeoutError, requests and API errors
        raise _api_failure("the workspace", exc, config.rest_url) from None
    state["client"] = client
    return f"signed in to {config.rest_url} as {me.user_name or me.display_name or me.id}"


def _check_warehouse(config: Any, state: dict[str, Any]) -> str:
    match = _WAREHOUSE_PATH.match(config.http_path)
    if not match:
        return f"http_path {config.http_path} is not a SQL warehouse path; not checked"
    try:
        warehouse = state["client"].warehouses.get(match["id"])
    except Exception as exc:
        failure = _api_failure(f"SQL warehouse {match['id']}", exc, config.rest_url)
        if "not found" in failure.reason:
            raise CheckFailed(f"there is no SQL warehouse {match['id']} in {config.rest_url}",
                              "copy http_path from the warehouse's Connection details tab") from None
        raise failure from None
    status = warehouse.state.value if warehouse.state else "UNKNOWN"
    if status in ("DELETED", "DELETING"):
        raise CheckFailed(f"SQL warehouse {warehouse.name or match['id']} is {status}",
                          "choose a running warehouse and copy its http_path")
    note = " (it starts on the first query)" if status in ("STOPPED", "STOPPING") else ""
    return f"SQL warehouse {warehouse.name or match['id']} is {status}{note}"


def _check_staging(config: Any, state: dict[str, Any]) -> str:
    if not config.staging:
        return "no staging configured: dlt creates the volume _dlt_staging_load_volume in each dataset"
    if config.staging.bucket_url:
        return f"staging bucket {config.staging.bucket_url}: not checked from here"
    try:
        state["client"].files.get_directory_metadata(config.staging.volume)
    except Exception as exc:
        failure = _api_failure(f"staging volume {config.staging.volume}", exc, config.rest_url)
        if "not found" in failure.reason:
            raise CheckFailed(f"the staging volume {config.staging.volume} does not exist",
                              f"create it: CREATE VOLUME {volume_name(config.staging.volume)}") from None
        raise failure from None
    return f"staging volume {config.staging.volume} exists"


def _check_driver() -> str:
    try:
        import databricks.sql  # noqa: F401
    except ImportError:
        raise CheckFailed("the Databricks SQL driver (databricks-sql-connector) is not installed",
                          f"install it: {DRIVER_INSTALL}") from None
    return "databricks-sql-connector is installed"


def _check_query(config: Any, timeout_seconds: float = 20.0) -> str:
    """``SELECT 1`` through the SQL driver, bounded: the driver would otherwise retry for 15 minutes."""
    from databricks import sql
    from dlt.destinations.impl.databricks.configuration import DatabricksCredentials

    credentials = DatabricksCredentials(**_credential_values(config))
    params = {**credentials.to_connector_params(), **query_limits(timeout_seconds)}
    if "credentials_provider" in params:  # OAuth M2M: dlt's token client would retry for 5 minutes
        params["credentials_provider"] = _oauth_headers(config, timeout_seconds)
    try:
        with sql.connect(**params) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchall()
    except Exception as exc:
        raise CheckFailed(f"the SQL warehouse at {config.server_hostname}{config.http_path} did not answer SELECT 1 "
                          f"({mask(f'{type(exc).__name__}: {exc}')[:300]})",
                          "check server_hostname and http_path, that this machine can reach the warehouse (port "
                          "443), that it is running and that the identity may use it (CAN USE permission)") from None
    return "SELECT 1 answered"


def _oauth_headers(config: Any, timeout_seconds: float) -> Callable[[], Any]:
    """The SQL driver's ``credentials_provider`` for a service principal, with bounded retries."""
    from databricks.sdk.config import Config
    from databricks.sdk.credentials_provider import oauth_service_principal

    from ingestion_core.storage.workspace import client_options

    options = client_options(config, timeout_seconds)
    options["host"] = f"https://{config.server_hostname}"  # where the warehouse is, as dlt does
    return lambda: oauth_service_principal(Config(**options))


def query_limits(timeout_seconds: float) -> dict[str, Any]:
    """The SQL driver's socket timeout and retry bounds for a check that must answer soon."""
    seconds = max(1.0, float(timeout_seconds))
    return {"_socket_timeout": seconds, "_retry_stop_after_attempts_count": 1,
            "_retry_stop_after_attempts_duration": seconds, "_retry_delay_max": 5.0, "enable_telemetry": False}
