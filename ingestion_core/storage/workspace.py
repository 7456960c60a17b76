"""A databricks-sdk ``WorkspaceClient`` for the workspace a Databricks destination file names:
its REST URL (``workspace_url``, default ``https://<server_hostname>``) and its credentials
(personal access token, or OAuth M2M client id / secret), resolved from their references.

Example::

    client = workspace_client(store.load_destination("databricks_prod").config)
    client.current_user.me().user_name
"""

from __future__ import annotations

from typing import Any

from ingestion_core.config.secrets import register_secret, resolve_value

PRODUCT = "ingestion-portal"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PRODUCT)
    except PackageNotFoundError:
        return "0.0.0"


def client_options(destination: Any, timeout_seconds: float | None = None) -> dict[str, Any]:
    """Keyword arguments of the SDK's ``Config`` (secrets resolved: never log them)."""
    options: dict[str, Any] = {"host": destination.rest_url, "product": PRODUCT, "product_version": _version()}
    if destination.access_token:
        options.update(token=resolve_value(destination.access_token), auth_type="pat")
    else:
        options.update(client_id=resolve_value(destination.client_id),
                       client_secret=resolve_value(destination.client_secret), auth_type="oauth-m2m")
    if timeout_seconds:
        options.update(retry_timeout_seconds=int(timeout_seconds), http_timeout_seconds=int(timeout_seconds))
    return options


def workspace_client(destination: Any, timeout_seconds: float | None = None) -> Any:
    """A client of the destination's workspace. ``timeout_seconds`` bounds retries and each
    request (the SDK's default is to retry for 5 minutes)."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    options = client_options(destination, timeout_seconds)
    for key in ("token", "client_secret"):
        if options.get(key):
            register_secret(options[key])
    return WorkspaceClient(config=Config(**options))
