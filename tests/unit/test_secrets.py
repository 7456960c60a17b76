"""Secret references: parsing, the provider chain (environment first, then the secrets file),
writing the local file safely, and masking every secret before it is shown."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from ingestion_core.common import settings
from ingestion_core.config import secrets
from ingestion_core.config.secrets import (
    MASK,
    EnvironmentProvider,
    SecretNotFoundError,
    SecretReference,
    TomlFileProvider,
    find_references,
    is_reference,
    mask,
    mask_data,
    parse_reference,
    register_secret,
    resolve_reference,
    resolve_value,
    store_secret,
)


@pytest.fixture(autouse=True)
def no_registered_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Values resolved by other tests (a port like 5432) would otherwise be masked here."""
    monkeypatch.setattr(secrets, "_known", set())


@pytest.fixture
def secrets_file(ingest_env: Path) -> Path:
    return settings.secrets_file()


# --- references ----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "kind", "path"), [
    ("${secrets.sales.password}", "secrets", "sales.password"),
    ("${secrets.a.b.c}", "secrets", "a.b.c"),
    ("${secrets.market-de.api_key}", "secrets", "market-de.api_key"),
    ("${env:PGPASSWORD}", "env", "PGPASSWORD"),
    ("${env:_X1}", "env", "_X1"),
])
def test_parse_reference(text: str, kind: str, path: str) -> None:
    reference = parse_reference(text)
    assert (reference.kind, reference.path, reference.text) == (kind, path, text)
    assert is_reference(text)


@pytest.mark.parametrize("text", ["hunter2", "${secrets.a}", "${secrets.}", "${env:1X}", "${env:}", "$secrets.a.b",
                                  "{secrets.a.b}", "${secrets.a.b} ", "x${secrets.a.b}", "${SECRETS.a.b}",
                                  "${secrets.a b.c}", "", "${env:A-B}"])
def test_not_a_reference(text: str) -> None:
    assert not is_reference(text)
    with pytest.raises(ValueError, match=r"\$\{secrets.<section>.<key>\} or \$\{env:NAME\}"):
        parse_reference(text)


def test_find_references_in_nested_values() -> None:
    value = {"url": "pg://u:${secrets.db.password}@h/db", "headers": ["Bearer ${env:TOKEN}", 5, None]}
    assert [r.text for r in find_references(value)] == ["${secrets.db.password}", "${env:TOKEN}"]


# --- resolving: environment first, then the secrets file --------------------------------------

def test_environment_variable_names() -> None:
    env = EnvironmentProvider()
    assert env.variable(parse_reference("${secrets.sales_de.password}")) == "SECRETS__SALES_DE__PASSWORD"
    assert env.variable(parse_reference("${secrets.market-de.api-key}")) == "SECRETS__MARKET_DE__API_KEY"
    assert env.variable(parse_reference("${secrets.a.b.c}")) == "SECRETS__A__B__C"
    assert env.variable(parse_reference("${env:PGPASSWORD}")) == "PGPASSWORD"


