"""The service functions behind the forms (ingestion_core.onboarding): drafts, secret references,
validation with the form's name rules, saving (secrets first, then the YAML, both only when
everything is valid and the file did not change), enable / disable, and the helpers the
wizard uses."""

from __future__ import annotations

import threading
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingestion_core import onboarding
from ingestion_core.config.access import AccessDeniedError
from ingestion_core.config.secrets import store_secret
from ingestion_core.config.store import ConfigStore, ConflictError
from ingestion_core.config.validation import ConfigError
from ingestion_core.observe.records import RunRecord, write_record
from ingestion_core.onboarding import Draft

REPO = Path(__file__).resolve().parents[2]


def pg_draft(**source) -> Draft:
    data = {"name": "crm", "owner": "market-fr",
            "source": {"type": "postgres", "host": "db", "database": "crm", "username": "reader", **source},
            "tables": [{"name": "contacts", "schema": "public"}]}
    return Draft(data, {"source.password": "pa55-word!"})


def secrets(project: Path) -> dict:
    path = project / ".ingest" / "secrets.toml"
    return tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


# --- paths and references ------------------------------------------------------------------

def test_paths_follow_the_issue_format() -> None:
    data: dict = {"tables": [{"name": "a"}]}
    assert onboarding.parse_path("tables[0].checks[2].not_null.column") == ["tables", 0, "checks", 2, "not_null",
                                                                             "column"]
    onboarding.set_path(data, "tables[0].cursor", "updated_at")
    onboarding.set_path(data, "source.auth.token", "${secrets.x.token}")
    assert onboarding.get_path(data, "tables[0].cursor") == "updated_at"
    assert onboarding.get_path(data, "tables[3].name", "none") == "none"
    onboarding.remove_path(data, "source.auth.token")
    assert data == {"tables": [{"name": "a", "cursor": "updated_at"}], "source": {"auth": {}}}


def test_typed_secrets_become_references_of_the_source() -> None:
    draft = pg_draft()
    draft.secrets["source.auth.token"] = "unused"  # its parent is gone: ignored, no crash
    data = onboarding.with_secret_references({"name": "crm", "source": {"type": "postgres", "auth": "x"}},
                                             draft.secrets)
    assert data["source"]["password"] == "${secrets.crm.password}"
    assert onboarding.reference_for("Not A Name", "source.password") == "${secrets.new_source.password}"
    assert draft.data["source"].get("password") is None  # the draft itself is not changed


def test_secret_paths_come_from_the_models() -> None:
    assert onboarding.is_secret_path("postgres", "source.password")
    assert onboarding.is_secret_path("filesystem", "source.credentials.azure_storage_account_key")
    assert not onboarding.is_secret_path("postgres", "source.username")
    assert not onboarding.is_secret_path("nope", "source.password")


def test_secret_status_says_where_never_what(ingest_env: Path) -> None:
    store_secret("${secrets.crm.password}", "do-not-show-1")
    found = onboarding.secret_status("${secrets.crm.password}")
    assert found.is_set and "section [crm] key password" in found.where and "do-not-show-1" not in found.where
    missing = onboarding.secret_status("${secrets.crm.token}")
    assert not missing.is_set and "SECRETS__CRM__TOKEN" in missing.where
    assert not onboarding.secret_status("plain").is_set


# --- validation ----------------------------------------------------------------------------

def test_a_valid_draft_validates_with_references_in_place(ingest_env: Path) -> None:
    model, issues = onboarding.validate_draft(pg_draft())
    assert issues == [] and model.source.password == "${secrets.crm.password}"


def test_issues_never_show_a_typed_secret(ingest_env: Path) -> None:
    draft = pg_draft(host=None)
    draft.data["source"]["url"] = "postgresql://u:pa55-word!@h/db"
    _, issues = onboarding.validate_draft(draft)
    assert issues and all("pa55-word!" not in i.message for i in issues)


