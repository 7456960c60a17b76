"""Unity Catalog volumes as an fsspec filesystem: ``volumes://<catalog>/<schema>/<volume>/<path>``
is ``/Volumes/<catalog>/<schema>/<volume>/<path>``, read and written through the workspace's
Files API (databricks-sdk), so the portal can read the run records jobs write on a volume with
``INGEST_RUNS_DIR=volumes://main/ingest/files/runs``.

The client comes from ``DATABRICKS_HOST`` with ``DATABRICKS_TOKEN`` or ``DATABRICKS_CLIENT_ID`` /
``DATABRICKS_CLIENT_SECRET`` (or storage options ``host``, ``token``, ...; or ``client=``).
Importing this module registers the protocol with fsspec; DuckDB needs the filesystem
registered on its connection too (:func:`register_with_duckdb`).

Example::

    fs = VolumeFileSystem(client=workspace_client(destination))
    fs.glob("volumes://main/ingest/files/runs/*/*/*/*.json")
"""

from __future__ import annotations

import io
from typing import Any

import fsspec
from fsspec.spec import AbstractFileSystem

PROTOCOL = "volumes"


def api_path(path: str) -> str:
    """``volumes://a/b/c/x`` or ``a/b/c/x`` -> ``/Volumes/a/b/c/x``."""
    return "/Volumes/" + VolumeFileSystem._strip_protocol(path)


class _Upload(io.BytesIO):
    """A file being written: uploaded whole (one PUT) when closed."""

    def __init__(self, fs: VolumeFileSystem, path: str):
        super().__init__()
        self.fs, self.path = fs, path

    def close(self) -> None:
        if not self.closed:
            self.fs.client.files.upload(api_path(self.path), io.BytesIO(self.getvalue()), overwrite=True)
            self.fs.invalidate_cache()
        super().close()


class VolumeFileSystem(AbstractFileSystem):
    protocol = (PROTOCOL,)
    root_marker = ""
    cachable = False  # the client follows DATABRICKS_* as they are when the filesystem is made

    def __init__(self, client: Any = None, **options: Any):
        super().__init__(client=client, **options)
        self._client = client
        self._options = {k: v for k, v in options.items() if k in ("host", "token", "client_id", "client_secret",
                                                                   "auth_type")}

    @property
    def client(self) -> Any:
        if self._client is None:
            from databricks.sdk import WorkspaceClient

            self._client = WorkspaceClient(**self._options)
        return self._client

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        text = str(path)
        for prefix in (f"{PROTOCOL}://", "/Volumes/"):
            if text.startswith(prefix):
                text = text[len(prefix):]
        return text.strip("/")

    def unstrip_protocol(self, name: str) -> str:
        return f"{PROTOCOL}://{self._strip_protocol(name)}"

    def _entry(self, item: Any) -> dict[str, Any]:
        name = self._strip_protocol(item.path)
        if item.is_directory:
            return {"name": name, "size": 0, "type": "directory"}
        return {"name": name, "size": item.file_size or 0, "type": "file", "mtime": (item.last_modified or 0) / 1000}

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        from databricks.sdk.errors import NotFound

        path = self._strip_protocol(path)
        try:
            entries = [self._entry(e) for e in self.client.files.list_directory_contents(api_path(path))]
        except NotFound:
            entries = [self.info(path)]  # a file lists as itself; FileNotFoundError when neither
        return entries if detail else [e["name"] for e in entries]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        from databricks.sdk.errors import NotFound

        path = self._strip_protocol(path)
        try:
            meta = self.client.files.get_metadata(api_path(path))
            return {"name": path, "size": meta.content_length or 0, "type": "file"}
        except NotFound:
            pass
        try:
            self.client.files.get_directory_metadata(api_path(path))
            return {"name": path, "size": 0, "type": "directory"}
        except NotFound:
            raise FileNotFoundError(f"{PROTOCOL}://{path}") from None

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        from databricks.sdk.errors import NotFound

        try:
            data = self.client.files.download(api_path(path)).contents.read()
        except NotFound:
            raise FileNotFoundError(f"{PROTOCOL}://{self._strip_protocol(path)}") from None
        return data[start:end]

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if "r" in mode:
            return io.BytesIO(self.cat_file(path))
        if "a" in mode or "+" in mode:
            raise ValueError(f"volumes cannot be appended to or updated in place (mode {mode}): write whole files")
        return _Upload(self, self._strip_protocol(path))

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        self.client.files.create_directory(api_path(path))

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        self.mkdir(path)

    def rm_file(self, path: str) -> None:
        from databricks.sdk.errors import NotFound

        try:
            self.client.files.delete(api_path(path))
        except NotFound:
            raise FileNotFoundError(f"{PROTOCOL}://{self._strip_protocol(path)}") from None
        self.invalidate_cache()

    def _rm(self, path: str) -> None:
        self.rm_file(path)


def register_with_duckdb(connection: Any, url: str, **options: Any) -> None:
    """Let a DuckDB connection read ``volumes://`` URLs (other URLs: nothing to do)."""
    if url.startswith(f"{PROTOCOL}://"):
        connection.register_filesystem(fsspec.filesystem(PROTOCOL, **options))


fsspec.register_implementation(PROTOCOL, VolumeFileSystem, clobber=True)
