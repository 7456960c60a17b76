"""Object-store emulators for the integration tests, started by the tests themselves on loopback.

Fixtures (load with ``pytest_plugins = ["tests.objectstores"]`` in a test module):

- ``s3_server`` (session): moto's server (``python -m moto.server``) on 127.0.0.1:<free port>, with
  request signing enforced: an IAM user and its access key are created at start (moto generates
  both halves), then moto's auth is switched on, so a wrong secret key is refused like on AWS.
  A process of its own, not ``ThreadedMotoServer``: deltalake holds the GIL while it calls S3.
- ``azurite`` (session): Azurite's blob service (npm package, pinned in tests/node/package.json)
  on 127.0.0.1:<free port>. The account is the published development account ``devstoreaccount1``
  and its well-known key.

Each runs in its own process group under /tmp/ingest-test-<kind>-* (log included), is killed at
session end, and one left behind by a killed pytest is stopped by the next session.

Both expose a bucket / container creator, an uploader and :meth:`credentials`, which writes the
secret half into the test's secrets file (``store_secret``: INGEST_SECRETS_FILE points into the
test's temp project) and returns the ``credentials:`` block of a config, holding references only.
Call it from a test (or a function fixture), never from a session fixture.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, skip_or_fail
from tests.security.scanner import register_secret
from tests.services import _log_tail, _make_base, _reap_stale, _set_pdeathsig, free_port, remove_service_dir

START_TIMEOUT = 30.0  # seconds; Azurite answers in about 1.5 s
AZURITE_BIN = REPO / "tests" / "node" / "node_modules" / ".bin" / "azurite-blob"
AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's published development key (not a secret: it is in Microsoft's documentation)
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
S3_REGION = "us-east-1"
ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def unique_name(prefix: str) -> str:
    """A bucket / container name that is valid on both stores: lower case, 3-63 characters."""
    return f"{prefix}-{secrets.token_hex(4)}"


def _no_proxy_for_loopback() -> None:
    """Requests to the emulators must never go through a proxy set in the environment."""
    if any(os.environ.get(v) for v in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")):
        for name in ("NO_PROXY", "no_proxy"):
            hosts = [h for h in os.environ.get(name, "").split(",") if h]
            os.environ[name] = ",".join(dict.fromkeys([*hosts, "127.0.0.1", "localhost"]))


# --------------------------------------------------------------------------- processes


@dataclass
class _Process:
    """An emulator in its own process group, under /tmp/ingest-test-<kind>-*, killed at session end."""

    kind: str
    process: subprocess.Popen
    base_dir: Path

    @property
    def log_path(self) -> Path:
        return self.base_dir / f"{self.kind}.log"

    def wait_until_answers(self, url: str, port: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = _log_tail(self.log_path)
                self.stop()
                pytest.fail(f"{self.kind} did not start on port {port}:\n{tail}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        remove_service_dir(self.base_dir)


def _spawn(kind: str, command: list[str], comm: str) -> _Process:
    _no_proxy_for_loopback()
    _reap_stale(kind, f"{kind}.pid", comm, signal.SIGTERM)
    base = _make_base(kind)
    with open(base / f"{kind}.log", "w") as log:
        process = subprocess.Popen([*command], cwd=base, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, preexec_fn=_set_pdeathsig)
    (base / f"{kind}.pid").write_text(f"{process.pid}\n")
    return _Process(kind, process, base)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # e.g. 403 for an unsigned request: it is up
    except OSError:
        return False


# --------------------------------------------------------------------------- S3 (moto)


@dataclass
class S3Server:
    endpoint_url: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    region: str = S3_REGION
    _process: _Process | None = field(default=None, repr=False)

    @property
    def secret(self) -> str:
        return self.secret_access_key

    def client(self, secret_access_key: str | None = None) -> Any:
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint_url, region_name=self.region, aws_access_key_id=self.access_key_id,
            aws_secret_access_key=secret_access_key or self.secret_access_key,
        )

    def create_bucket(self, prefix: str = "bucket") -> str:
        name = unique_name(prefix)
        self.client().create_bucket(Bucket=name)
        return name

    def upload(self, bucket: str, key: str, data: bytes | str) -> None:
        self.client().put_object(Bucket=bucket, Key=key, Body=data.encode() if isinstance(data, str) else data)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def read(self, bucket: str, key: str) -> bytes:
        return self.client().get_object(Bucket=bucket, Key=key)["Body"].read()

    def credentials(self, section: str = "s3", secret_access_key: str | None = None) -> dict[str, str]:
        """The ``credentials:`` block of a config; the secret key goes into the secrets file."""
        from ingestion_core.config.secrets import store_secret

        reference = f"${{secrets.{section}.aws_secret_access_key}}"
        store_secret(reference, secret_access_key or self.secret_access_key)
        return {"aws_access_key_id": self.access_key_id, "aws_secret_access_key": reference,
                "endpoint_url": self.endpoint_url, "region_name": self.region}

    def storage_options(self) -> dict[str, str]:
        """For deltalake / object_store."""
        return {"aws_access_key_id": self.access_key_id, "aws_secret_access_key": self.secret_access_key,
                "endpoint_url": self.endpoint_url, "region": self.region, "aws_allow_http": "true"}

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None


def _moto_auth(endpoint_url: str, after_requests: str) -> None:
    """moto checks signatures once it has served ``after_requests`` requests ("inf": never)."""
    request = urllib.request.Request(f"{endpoint_url}/moto-api/reset-auth", data=after_requests.encode(),
                                     method="POST", headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def _start_moto() -> S3Server:
    try:
        import boto3
        import moto.server  # noqa: F401
    except ImportError as exc:
        skip_or_fail(f"moto[server] / boto3 not installed ({exc}): run scripts/bootstrap.sh --test")
    # Its own process, not ThreadedMotoServer: deltalake calls S3 while holding the GIL
    # (DeltaTable.is_deltatable), which deadlocks against a server thread of this process.
    port = free_port()
    process = _spawn("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                     Path(sys.executable).name[:15])
    endpoint = f"http://127.0.0.1:{port}"
    process.wait_until_answers(f"{endpoint}/moto-api/", port)
    try:
        # any key id works until auth is on; then only the key moto generated here is accepted
        iam = boto3.client("iam", endpoint_url=endpoint, region_name=S3_REGION,
                           aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
        iam.create_user(UserName="ingest-test")
        iam.put_user_policy(UserName="ingest-test", PolicyName="all", PolicyDocument=json.dumps(ALLOW_ALL))
        key = iam.create_access_key(UserName="ingest-test")["AccessKey"]
        _moto_auth(endpoint, "0")
    except Exception:
        process.stop()
        raise
    # moto made the secret half at run time: the session's secrets scan looks for it too
    secret_key = register_secret("s3_secret_access_key", key["SecretAccessKey"])
    return S3Server(endpoint, key["AccessKeyId"], secret_key, _process=process)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = _start_moto()
    atexit.register(server.stop)
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- Azure (Azurite)


@dataclass
class Azurite:
    blob_endpoint: str  # http://127.0.0.1:<port>/devstoreaccount1
    account_name: str = AZURITE_ACCOUNT
    account_key: str = field(default=AZURITE_KEY, repr=False)
    _process: _Process | None = field(default=None, repr=False)

    @property
    def secret(self) -> str:
        return self.account_key

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={self.account_name};AccountKey={self.account_key};"
                f"BlobEndpoint={self.blob_endpoint};")

    def service(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    def create_container(self, prefix: str = "container") -> str:
        name = unique_name(prefix)
        self.service().create_container(name)
        return name

    def upload(self, container: str, name: str, data: bytes | str) -> None:
        self.service().get_blob_client(container, name).upload_blob(data, overwrite=True)

    def keys(self, container: str, prefix: str = "") -> list[str]:
        return sorted(b.name for b in self.service().get_container_client(container).list_blobs(prefix or None))

    def read(self, container: str, name: str) -> bytes:
        return self.service().get_blob_client(container, name).download_blob().readall()

    def credentials(self, section: str = "az", account_key: str | None = None) -> dict[str, str]:
        """Account name + key reference + the blob endpoint (``endpoint_url``)."""
        from ingestion_core.config.secrets import store_secret

        reference = f"${{secrets.{section}.azure_storage_account_key}}"
        store_secret(reference, account_key or self.account_key)
        return {"azure_storage_account_name": self.account_name, "azure_storage_account_key": reference,
                "endpoint_url": self.blob_endpoint}

    def connection_string_credentials(self, section: str = "az") -> dict[str, str]:
        """The whole connection string, by reference."""
        from ingestion_core.config.secrets import store_secret

        reference = f"${{secrets.{section}.azure_connection_string}}"
        store_secret(reference, self.connection_string)
        return {"azure_connection_string": reference}

    def storage_options(self) -> dict[str, str]:
        """For deltalake / object_store."""
        return {"account_name": self.account_name, "account_key": self.account_key,
                "endpoint": self.blob_endpoint, "allow_http": "true"}

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None


def _start_azurite() -> Azurite:
    if not AZURITE_BIN.exists():
        skip_or_fail("azurite not installed: run scripts/bootstrap.sh --test")
    if not shutil.which("node"):
        skip_or_fail("node not installed (Azurite runs on Node.js): run scripts/bootstrap.sh --test")
    port = free_port()
    # --disableTelemetry: Azurite >= 3.35 reports usage to Microsoft by default
    command = [str(AZURITE_BIN), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", "data",
               "--loose", "--skipApiVersionCheck", "--disableTelemetry", "--silent"]
    process = _spawn("azurite", command, "node")
    server = Azurite(f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}", _process=process)
    process.wait_until_answers(f"{server.blob_endpoint}?comp=list", port)
    return server


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    server = _start_azurite()
    atexit.register(server.stop)
    try:
        yield server
    finally:
        server.stop()
