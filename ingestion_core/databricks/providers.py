"""The remote providers of the secrets chain, chosen by environment variables:

- ``INGEST_SECRET_PROVIDERS``: a comma-separated list of ``databricks`` and ``azure_keyvault``,
  looked up in that order after the environment and the local secrets file.
- ``INGEST_DATABRICKS_SECRET_SCOPE``: the scope of ``databricks`` (its client: the cluster's
  identity or ``DATABRICKS_HOST`` / ``DATABRICKS_TOKEN`` / ``DATABRICKS_CLIENT_ID`` ...).
- ``INGEST_KEY_VAULT_URL``: the vault of ``azure_keyvault`` (its credential:
  ``DefaultAzureCredential``).

A Databricks job sets them itself (``ingest job-run --secret-scope S --key-vault URL``). The
providers are built once per setting and reused (their clients keep connections and tokens).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

PROVIDERS_VARIABLE = "INGEST_SECRET_PROVIDERS"
SCOPE_VARIABLE = "INGEST_DATABRICKS_SECRET_SCOPE"
VAULT_VARIABLE = "INGEST_KEY_VAULT_URL"


def _secret_scope(setting: str) -> Any:
    from ingestion_core.databricks.secret_scope import DatabricksSecretScopeProvider

    if not setting:
        raise ValueError(f"{PROVIDERS_VARIABLE} names databricks but {SCOPE_VARIABLE} is not set; set it to the "
                         "secret scope to read, e.g. ingest")
    return DatabricksSecretScopeProvider(setting)


def _key_vault(setting: str) -> Any:
    from ingestion_core.databricks.key_vault import AzureKeyVaultProvider

    if not setting:
        raise ValueError(f"{PROVIDERS_VARIABLE} names azure_keyvault but {VAULT_VARIABLE} is not set; set it to "
                         "the vault URL, e.g. https://market-kv.vault.azure.net")
    return AzureKeyVaultProvider(setting)


FACTORIES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "databricks": (SCOPE_VARIABLE, _secret_scope),
    "azure_keyvault": (VAULT_VARIABLE, _key_vault),
}


def configured_providers() -> list[Any]:
    """The providers ``INGEST_SECRET_PROVIDERS`` names, in its order (none when unset)."""
    names = tuple(n.strip() for n in os.environ.get(PROVIDERS_VARIABLE, "").split(",") if n.strip())
    unknown = [n for n in names if n not in FACTORIES]
    if unknown:
        raise ValueError(f"{PROVIDERS_VARIABLE} names unknown providers {', '.join(unknown)}; "
                         f"known: {', '.join(FACTORIES)}")
    host = os.environ.get("DATABRICKS_HOST", "")
    return [_provider(name, os.environ.get(FACTORIES[name][0], ""), host) for name in names]


@functools.cache
def _provider(name: str, setting: str, databricks_host: str) -> Any:
    """One provider per setting (and workspace: a new DATABRICKS_HOST gets a new client)."""
    return FACTORIES[name][1](setting)
