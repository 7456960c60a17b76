"""The ``[destination.filesystem]`` section of the Excel framework's secrets file -> a filesystem
destination file (``configs/destinations/<name>.yaml``) that the imported sources load into.

Two shapes are read: dlt's own (``bucket_url``, ``layout``, ``[destination.filesystem.credentials]``
with ``azure_storage_account_name`` / ``azure_storage_account_key`` ...) and the flat one of the
framework (``account_name`` / ``storage_account``, ``container``, ``folder``, ``account_key`` ...,
which make ``abfss://<container>@<account>.dfs.core.windows.net/<folder>``). Secret values become
references to where they are in that file (``${secrets.destination.filesystem.credentials.
azure_storage_account_key}``); every key not used is returned with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ingestion_core.config.models.destinations import DEFAULT_LAYOUT
from ingestion_core.config.models.sources import FileCredentials
from ingestion_core.config.validation import is_secret_field

SECTION = "[destination.filesystem]"
ACCOUNT_KEYS = ("azure_storage_account_name", "account_name", "storage_account", "storage_account_name", "account")
CONTAINER_KEYS = ("container", "container_name", "file_system", "filesystem")
FOLDER_KEYS = ("folder", "base_path", "path", "prefix", "directory")
FORMAT_KEYS = ("format", "loader_file_format", "file_format")
# flat key -> FileCredentials field
CREDENTIAL_ALIASES = {"account_key": "azure_storage_account_key", "sas_token": "azure_storage_sas_token",
                      "connection_string": "azure_connection_string", "tenant_id": "azure_tenant_id",
                      "client_id": "azure_client_id", "client_secret": "azure_client_secret",
                      "blob_endpoint": "endpoint_url"}
SECRET_FIELDS = {name for name, info in FileCredentials.model_fields.items() if is_secret_field(info)}


@dataclass
class ImportedDestination:
    data: dict[str, Any] | None
    dropped: dict[str, str] = field(default_factory=dict)
    problem: str | None = None


def filesystem_section(sections: dict[str, Any]) -> dict[str, Any] | None:
    destination = sections.get("destination")
    section = destination.get("filesystem") if isinstance(destination, dict) else None
    return section if isinstance(section, dict) else None


def destination_from_section(section: dict[str, Any], description: str) -> ImportedDestination:
    """The destination file's data, or the problem that prevents it."""
    result = ImportedDestination(None)
    used: set[str] = set()
    credentials = _credentials(section, used, result)
    url = _bucket_url(section, credentials, used)
    if url is None:
        result.problem = (f"{SECTION} has no bucket_url, nor account_name and container; add bucket_url = "
                          "\"abfss://<container>@<account>.dfs.core.windows.net/<folder>\"")
        return result
    data: dict[str, Any] = {"type": "filesystem", "description": description, "bucket_url": url,
                            "format": "parquet", "layout": DEFAULT_LAYOUT}
    if "layout" in section:
        data["layout"] = str(section["layout"])
        used.add("layout")
    file_format = next((k for k in FORMAT_KEYS if k in section), None)
    if file_format:
        data["format"] = str(section[file_format]).lower()
        used.add(file_format)
    if credentials:
        data["credentials"] = credentials
    for key in section:
        if key not in used:
            result.dropped[key] = "not a setting of a filesystem destination (bucket_url, layout, format, " \
                                  "credentials, or account_name / container / folder)"
    result.data = data
    return result


def _bucket_url(section: dict[str, Any], credentials: dict[str, Any], used: set[str]) -> str | None:
    if "bucket_url" in section:
        used.add("bucket_url")
        return str(section["bucket_url"])
    container_key = next((k for k in CONTAINER_KEYS if k in section), None)
    if not container_key:
        return None
    used.add(container_key)
    folder_key = next((k for k in FOLDER_KEYS if k in section), None)
    folder = str(section[folder_key]).strip("/") if folder_key else ""
    used |= {folder_key} if folder_key else set()
    account = credentials.get("azure_storage_account_name")
    if not account:
        return None
    if credentials.get("endpoint_url"):  # a blob endpoint of its own (private endpoint, Azurite): az://
        return f"az://{section[container_key]}/{folder}".rstrip("/")
    return f"abfss://{section[container_key]}@{account}.dfs.core.windows.net/{folder}".rstrip("/")


def _credentials(section: dict[str, Any], used: set[str], result: ImportedDestination) -> dict[str, Any]:
    credentials: dict[str, Any] = {}
    nested = section.get("credentials")
    if isinstance(nested, dict):
        used.add("credentials")
        for key, value in nested.items():
            _credential(("credentials", key), key, value, credentials, result)
    for key, value in section.items():
        target = "azure_storage_account_name" if key in ACCOUNT_KEYS else CREDENTIAL_ALIASES.get(key, key)
        if target in FileCredentials.model_fields:
            used.add(key)
            _credential((key,), target, value, credentials, result)
    return credentials


def _credential(path: tuple[str, ...], key: str, value: Any, credentials: dict[str, Any],
                result: ImportedDestination) -> None:
    target = CREDENTIAL_ALIASES.get(key, key)
    where = ".".join(path)
    if target not in FileCredentials.model_fields:
        result.dropped[where] = "not a credential of a filesystem destination (azure_storage_account_key, " \
                                "azure_storage_sas_token, azure_connection_string, azure_client_secret ...)"
    elif target in SECRET_FIELDS:
        credentials[target] = "${secrets.destination.filesystem." + where + "}"
    else:
        credentials[target] = str(value)
