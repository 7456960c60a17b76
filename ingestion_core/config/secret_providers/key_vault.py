"""The Azure Key Vault provider of the secrets chain.

``${secrets.a.b}`` is the secret ``a-b`` of the vault; Key Vault names allow only letters,
digits and '-', so '_' becomes '-' (``${secrets.sales_de.password}`` -> ``sales-de-password``).
The vault is read over its REST API (``GET {vault}/secrets/{name}?api-version=7.4``) with a
bearer token from azure-identity: ``DefaultAzureCredential`` by default (a managed identity on
Azure VMs and Databricks clusters, or ``AZURE_CLIENT_ID`` / ``AZURE_CLIENT_SECRET`` /
``AZURE_TENANT_ID`` for a service principal), or any credential passed in. TLS is verified
(``REQUESTS_CA_BUNDLE`` names another CA bundle).

Example::

    provider = AzureKeyVaultProvider("https://market-kv.vault.azure.net")
    provider.get(parse_reference("${secrets.sales_de.password}"))  # secret sales-de-password
"""

from __future__ import annotations

import re
import threading
from typing import Any
from urllib.parse import urlsplit

from ingestion_core.config.secrets import SecretReference, flat_names, mask

API_VERSION = "7.4"
DEFAULT_SCOPE = "https://vault.azure.net/.default"


class KeyVaultError(LookupError):
    """The vault cannot be read or written (not the same as a secret that is not there)."""


def vault_secret_name(reference: SecretReference) -> str:
    """``${secrets.sales_de.password}`` -> ``sales-de-password`` (the first name style's name)."""
    return vault_secret_names(reference)[0]


def vault_secret_names(reference: SecretReference) -> list[str]:
    """Every name looked up, one per name style (``${secrets.sources.pg.password}``:
    ``sources-pg-password``, then ``pg-password``)."""
    return flat_names(reference, AzureKeyVaultProvider.name, lambda parts: re.sub(r"[^A-Za-z0-9-]", "-",
                                                                                  "-".join(parts)))


def token_scope(vault_url: str) -> str:
    """The vault's token audience: https://vault.azure.net for <name>.vault.azure.net, the
    sovereign clouds' own (vault.azure.cn, vault.usgovcloudapi.net...) likewise."""
    host = urlsplit(vault_url).hostname or ""
    _, _, suffix = host.partition(".")
    return f"https://{suffix}/.default" if suffix.startswith("vault.") else DEFAULT_SCOPE


class AzureKeyVaultProvider:
    name = "azure_keyvault"

    def __init__(self, vault_url: str, credential: Any = None, timeout_seconds: float = 15.0):
        if not vault_url.startswith("https://"):
            raise ValueError(f"Key Vault URL '{vault_url}' must start with https:// (e.g. "
                             "https://market-kv.vault.azure.net)")
        self.vault_url = vault_url.rstrip("/")
        self.timeout = timeout_seconds
        self._credential = credential
        self._lock = threading.Lock()
        self._session: Any = None

    def _token(self) -> str:
        with self._lock:
            if self._credential is None:
                from azure.identity import DefaultAzureCredential

                self._credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
            credential = self._credential
        try:
            return credential.get_token(token_scope(self.vault_url)).token
        except Exception as exc:
            raise KeyVaultError(f"cannot get a token for Key Vault {self.vault_url}: {mask(exc)[:300]}. Sign the "
                                "machine in to Azure (managed identity) or set AZURE_CLIENT_ID, AZURE_CLIENT_SECRET "
                                "and AZURE_TENANT_ID") from None

    def _request(self, method: str, name: str, **kwargs: Any) -> Any:
        import requests

        with self._lock:
            self._session = self._session or requests.Session()
        url = f"{self.vault_url}/secrets/{name}?api-version={API_VERSION}"
        try:
            return self._session.request(method, url, headers={"Authorization": f"Bearer {self._token()}"},
                                         timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise KeyVaultError(f"Key Vault {self.vault_url} cannot be reached: {mask(exc)[:300]}") from None

    def names(self, reference: SecretReference) -> list[str]:
        return vault_secret_names(reference)

    def describe(self, reference: SecretReference) -> str:
        return f"Azure Key Vault {self.vault_url} secret {' or '.join(vault_secret_names(reference))}"

    def get(self, reference: SecretReference) -> str | None:
        if reference.kind != "secrets":
            return None
        for name in vault_secret_names(reference):
            response = self._request("GET", name)
            if response.status_code == 404:
                continue
            self._raise_for(response, "read", reference)
            return response.json().get("value")
        return None

    def put(self, reference: SecretReference, value: str) -> None:
        if reference.kind != "secrets":
            raise ValueError(f"{reference.text}: only ${{secrets...}} references can be written")
        self._raise_for(self._request("PUT", vault_secret_name(reference), json={"value": value}), "write",
                        reference)

    def _raise_for(self, response: Any, action: str, reference: SecretReference) -> None:
        if response.status_code < 300:
            return
        try:
            detail = response.json().get("error", {}).get("message", "")
        except ValueError:
            detail = response.text[:200]
        hint = " (the identity needs the Key Vault Secrets User role, or Officer to write)" \
            if response.status_code in (401, 403) else ""
        raise KeyVaultError(f"cannot {action} {self.describe(reference)}: HTTP {response.status_code} "
                            f"{mask(detail)}{hint}")
