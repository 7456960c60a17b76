"""The Azure Key Vault provider against a local HTTPS fake of the Key Vault secrets REST API
(``GET`` / ``PUT {vault}/secrets/{name}?api-version=7.4``), TLS verified against a certificate
made for the test. The token comes from a credential object standing in for azure-identity
(Entra ID cannot be reached from here): what is verified is the request the provider makes with
it, not the sign-in itself."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.credentials import AccessToken
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ingestion_core.config.secret_providers.key_vault import AzureKeyVaultProvider, KeyVaultError
from ingestion_core.config.secrets import (
    SecretNotFoundError,
    TomlFileProvider,
    parse_reference,
    resolve_value,
    store_secret,
)

TOKEN = "eyJ0eXAiOiJKV1Qi.test-token"


@dataclass
class FakeVault:
    url: str = ""
    secrets: dict[str, str] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str], str]] = field(default_factory=list)
    forbidden: bool = False


class _Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._answer()

    do_PUT = do_GET

    def _answer(self) -> None:
        vault: FakeVault = self.server.vault
        split = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        vault.requests.append((self.command, split.path, {k: v[-1] for k, v in parse_qs(split.query).items()},
                               self.headers.get("Authorization", "")))
        name = split.path.removeprefix("/secrets/")
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            status, answer = 401, {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a "
                                                                                "Bearer or PoP token."}}
        elif vault.forbidden:
            status, answer = 403, {"error": {"code": "Forbidden", "message": "Caller is not authorized to perform "
                                                                             "action on resource."}}
        elif self.command == "PUT":
            vault.secrets[name] = json.loads(body)["value"]
            status, answer = 200, {"value": vault.secrets[name], "id": f"{vault.url}/secrets/{name}/1"}
        elif name in vault.secrets:
            status, answer = 200, {"value": vault.secrets[name], "id": f"{vault.url}/secrets/{name}/1"}
        else:
            status, answer = 404, {"error": {"code": "SecretNotFound", "message": f"A secret with (name/id) {name} "
                                                                                  "was not found in this key vault."}}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def make_certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "vault.pem", folder / "vault.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVault]:
    cert, key = make_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    httpd.vault = FakeVault(url=f"https://127.0.0.1:{httpd.server_address[1]}")  # type: ignore[attr-defined]
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))  # the test's CA, as a company CA bundle would be
    try:
        yield httpd.vault  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()


class StaticCredential:
    """Stands in for an azure-identity credential (managed identity, service principal)."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(TOKEN, int(time.time()) + 3600)


def test_a_secret_is_read_by_its_flat_name_with_a_bearer_token(vault: FakeVault) -> None:
    vault.secrets["sales-de-password"] = "from-key-vault-1"
    credential = StaticCredential()
    provider = AzureKeyVaultProvider(vault.url, credential)
    chain = [TomlFileProvider(), provider]
    assert resolve_value("pw=${secrets.sales_de.password}", chain) == "pw=from-key-vault-1"
    assert vault.requests == [("GET", "/secrets/sales-de-password", {"api-version": "7.4"}, f"Bearer {TOKEN}")]
    assert credential.scopes == [("https://vault.azure.net/.default",)]


def test_a_missing_secret_is_looked_for_elsewhere_and_named(vault: FakeVault) -> None:
    provider = AzureKeyVaultProvider(vault.url, StaticCredential())
    assert provider.get(parse_reference("${secrets.sales_de.api_key}")) is None
    with pytest.raises(SecretNotFoundError) as raised:
        resolve_value("${secrets.sales_de.api_key}", [provider])
    assert f"Azure Key Vault {vault.url} secret sales-de-api-key" in str(raised.value)


def test_a_refused_identity_is_an_error_with_the_role_to_grant(vault: FakeVault) -> None:
    vault.forbidden = True
    with pytest.raises(KeyVaultError, match="HTTP 403 Caller is not authorized to perform action on resource. "
                                            r"\(the identity needs the Key Vault Secrets User role"):
        AzureKeyVaultProvider(vault.url, StaticCredential()).get(parse_reference("${secrets.a.b}"))


def test_typed_secrets_are_written_to_the_vault(vault: FakeVault) -> None:
    provider = AzureKeyVaultProvider(vault.url, StaticCredential())
    store_secret("${secrets.sales_de.password}", "typed-in-the-form", provider=provider)
    assert vault.secrets == {"sales-de-password": "typed-in-the-form"}
    assert provider.get(parse_reference("${secrets.sales_de.password}")) == "typed-in-the-form"


def test_tls_is_verified(vault: FakeVault, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.setenv("CURL_CA_BUNDLE", "")
    with pytest.raises(KeyVaultError, match=f"Key Vault {vault.url} cannot be reached: .*CERTIFICATE_VERIFY_FAILED"):
        AzureKeyVaultProvider(vault.url, StaticCredential()).get(parse_reference("${secrets.a.b}"))


def test_a_vault_url_must_be_https() -> None:
    with pytest.raises(ValueError, match="must start with https://"):
        AzureKeyVaultProvider("http://market-kv.vault.azure.net")
