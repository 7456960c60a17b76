"""The Databricks secret-scope provider of the secrets chain.

``${secrets.a.b}`` is the key ``a-b`` of the scope (Databricks keys are flat; with the
``framework`` name style ``${secrets.sources.a.b}`` is also ``a-b``, see ``ingestion_core.config.secrets``);
``${env:...}`` references are not looked up here. On a cluster, the client authenticates as the job's
identity (the runtime provides it); elsewhere from ``DATABRICKS_HOST`` with ``DATABRICKS_TOKEN``
or ``DATABRICKS_CLIENT_ID`` / ``DATABRICKS_CLIENT_SECRET``, or with a client given explicitly.

Example::

    provider = DatabricksSecretScopeProvider("ingest", client)
    store_secret("${secrets.sales_de.password}", typed_value, provider=provider)  # key sales_de-password
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from typing import Any

from ingestion_core.config.secrets import SecretReference, flat_names, mask


class SecretScopeError(LookupError):
    """The scope cannot be read or written (not the same as a key that is not there)."""


def flat_key(reference: SecretReference) -> str:
    """``${secrets.a.b}`` -> ``a-b`` (the ``path`` name style)."""
    return "-".join(reference.parts)


class DatabricksSecretScopeProvider:
    """Reads (and writes) one Databricks secret scope through databricks-sdk. A scope that is
    not ``required`` (found by discovery) and does not exist holds nothing, rather than being an error."""

    name = "databricks"

    def __init__(self, scope: str, client: Any = None, client_factory: Callable[[], Any] | None = None,
                 required: bool = True):
        self.scope = scope
        self.required = required
        self._client = client
        self._factory = client_factory
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                if self._factory:
                    self._client = self._factory()
                else:
                    from databricks.sdk import WorkspaceClient

                    self._client = WorkspaceClient()  # the cluster's identity, or DATABRICKS_* variables
            return self._client

    def keys(self, reference: SecretReference) -> list[str]:
        """The keys looked up, in order (one per name style); a value is written under the first."""
        return flat_names(reference, self.name, "-".join)

    names = keys

    def describe(self, reference: SecretReference) -> str:
        return f"Databricks secret scope '{self.scope}' key {' or '.join(self.keys(reference))}"

    def get(self, reference: SecretReference) -> str | None:
        if reference.kind != "secrets":
            return None
        for key in self.keys(reference):
            value = self._get(reference, key)
            if value is not None:
                return value
        return None

    def _get(self, reference: SecretReference, key: str) -> str | None:
        from databricks.sdk.errors import NotFound

        try:
            answer = self.client.secrets.get_secret(self.scope, key)
        except NotFound:
            if not self.scope_exists():
                if not self.required:
                    return None
                raise SecretScopeError(f"the Databricks secret scope '{self.scope}' does not exist; create it "
                                       f"(databricks secrets create-scope {self.scope})") from None
            return None
        except Exception as exc:  # auth, network: say so rather than "not set"
            raise SecretScopeError(f"cannot read {self.describe(reference)}: {mask(exc)}") from None
        return base64.b64decode(answer.value).decode("utf-8") if answer.value is not None else None

    def scope_exists(self) -> bool:
        try:
            return any(s.name == self.scope for s in self.client.secrets.list_scopes())
        except Exception as exc:
            raise SecretScopeError(f"cannot list the Databricks secret scopes: {mask(exc)}") from None

    def put(self, reference: SecretReference, value: str) -> None:
        """Store a value (the portal's forms do, for a typed password)."""
        if reference.kind != "secrets":
            raise ValueError(f"{reference.text}: only ${{secrets...}} references can be written")
        try:
            self.client.secrets.put_secret(self.scope, self.keys(reference)[0], string_value=value)
        except Exception as exc:
            raise SecretScopeError(f"cannot write {self.describe(reference)}: {mask(exc)}") from None

    def ensure_scope(self) -> bool:
        """Create the scope when missing (needs the workspace's permission to); True if created."""
        if self.scope_exists():
            return False
        self.client.secrets.create_scope(self.scope)
        return True