def test_name_rules_of_the_form(ingest_env: Path) -> None:
    onboarding.save_draft(pg_draft(), actor="ana")
    _, issues = onboarding.validate_draft(pg_draft())
    assert [(i.path, i.message.split(";")[0]) for i in issues] == [("name", "a source named 'crm' already exists")]
    opened, _ = onboarding.load_draft("crm")
    opened.data["name"] = "crm2"
    _, issues = onboarding.validate_draft(opened)
    assert issues[0].path == "name" and "cannot be renamed here" in issues[0].message


# --- saving --------------------------------------------------------------------------------

def test_save_writes_the_secret_then_the_yaml_with_its_reference(ingest_env: Path) -> None:
    saved = onboarding.save_draft(pg_draft(), actor="ana")
    text = saved.path.read_text(encoding="utf-8")
    assert "password: ${secrets.crm.password}" in text and "pa55-word!" not in text
    assert saved.stored_secrets == ["${secrets.crm.password}"]
    assert secrets(ingest_env) == {"crm": {"password": "pa55-word!"}}
    assert text.splitlines()[1:4] == ["version: 1", "name: crm", "owner: market-fr"]
    assert "source:\n  type: postgres\n" in text and "- name: contacts\n  schema: public\n" in text
    assert ConfigStore().load_source("crm").valid


def test_an_invalid_draft_writes_nothing(ingest_env: Path) -> None:
    draft = pg_draft(port=70000)
    with pytest.raises(ConfigError) as caught:
        onboarding.save_draft(draft, actor="ana")
    assert caught.value.issues[0].path == "source.port"
    assert not (ingest_env / ".ingest" / "secrets.toml").exists()
    assert not list((ingest_env / "configs" / "sources").iterdir())


def test_a_conflict_writes_neither_secret_nor_yaml(ingest_env: Path) -> None:
    onboarding.save_draft(pg_draft(), actor="ana")
    draft, _ = onboarding.load_draft("crm")
    draft.secrets["source.password"] = "second-secret"
    path = ingest_env / "configs" / "sources" / "crm.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("host: db", "host: other"), encoding="utf-8")
    with pytest.raises(ConflictError, match="changed by someone else since you opened it"):
        onboarding.save_draft(draft, actor="bob")
    assert secrets(ingest_env)["crm"]["password"] == "pa55-word!"
    assert "host: other" in path.read_text(encoding="utf-8")


def test_another_team_can_neither_save_nor_overwrite_the_secrets(ingest_env: Path) -> None:
    onboarding.save_draft(pg_draft(), actor="ana")  # local mode: no teams.yaml, everyone may
    (ingest_env / "configs" / "teams.yaml").write_text(
        "version: 1\nadmins: [lead]\nteams:\n  market-fr: {members: [ana]}\n  market-de: {members: [mallory]}\n",
        encoding="utf-8")
    draft, _ = onboarding.load_draft("crm")
    draft.secrets["source.password"] = "mallorys-own"
    with pytest.raises(AccessDeniedError, match="market-fr"):
        onboarding.save_draft(draft, actor="mallory")
    with pytest.raises(AccessDeniedError):
        onboarding.save_yaml(draft.text or "", draft, actor="mallory")
    assert secrets(ingest_env)["crm"]["password"] == "pa55-word!"  # refused before any secret is stored
    draft.secrets["source.password"] = "new-by-owner"
    onboarding.save_draft(draft, actor="ana")
    assert secrets(ingest_env)["crm"]["password"] == "new-by-owner"


def test_yaml_mode_saves_the_text_as_typed_and_stores_typed_secrets(ingest_env: Path) -> None:
    draft = pg_draft()
    text = onboarding.yaml_of_draft(draft).replace("host: db", "host: db  # primary")
    model, issues = onboarding.validate_yaml(text, draft)
    assert model is not None and not issues
    saved = onboarding.save_yaml(text, draft, actor="ana")
    assert saved.path.read_text(encoding="utf-8") == text
    assert secrets(ingest_env)["crm"]["password"] == "pa55-word!"
    _, issues = onboarding.validate_yaml("name: [", Draft({}))
    assert issues[0].path.startswith("line 1")


