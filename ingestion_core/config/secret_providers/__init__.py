"""The remote providers of the secrets chain, registered with ``ingestion_core.config.secrets``:

- ``databricks``: a Databricks secret scope. Found by itself in a workspace context (a cluster,
  where ``DATABRICKS_RUNTIME_VERSION`` is set): the scope ``INGEST_DATABRICKS_SECRET_SCOPE``
  names, else ``dlt-framework`` (the Excel framework's scope); a discovered scope that does not
  exist is passed over. Its client: the cluster's identity, or ``DATABRICKS_HOST`` /
  ``DATABRICKS_TOKEN`` / ``DATABRICKS_CLIENT_ID`` ...
- ``azure_keyvault``: an Azure Key Vault. Found by itself when ``INGEST_KEY_VAULT_URL`` or
  ``AZURE_KEY_VAULT_URL`` (the Excel framework's variable) holds its URL; its credential:
  ``DefaultAzureCredential``.

``INGEST_SECRET_PROVIDERS`` (see ``ingestion_core.config.secrets``) sets the order, or names the
providers to use: a named one must then have its setting. A Databricks job sets them itself
(``ingest job-run --secret-scope S --key-vault URL``). The providers are built once per setting
and reused (their clients keep connections and tokens).
"""

from __future__ import annotations

import functools
import os
from typing import Any

from ingestion_core.config.secrets import PROVIDERS_VARIABLE, REMOTE_PROVIDERS, default_providers, register_provider

SCOPE_VARIABLE = "INGEST_DATABRICKS_SECRET_SCOPE"
VAULT_VARIABLE = "INGEST_KEY_VAULT_URL"
FRAMEWORK_VAULT_VARIABLE = "AZURE_KEY_VAULT_URL"
RUNTIME_VARIABLE = "DATABRICKS_RUNTIME_VERSION"
FRAMEWORK_SCOPE = "dlt-framework"

__all__ = ["FRAMEWORK_SCOPE", "PROVIDERS_VARIABLE", "SCOPE_VARIABLE", "VAULT_VARIABLE", "configured_providers"]


def _secret_scope(named: bool) -> Any:
    scope = os.environ.get(SCOPE_VARIABLE, "")
    if not scope and not os.environ.get(RUNTIME_VARIABLE):
        if named:
            raise ValueError(f"{PROVIDERS_VARIABLE} names databricks but {SCOPE_VARIABLE} is not set; set it to the "
                             f"secret scope to read, e.g. ingest (on a cluster the default is {FRAMEWORK_SCOPE})")
        return None
    return _provider("databricks", scope or FRAMEWORK_SCOPE, not scope, os.environ.get("DATABRICKS_HOST", ""))


def _key_vault(named: bool) -> Any:
    url = os.environ.get(VAULT_VARIABLE) or os.environ.get(FRAMEWORK_VAULT_VARIABLE, "")
    if named and not url:
        raise ValueError(f"{PROVIDERS_VARIABLE} names azure_keyvault but {VAULT_VARIABLE} is not set; set it to "
                         "the vault URL, e.g. https://market-kv.vault.azure.net")
    return _provider("azure_keyvault", url, False, "") if url else None


@functools.cache
def _provider(name: str, setting: str, discovered: bool, databricks_host: str) -> Any:
    """One provider per setting (and workspace: a new DATABRICKS_HOST gets a new client)."""
    if name == "databricks":
        from ingestion_core.config.secret_providers.databricks_scope import DatabricksSecretScopeProvider

        return DatabricksSecretScopeProvider(setting, required=not discovered)
    from ingestion_core.config.secret_providers.key_vault import AzureKeyVaultProvider

    return AzureKeyVaultProvider(setting)


def configured_providers() -> list[Any]:
    """The remote providers of the chain, in its order."""
    return [p for p in default_providers() if getattr(p, "name", "") in REMOTE_PROVIDERS]


register_provider("databricks", _secret_scope)
register_provider("azure_keyvault", _key_vault)
