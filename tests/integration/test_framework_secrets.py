"""The Excel framework's secrets where its users already keep them: a Databricks scope found in a
workspace context and a Key Vault found by ``AZURE_KEY_VAULT_URL`` (no setting naming them), the
framework's key names (scope key / vault secret ``postgresql-password``, ``DLT_POSTGRESQL_PASSWORD``),
a configurable order, ``ingest secrets push`` into the fake workspace and the fake vault, and
``ingest validate --check-secrets``.

The workspace is tests/databricks_api.py's fake (the real databricks-sdk client talks to it); the
vault is the HTTPS fake of test_databricks_key_vault.py, its token from a stand-in credential
(Entra ID cannot be reached from here)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingestion_core.cli.main import main
from ingestion_core.config import secret_providers as providers
from ingestion_core.config.secret_providers.databricks_scope import SecretScopeError
from ingestion_core.config.secrets import SecretNotFoundError, default_providers, mask, resolve_value
from tests.databricks_api import FakeWorkspace, running_workspace
from tests.integration.test_databricks_key_vault import FakeVault, StaticCredential, vault  # noqa: F401
from tests.security.scanner import fake_secret

PG_REF = "${secrets.sources.postgresql.password}"


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWorkspace]:
    """A cluster's context: DATABRICKS_RUNTIME_VERSION and the runtime's own credentials."""
    for name in (providers.PROVIDERS_VARIABLE, providers.SCOPE_VARIABLE, providers.VAULT_VARIABLE,
                 providers.FRAMEWORK_VAULT_VARIABLE):
        monkeypatch.delenv(name, raising=False)
    with running_workspace(tmp_path / "workspace") as ws:
        monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "15.4")
        monkeypatch.setenv("DATABRICKS_HOST", ws.url)
        monkeypatch.setenv("DATABRICKS_TOKEN", ws.token)
        yield ws


@pytest.fixture
def discovered_vault(vault: FakeVault, monkeypatch: pytest.MonkeyPatch) -> FakeVault:  # noqa: F811
    monkeypatch.setenv(providers.FRAMEWORK_VAULT_VARIABLE, vault.url)
    monkeypatch.setattr("azure.identity.DefaultAzureCredential", lambda **_: StaticCredential())
    return vault


def test_the_frameworks_scope_is_found_in_a_workspace_context_by_its_key_names(workspace: FakeWorkspace) -> None:
    value = fake_secret("framework_scope_pg")
    workspace.secrets["dlt-framework"] = {"postgresql-password": value.encode(), "postgresql-host": b"pg.internal"}
    assert [type(p).__name__ for p in default_providers()] == ["EnvironmentProvider", "TomlFileProvider",
                                                               "DatabricksSecretScopeProvider"]
    assert resolve_value(PG_REF) == value  # the imported reference
    assert resolve_value("${secrets.postgresql.password}") == value  # the short one
    assert resolve_value("${secrets.postgresql.host}") == "pg.internal"
    assert mask(f"pw={value}") == "pw=***"
    keys = [r.query["key"] for r in workspace.requests if r.path == "/api/2.0/secrets/get"]
    assert keys[:2] == ["sources-postgresql-password", "postgresql-password"]  # today's name first


def test_without_the_frameworks_scope_a_missing_secret_is_only_missing(workspace: FakeWorkspace) -> None:
    with pytest.raises(SecretNotFoundError) as raised:
        resolve_value(PG_REF)
    assert "Databricks secret scope 'dlt-framework' key sources-postgresql-password or postgresql-password" \
        in str(raised.value)


def test_a_named_scope_that_does_not_exist_is_an_error(workspace: FakeWorkspace,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(providers.SCOPE_VARIABLE, "market-de")
    with pytest.raises(SecretScopeError, match="scope 'market-de' does not exist; create it"):
        resolve_value(PG_REF)


def test_no_workspace_context_no_scope(workspace: FakeWorkspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION")
    assert [type(p).__name__ for p in default_providers()] == ["EnvironmentProvider", "TomlFileProvider"]


def test_key_vault_is_found_by_its_variable_and_the_order_is_configurable(
        workspace: FakeWorkspace, discovered_vault: FakeVault, monkeypatch: pytest.MonkeyPatch) -> None:
    in_vault, in_scope, in_env = (fake_secret(f"framework_{n}") for n in ("vault", "scope", "env"))
    discovered_vault.secrets["postgresql-password"] = in_vault
    assert resolve_value(PG_REF) == in_vault
    assert [r[1] for r in discovered_vault.requests] == ["/secrets/sources-postgresql-password",
                                                        "/secrets/postgresql-password"]
    workspace.secrets["dlt-framework"] = {"postgresql-password": in_scope.encode()}
    monkeypatch.setenv("DLT_POSTGRESQL_PASSWORD", in_env)
    assert resolve_value(PG_REF) == in_env  # default order: environment, file, scope, vault
    monkeypatch.setenv(providers.PROVIDERS_VARIABLE, "databricks,azure_keyvault,env,file")  # the framework's
    assert resolve_value(PG_REF) == in_scope
    monkeypatch.setenv(providers.PROVIDERS_VARIABLE, "azure_keyvault,databricks")  # after env and file
    assert [type(p).__name__ for p in default_providers()][2:] == ["AzureKeyVaultProvider",
                                                                    "DatabricksSecretScopeProvider"]
    assert resolve_value(PG_REF) == in_env


def test_name_styles_are_configurable_per_provider(workspace: FakeWorkspace, monkeypatch: pytest.MonkeyPatch) -> None:
    value = fake_secret("framework_scope_pg")
    workspace.secrets["dlt-framework"] = {"postgresql-password": value.encode()}
    monkeypatch.setenv("INGEST_SECRET_NAMES_DATABRICKS", "path")
    with pytest.raises(SecretNotFoundError, match=r"key sources-postgresql-password\. "):
        resolve_value(PG_REF)
    monkeypatch.setenv("INGEST_SECRET_NAMES_DATABRICKS", "framework")
    assert resolve_value(PG_REF) == value
    monkeypatch.setenv("INGEST_SECRET_NAMES_DATABRICKS", "path,old")
    with pytest.raises(ValueError, match="INGEST_SECRET_NAMES_DATABRICKS names unknown name styles old; use"):
        resolve_value(PG_REF)


# --- ingest secrets push / validate --check-secrets --------------------------------------------

def configs(ingest_env: Path) -> None:
    sources = ingest_env / "configs" / "sources"
    (sources / "postgresql.yaml").write_text(
        "version: 1\nname: postgresql\nowner: data-ops\nsource:\n  type: postgres\n  host: pg.internal\n"
        "  database: sales\n  username: app\n  password: ${secrets.sources.postgresql.password}\n"
        "tables:\n  - {name: orders}\n")
    (sources / "coingecko.yaml").write_text(
        "version: 1\nname: coingecko\nowner: data-ops\nsource:\n  type: rest_api\n"
        "  base_url: https://api.example.com/v3/\n  auth:\n    type: api_key\n    name: x-cg-demo-api-key\n"
        "    api_key: ${secrets.sources.coingecko.api_key}\n"
        "  headers: {X-Trace: '${env:TRACE_ID}'}\ntables:\n  - {name: markets, path: coins/markets}\n")


def framework_toml(folder: Path) -> tuple[Path, dict[str, str]]:
    values = {"pg": fake_secret("push_pg"), "cg": fake_secret("push_cg")}
    path = folder / "secrets.toml"
    path.write_text(f'[sources.postgresql]\nhost = "pg.internal"\npassword = "{values["pg"]}"\n\n'
                    f'[sources.coingecko]\napi_key = "{values["cg"]}"\n')
    return path, values


def test_push_to_the_scope_copies_every_referenced_value_and_prints_none(
        ingest_env: Path, workspace: FakeWorkspace, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    configs(ingest_env)
    toml, values = framework_toml(tmp_path)
    assert main(["secrets", "push", "--to", "scope", "--from", str(toml), "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert "would push: ${secrets.sources.postgresql.password} -> scope 'dlt-framework' key " \
           "sources-postgresql-password (used in sources/postgresql.yaml:source.password)" in out
    assert "skipped: ${env:TRACE_ID}" in out and "dry run: 2 would push, 1 skipped" in err
    assert workspace.changes() == [] and "dlt-framework" not in workspace.secrets

    monkeypatch.setenv("INGEST_SECRET_NAMES_DATABRICKS", "framework,path")  # write the framework's names
    assert main(["secrets", "push", "--to", "scope", "--from", str(toml)]) == 0
    out, err = capsys.readouterr()
    assert workspace.secrets["dlt-framework"] == {"postgresql-password": values["pg"].encode(),
                                                  "coingecko-api_key": values["cg"].encode()}
    assert "2 pushed, 1 skipped" in err
    assert not any(v in out + err for v in values.values())
    monkeypatch.delenv("INGEST_SECRET_NAMES_DATABRICKS")
    assert resolve_value("${secrets.sources.postgresql.password}") == values["pg"]


def test_push_to_the_vault_and_a_missing_value_fails(ingest_env: Path, discovered_vault: FakeVault, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    configs(ingest_env)
    toml, values = framework_toml(tmp_path)
    assert main(["secrets", "push", "--to", "keyvault", "--from", str(toml)]) == 0
    assert discovered_vault.secrets == {"sources-postgresql-password": values["pg"],
                                        "sources-coingecko-api-key": values["cg"]}
    toml.write_text('[sources.postgresql]\nhost = "pg.internal"\n')
    assert main(["secrets", "push", "--to", "keyvault", "--from", str(toml)]) == 1
    out, _ = capsys.readouterr()
    assert "missing: ${secrets.sources.postgresql.password}" in out and f"not found in file {toml}" in out
    assert not any(v in out for v in values.values())


def test_validate_check_secrets_reports_each_reference_no_provider_has(
        ingest_env: Path, workspace: FakeWorkspace, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    configs(ingest_env)
    workspace.secrets["dlt-framework"] = {"postgresql-password": fake_secret("check_pg").encode()}
    monkeypatch.setenv("TRACE_ID", "t-1")
    assert main(["validate"]) == 0
    capsys.readouterr()
    assert main(["validate", "--check-secrets"]) == 1
    out, _ = capsys.readouterr()
    lines = [line for line in out.splitlines() if "secret" in line]
    assert len(lines) == 1
    assert lines[0].startswith(f"{ingest_env / 'configs' / 'sources' / 'coingecko.yaml'}:source.auth.api_key: "
                               "secret ${secrets.sources.coingecko.api_key} is not set in any provider")
    assert "DLT_COINGECKO_API_KEY" in lines[0] and "key sources-coingecko-api_key or coingecko-api_key" in lines[0]
    workspace.secrets["dlt-framework"]["coingecko-api_key"] = fake_secret("check_cg").encode()
    assert main(["validate", "--check-secrets"]) == 0



def test_push_without_a_workspace_says_how_to_sign_in(ingest_env: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    configs(ingest_env)
    toml, values = framework_toml(tmp_path)
    for name in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CLIENT_ID", "DATABRICKS_CONFIG_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.databrickscfg
    assert main(["secrets", "push", "--to", "scope", "--from", str(toml)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot list the Databricks secret scopes") and "Sign in to the workspace: set " \
        "DATABRICKS_HOST and DATABRICKS_TOKEN" in err
    assert not any(v in err for v in values.values())