def test_diff_of_saved_and_new_text() -> None:
    assert onboarding.diff_text("a: 1\n", "a: 1\n", "x") == ""
    diff = onboarding.diff_text("a: 1\nb: 2\n", "a: 1\nb: 3\n", "x")
    assert "-b: 2\n+b: 3" in diff and "saved/x.yaml" in diff


# --- enable / disable, delete, restore -----------------------------------------------------

COMMENTED = "# keep me\nversion: 1\nname: shop\nowner: market-de\nsource: {type: sqlite, path: s.sqlite}\n" \
            "tables: [{name: t}]\n"


def test_enable_and_disable_keep_the_comments(ingest_env: Path) -> None:
    path = ingest_env / "configs" / "sources" / "shop.yaml"
    path.write_text(COMMENTED, encoding="utf-8")
    onboarding.set_enabled("shop", False, actor="ana")
    assert path.read_text(encoding="utf-8") == COMMENTED.replace("name: shop\n", "name: shop\nenabled: false\n")
    onboarding.set_enabled("shop", True, actor="ana")
    assert "enabled: true" in path.read_text(encoding="utf-8") and path.read_text().startswith("# keep me")


def test_delete_goes_to_the_bin_and_comes_back(ingest_env: Path) -> None:
    path = ingest_env / "configs" / "sources" / "shop.yaml"
    path.write_text(COMMENTED, encoding="utf-8")
    binned = onboarding.delete_source("shop", actor="ana")
    assert not path.exists() and onboarding.deleted_sources() == [binned]
    assert onboarding.bin_entry_label(binned).startswith("shop (deleted ")
    onboarding.restore_source(binned, actor="ana")
    assert path.read_text(encoding="utf-8") == COMMENTED


def test_last_runs_prefer_real_runs_over_previews(ingest_env: Path) -> None:
    def record(kind: str, status: str, day: int) -> None:
        write_record(RunRecord(run_id=f"r{day}{kind}", kind=kind, source="shop", source_type="sqlite", owner="o",
                               destination="local_duckdb", destination_type="duckdb", dataset="shop", actor="a",
                               status=status, started_at=datetime(2025, 1, day, tzinfo=UTC)))

    record("run", "failed", 1)
    record("preview", "success", 2)
    assert onboarding.last_runs()["shop"]["status"] == "failed"


# --- helpers of the wizard -----------------------------------------------------------------

def test_checks_are_expanded_for_the_form() -> None:
    assert onboarding.expand_check({"not_null": "id"}) == {"not_null": {"column": "id"}}
    assert onboarding.expand_check({"unique": "id"}) == {"unique": {"columns": ["id"]}}
    assert onboarding.expand_check({"row_count": {"min": 1}}) == {"row_count": {"min": 1}}
    assert onboarding.expand_check("junk") == "junk"


@pytest.mark.parametrize(("glob", "entry"), [
    ("orders/*.csv", {"name": "orders", "glob": "orders/*.csv", "format": "csv"}),
    ("events/**/*.jsonl", {"name": "events", "glob": "events/**/*.jsonl", "format": "jsonl"}),
    ("Prices 2024.parquet", {"name": "prices_2024", "glob": "Prices 2024.parquet", "format": "parquet"}),
    ("*.dat", {"name": "files", "glob": "*.dat"}),
    ("sales_*.csv", {"name": "sales", "glob": "sales_*.csv", "format": "csv"}),
])
def test_a_glob_guesses_name_and_format(glob: str, entry: dict) -> None:
    assert onboarding.file_table_entry(glob) == entry