def test_environment_wins_over_the_file(secrets_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets_file.parent.mkdir(parents=True, exist_ok=True)
    secrets_file.write_text('[a]\nb = "from-file"\n')
    assert resolve_value("${secrets.a.b}") == "from-file"
    monkeypatch.setenv("SECRETS__A__B", "from-env")
    assert resolve_value("${secrets.a.b}") == "from-env"


def test_nested_sections(secrets_file: Path) -> None:
    secrets_file.parent.mkdir(parents=True, exist_ok=True)
    secrets_file.write_text('[a.b]\nc = "nested"\n[sources.shop]\nport = 5432\n')
    assert resolve_value("${secrets.a.b.c}") == "nested"
    assert resolve_value("${secrets.sources.shop.port}") == "5432"


def test_env_reference_reads_only_the_environment(secrets_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets_file.parent.mkdir(parents=True, exist_ok=True)
    secrets_file.write_text('PGPASSWORD = "not-this"\n')
    monkeypatch.setenv("PGPASSWORD", "from-env")
    assert resolve_value("${env:PGPASSWORD}") == "from-env"
    monkeypatch.delenv("PGPASSWORD")
    with pytest.raises(SecretNotFoundError):
        resolve_value("${env:PGPASSWORD}")


def test_resolve_inside_urls_and_nested_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRETS__DB__PASSWORD", "pw1234")
    monkeypatch.setenv("TOKEN", "tok5678")
    data = {"url": "pg://app:${secrets.db.password}@h/db", "h": ["Bearer ${env:TOKEN}", 3], "n": None}
    assert resolve_value(data) == {"url": "pg://app:pw1234@h/db", "h": ["Bearer tok5678", 3], "n": None}
    assert mask(resolve_value("x ${env:TOKEN} y")) == f"x {MASK} y"  # resolved values are registered


def test_missing_secret_names_the_reference_and_every_place_looked(secrets_file: Path) -> None:
    with pytest.raises(SecretNotFoundError) as raised:
        resolve_value("pg://u:${secrets.sales_de.password}@h/db")
    message = str(raised.value)
    assert "${secrets.sales_de.password}" in message
    assert "environment variable SECRETS__SALES_DE__PASSWORD" in message
    assert f"file {secrets_file} section [sales_de] key password" in message
    assert raised.value.looked == [
        "environment variable SECRETS__SALES_DE__PASSWORD or DLT_SALES_DE_PASSWORD",
        f"file {secrets_file} section [sales_de] key password or section [sources.sales_de] key password"]


def test_a_section_is_not_a_value(secrets_file: Path) -> None:
    secrets_file.parent.mkdir(parents=True, exist_ok=True)
    secrets_file.write_text('[a.b]\nc = "x"\n')
    with pytest.raises(SecretNotFoundError):
        resolve_reference(parse_reference("${secrets.a.b}"))


def test_custom_provider_chain(tmp_path: Path) -> None:
    other = tmp_path / "other.toml"
    other.write_text('[x]\ny = "v"\n')
    assert resolve_value("${secrets.x.y}", providers=[TomlFileProvider(other)]) == "v"
    with pytest.raises(SecretNotFoundError, match=str(other)):
        resolve_value("${secrets.x.z}", providers=[TomlFileProvider(other)])


def test_broken_secrets_file_says_so_without_its_content(secrets_file: Path) -> None:
    secrets_file.parent.mkdir(parents=True, exist_ok=True)
    secrets_file.write_text('[a]\nb = "s3cret-value\n')
    with pytest.raises(ValueError, match="not valid TOML") as raised:
        resolve_value("${secrets.a.b}")
    assert "s3cret-value" not in str(raised.value)


def test_secrets_file_location_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_SECRETS_FILE", str(tmp_path / "s.toml"))
    assert settings.secrets_file() == tmp_path / "s.toml"
    monkeypatch.delenv("INGEST_SECRETS_FILE")
    monkeypatch.setenv("INGEST_DATA_DIR", str(tmp_path / "data"))
    assert settings.secrets_file() == tmp_path / "data" / "secrets.toml"


# --- storing -------------------------------------------------------------------------------

def test_store_secret_writes_0600_atomically_and_keeps_other_content(secrets_file: Path) -> None:
    secrets_file.parent.mkdir(parents=True, exist_ok=True)
    secrets_file.write_text('# my notes\n[other]\nkey = "keep me"  # inline comment\n')
    os.chmod(secrets_file, 0o644)
    reference = store_secret("${secrets.sales_de.password}", "pa ss\"word'")
    assert reference == SecretReference("secrets", "sales_de.password")
    text = secrets_file.read_text()
    assert "# my notes" in text and 'key = "keep me"  # inline comment' in text
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert resolve_value("${secrets.sales_de.password}") == "pa ss\"word'"
    assert resolve_value("${secrets.other.key}") == "keep me"
    store_secret(SecretReference("secrets", "sales_de.password"), "second")
    store_secret("${secrets.a.b.c}", "deep")
    assert resolve_value("${secrets.sales_de.password}") == "second"
    assert resolve_value("${secrets.a.b.c}") == "deep"
    assert [p.name for p in secrets_file.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_store_secret_creates_the_file_and_folder(secrets_file: Path) -> None:
    assert not secrets_file.exists()
    store_secret("${secrets.new.token}", "t0ken-value")
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert mask("t0ken-value") == MASK  # stored values are masked from then on


def test_store_secret_refuses_env_references_and_value_paths(secrets_file: Path) -> None:
    with pytest.raises(ValueError, match="only"):
        store_secret("${env:X}", "v")
    store_secret("${secrets.a.b}", "value")
    with pytest.raises(ValueError, match=r"'a\.b' .* is a value, not a section"):
        store_secret("${secrets.a.b.c}", "v")
    assert resolve_value("${secrets.a.b}") == "value"


def test_concurrent_stores_lose_nothing(secrets_file: Path) -> None:
    threads = [threading.Thread(target=store_secret, args=(f"${{secrets.s{i}.password}}", f"value-{i}"))
               for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(resolve_value(f"${{secrets.s{i}.password}}") == f"value-{i}" for i in range(16))


# --- masking -------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "hidden", "kept"), [
    ("postgresql://app:hunter22@db:5432/sales", "hunter22", "postgresql://app:***@db:5432/sales"),
    ("mssql://app:p@ss@w0rd@db/x", "ss@w0rd", "mssql://app:***@db/x"),
    ("connect failed: password=hunter22 host=db", "hunter22", "host=db"),
    ("PGPASSWORD=hunter22", "hunter22", "PGPASSWORD=***"),
    ("{'password': 'hunter22', 'user': 'app'}", "hunter22", "'user': 'app'"),
    ('{"api_key": "k3y-value"}', "k3y-value", '"api_key"'),
    ("Authorization: Bearer eyJhbGciOi.abc.def", "eyJhbGciOi", "Authorization: Bearer ***"),
    ("authorization=Basic dXNlcjpwYXNz", "dXNlcjpwYXNz", "authorization=Basic ***"),
    ("header value Bearer abcdefgh12345 refused", "abcdefgh12345", "refused"),
    ("https://acct.blob.core.windows.net/c?sv=1&sig=abcDEF123%3D&se=2", "abcDEF123", "se=2"),
    ("client_secret=xyz123&grant_type=client_credentials", "xyz123", "grant_type=client_credentials"),
])
def test_mask_hides_credentials(text: str, hidden: str, kept: str) -> None:
    masked = mask(text)
    assert hidden not in masked and kept in masked and MASK in masked


@pytest.mark.parametrize("text", ["password: ${secrets.a.password}", "Authorization: Bearer ${secrets.a.token}",
                                  "https://api.example.com/v1/?page=2", "user@example.com", "no secrets here"])
def test_mask_keeps_references_and_plain_text(text: str) -> None:
    assert mask(text) == text


def test_registered_values_are_masked_everywhere() -> None:
    register_secret("correct-horse-battery")
    assert mask("error near correct-horse-battery!") == f"error near {MASK}!"
    assert mask(ValueError("x correct-horse-battery")) == f"x {MASK}"
    assert mask_data({"a": ["correct-horse-battery", 1], "b": None}) == {"a": [MASK, 1], "b": None}
    register_secret("ab")  # too short to mask without garbling every message
    assert mask("about") == "about"


# --- the Excel framework's names -------------------------------------------------------------

def test_the_frameworks_environment_names_resolve_long_and_short_references(
        secrets_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLT_POSTGRESQL_PASSWORD", "from-dlt-env-1")
    assert resolve_value("${secrets.postgresql.password}") == "from-dlt-env-1"
    assert resolve_value("${secrets.sources.postgresql.password}") == "from-dlt-env-1"
    monkeypatch.setenv("SECRETS__SOURCES__POSTGRESQL__PASSWORD", "from-path-env-2")  # today's name comes first
    assert resolve_value("${secrets.sources.postgresql.password}") == "from-path-env-2"
    env = EnvironmentProvider()
    assert env.variables(parse_reference("${secrets.sources.sales-de.api_key}")) == [
        "SECRETS__SOURCES__SALES_DE__API_KEY", "DLT_SALES_DE_API_KEY"]
    assert env.variables(parse_reference("${secrets.sources.x}")) == ["SECRETS__SOURCES__X", "DLT_SOURCES_X"]


def test_the_frameworks_file_sections_serve_short_references(secrets_file: Path) -> None:
    secrets_file.parent.mkdir(parents=True, exist_ok=True)
    secrets_file.write_text('[sources.postgresql]\npassword = "from-sources-section"\n')
    assert resolve_value("${secrets.postgresql.password}") == "from-sources-section"


def test_name_styles_per_provider(secrets_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLT_POSTGRESQL_PASSWORD", "from-dlt-env-1")
    monkeypatch.setenv("INGEST_SECRET_NAMES_ENV", "path")
    with pytest.raises(SecretNotFoundError, match=r"environment variable SECRETS__POSTGRESQL__PASSWORD;"):
        resolve_value("${secrets.postgresql.password}")
    monkeypatch.delenv("INGEST_SECRET_NAMES_ENV")
    monkeypatch.setenv("INGEST_SECRET_NAMES", "path")  # every provider
    with pytest.raises(SecretNotFoundError, match=r"file .* section \[postgresql\] key password\."):
        resolve_value("${secrets.postgresql.password}")
    monkeypatch.setenv("INGEST_SECRET_NAMES_ENV", "framework")  # one provider's own setting wins
    assert resolve_value("${secrets.postgresql.password}") == "from-dlt-env-1"
