"""The ``ingest secrets`` commands (see docs/migrating-from-excel.md):

    ingest secrets push --to scope|keyvault [--from .dlt/secrets.toml] [--dry-run]
                        [--scope S] [--vault URL] [--workspace DESTINATION]

``push`` copies every value the config files reference into the scope or the vault; it prints
one line per reference (its key name, never its value). Exit 0 when every referenced secret was
pushed (or, with ``--dry-run``, could be), else 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ingestion_core.config.secrets import EnvironmentProvider, SecretProvider, TomlFileProvider
from ingestion_core.config.store import ConfigStore


def _target(args: argparse.Namespace) -> Any:
    from ingestion_core.databricks.secrets_push import scope_target, vault_target

    if args.to == "keyvault":
        return vault_target(args.vault)
    client = None
    if args.workspace:
        from ingestion_core.storage.workspace import workspace_client

        client = workspace_client(ConfigStore().load_destination(args.workspace).config)
    return scope_target(args.scope, client)


def _sources(args: argparse.Namespace) -> list[SecretProvider]:
    if args.source_file:
        path = Path(args.source_file)
        if not path.is_file():
            raise FileNotFoundError(f"--from {path}: no such file; give the secrets file holding the values "
                                    "(e.g. .dlt/secrets.toml)")
        return [TomlFileProvider(path)]
    return [EnvironmentProvider(), TomlFileProvider()]


def cmd_secrets_push(args: argparse.Namespace) -> int:
    from ingestion_core.config.secret_providers.databricks_scope import SecretScopeError
    from ingestion_core.databricks.secrets_push import push_secrets

    try:
        items = push_secrets(ConfigStore(), _sources(args), _target(args), dry_run=args.dry_run)
    except SecretScopeError as exc:
        raise SecretScopeError(f"{str(exc).rstrip('.')}. Sign in to the workspace: set DATABRICKS_HOST and "
                               "DATABRICKS_TOKEN (or DATABRICKS_CLIENT_ID / DATABRICKS_CLIENT_SECRET), or give "
                               "--workspace <a databricks destination>") from None
    for item in items:
        print(item.line())
    counts: dict[str, int] = {}
    for item in items:
        counts[item.status] = counts.get(item.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in counts.items()) or "no secret references found"
    print(f"{'dry run: ' if args.dry_run else ''}{summary}", file=sys.stderr)
    return 1 if counts.get("missing") or counts.get("failed") else 0


def add_secrets_commands(sub: Any, commands: dict[str, Callable[[argparse.Namespace], int]]) -> None:
    """Adds ``ingest secrets push`` to the ``ingest`` parser."""
    p = sub.add_parser("secrets", help="copy the secrets the configs reference into a Databricks scope or Key Vault")
    actions = p.add_subparsers(dest="secrets_command", required=True, metavar="ACTION")
    push = actions.add_parser("push", help="push every referenced secret (values are never printed)")
    push.add_argument("--to", required=True, choices=("scope", "keyvault"), help="where to copy the values")
    push.add_argument("--from", dest="source_file",
                      help="secrets file to read the values from (default: the environment and the local secrets "
                      "file)")
    push.add_argument("--dry-run", action="store_true", help="list the keys that would be written; write nothing")
    push.add_argument("--scope", help="Databricks secret scope (default: $INGEST_DATABRICKS_SECRET_SCOPE, else "
                      "dlt-framework)")
    push.add_argument("--vault", help="Key Vault URL (default: $INGEST_KEY_VAULT_URL, else $AZURE_KEY_VAULT_URL)")
    push.add_argument("--workspace", help="a Databricks destination whose workspace holds the scope (default: "
                      "DATABRICKS_HOST / DATABRICKS_TOKEN ...)")
    commands["secrets"] = cmd_secrets_push