def test_autofill_uses_what_discovery_knows() -> None:
    from ingestion_core.onboarding.discovery import ColumnInfo, TableInfo

    info = TableInfo("public", "orders", [ColumnInfo("id", "BIGINT", False, True),
                                          ColumnInfo("updated_at", "TIMESTAMP", True)])
    entry = {"name": "orders", "mode": "incremental"}
    assert onboarding.autofill_table(entry, info, "full") == ["cursor"] and entry["cursor"] == "updated_at"
    entry = {"name": "orders"}
    assert onboarding.autofill_table(entry, info, "merge") == ["primary_key"] and entry["primary_key"] == ["id"]
    assert onboarding.autofill_table({"name": "x", "mode": "full"}, info, "full") == []


def test_a_template_starts_a_draft_without_name_or_references(ingest_env: Path) -> None:
    import shutil

    shutil.copytree(REPO / "configs" / "templates", ingest_env / "configs" / "templates")
    assert onboarding.source_templates()["rest_api"] == "rest_api"
    assert "destination_duckdb" not in onboarding.source_templates()
    draft = onboarding.draft_from_template("rest_api")
    assert "name" not in draft.data and "token" not in draft.data["source"]["auth"]
    with pytest.raises(ValueError, match="no template named"):
        onboarding.draft_from_template("../etc")


def test_connection_test_of_an_incomplete_draft_names_the_fields(ingest_env: Path) -> None:
    report = onboarding.test_connection(Draft({"source": {"type": "postgres"}}), timeout=5)
    assert not report.ok and "source.host" in report.reason and "Connection step" in report.mitigation
    report = onboarding.test_connection(Draft({"source": {}}), timeout=5)
    assert not report.ok and "choose a source type" in report.reason


def test_slow_calls_are_cut_at_the_timeout() -> None:
    never = threading.Event()  # the call cannot return before the test releases it: only the timeout ends it
    try:
        with pytest.raises(TimeoutError, match=r"no answer within 0\.2 s"):
            onboarding.run_with_timeout(never.wait, 0.2)
    finally:
        never.set()
    with pytest.raises(KeyError):
        onboarding.run_with_timeout(lambda: {}["x"], 1)


def test_discovery_of_an_unreachable_server_is_an_answer_not_an_error(ingest_env: Path) -> None:
    draft = pg_draft(host="127.0.0.1", port=1, connect_timeout_seconds=2)
    found = onboarding.discover_schemas(draft, timeout=10)
    assert not found.ok and "cannot be reached" in found.hint and "pa55-word!" not in found.error


def test_the_endpoint_test_hook_needs_a_valid_draft(ingest_env: Path) -> None:
    draft = Draft({"name": "api", "owner": "o", "source": {"type": "rest_api", "base_url": "nope"},
                   "tables": [{"name": "a", "path": "a"}]})
    try:
        onboarding.test_endpoint(draft, "a", timeout=2)
    except onboarding.EndpointTestUnavailable:
        pytest.skip("the REST library has no endpoint test")
    except ValueError as exc:
        assert "fix the form first" in str(exc) and "base_url" in str(exc)
    else:
        raise AssertionError("an invalid draft was tested")


def test_the_user_guide_shows_every_step_picture_and_each_exists() -> None:
    import re

    guide = (REPO / "docs" / "user-guide.md").read_text(encoding="utf-8")
    shown = set(re.findall(r"\(images/([\w-]+\.png)\)", guide))
    browser_tests = "".join((REPO / "tests" / "browser" / name).read_text(encoding="utf-8")  # the guide's pictures
                            for name in ("test_onboard_postgres.py", "test_test_run.py", "test_everywhere.py"))
    taken = {f"{name}.png" for name in re.findall(r'ui\.shot\("([\w-]+)"\)', browser_tests)}
    taken |= set(re.findall(r'"images" / "([\w-]+\.png)"', browser_tests))
    assert taken and taken == shown, "the browser test takes the guide's pictures (UPDATE_SCREENSHOTS=1)"
    for name in shown:
        image = REPO / "docs" / "images" / name
        assert image.exists() and image.stat().st_size < 200_000, name
