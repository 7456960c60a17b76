"""``ingest secrets push``: copy every secret the config files reference into a Databricks
secret scope or an Azure Key Vault, so that jobs find them there.

The values are read from the local secrets file (``--from``, e.g. the Excel framework's
``.dlt/secrets.toml``), or from the environment and the configured secrets file; they are never
printed. Each value is written under the target's first name style (``ingest secrets push``
prints the key names). Example::

    target = scope_target("dlt-framework", workspace_client(destination))
    for item in push_secrets(ConfigStore(), [TomlFileProvider(Path(".dlt/secrets.toml"))], target):
        print(item.line())
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ingestion_core.config.secrets import SecretProvider, SecretReference, mask, reference_paths, register_secret
from ingestion_core.config.store import ConfigStore, parse_yaml

TARGETS = ("scope", "keyvault")


@dataclass
class PushItem:
    """One referenced secret: where it is used, the name it goes to, what happened."""

    reference: SecretReference
    used_in: list[str] = field(default_factory=list)
    target_name: str = ""
    status: str = ""  # pushed | would push | missing | skipped
    reason: str = ""

    def line(self) -> str:
        where = f" (used in {', '.join(self.used_in[:3])}{' ...' if len(self.used_in) > 3 else ''})"
        arrow = f" -> {self.target_name}" if self.target_name else ""
        reason = f": {self.reason}" if self.reason else ""
        return f"{self.status}: {self.reference.text}{arrow}{reason}{where}"


def referenced_secrets(store: ConfigStore) -> dict[str, PushItem]:
    """Every ``${secrets...}`` / ``${env:...}`` reference of the source and destination files,
    with the ``<file>:<yaml.path>`` places that use it."""
    items: dict[str, PushItem] = {}
    for kind in ("sources", "destinations"):
        folder = store.root / kind
        for path in sorted(folder.glob("*.y*ml")) if folder.is_dir() else []:
            data, issues = parse_yaml(path.read_text(encoding="utf-8"))
            if issues:
                continue
            for where, reference in reference_paths(data):
                item = items.setdefault(reference.text, PushItem(reference))
                item.used_in.append(f"{kind}/{path.name}:{where}")
    return items


def scope_target(scope: str | None, client: Any = None) -> Any:
    """The Databricks secret scope to push to (default: INGEST_DATABRICKS_SECRET_SCOPE, else
    dlt-framework); its client from DATABRICKS_HOST / DATABRICKS_TOKEN ... unless given."""
    from ingestion_core.config.secret_providers import FRAMEWORK_SCOPE, SCOPE_VARIABLE
    from ingestion_core.config.secret_providers.databricks_scope import DatabricksSecretScopeProvider

    return DatabricksSecretScopeProvider(scope or os.environ.get(SCOPE_VARIABLE) or FRAMEWORK_SCOPE, client)


def vault_target(url: str | None, credential: Any = None) -> Any:
    """The Key Vault to push to (default: INGEST_KEY_VAULT_URL, else AZURE_KEY_VAULT_URL)."""
    from ingestion_core.config.secret_providers import FRAMEWORK_VAULT_VARIABLE, VAULT_VARIABLE
    from ingestion_core.config.secret_providers.key_vault import AzureKeyVaultProvider

    url = url or os.environ.get(VAULT_VARIABLE) or os.environ.get(FRAMEWORK_VAULT_VARIABLE)
    if not url:
        raise ValueError(f"no Key Vault to push to: give --vault https://<name>.vault.azure.net, or set "
                         f"{VAULT_VARIABLE} (or {FRAMEWORK_VAULT_VARIABLE})")
    return AzureKeyVaultProvider(url, credential)


def push_secrets(store: ConfigStore, sources: list[SecretProvider], target: Any,
                 dry_run: bool = False) -> list[PushItem]:
    """Copy every referenced secret found in ``sources`` into ``target`` (a provider with
    ``names`` and ``put``); nothing is written when ``dry_run``."""
    items = list(referenced_secrets(store).values())
    if not dry_run and hasattr(target, "ensure_scope") and any(i.reference.kind == "secrets" for i in items):
        target.ensure_scope()
    for item in items:
        _push_one(item, sources, target, dry_run)
    return items


def _push_one(item: PushItem, sources: list[SecretProvider], target: Any, dry_run: bool) -> None:
    if item.reference.kind != "secrets":
        item.status, item.reason = "skipped", "an ${env:...} reference is read from the environment only"
        return
    item.target_name = f"{_label(target)} {target.names(item.reference)[0]}"
    value = _value(item.reference, sources)
    if value is None:
        places = "; ".join(p.describe(item.reference) for p in sources)
        item.status, item.reason = "missing", f"not found in {places}; add it there and push again"
        return
    if dry_run:
        item.status = "would push"
        return
    try:
        target.put(item.reference, value)
    except (ValueError, LookupError) as exc:
        item.status, item.reason = "failed", mask(exc)
        return
    item.status = "pushed"


def _label(target: Any) -> str:
    return f"scope '{target.scope}' key" if hasattr(target, "scope") else f"Key Vault {target.vault_url} secret"


def _value(reference: SecretReference, sources: list[SecretProvider]) -> str | None:
    for provider in sources:
        value = provider.get(reference)
        if value is not None:
            register_secret(value)
            return value
    return None
