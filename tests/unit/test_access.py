"""Access rules: teams.yaml read strictly, principals from the file and from sign-in claims,
who may do what to a source, and the refusal message and audit line."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from ingestion_core.config import access
from ingestion_core.config.access import AccessDeniedError, Principal, can, principal_for, require
from ingestion_core.config.validation import ConfigError

TEAMS = textwrap.dedent("""\
    version: 1
    admins: [Lead@Example.com]
    sign_in:
      teams_claim: groups
      admin_groups: [ingest-admins]
    teams:
      market-de:
        description: German market
        members: [ana@example.com, bob]
      market-fr:
        members: [claire@example.com]
""")


def write_teams(project: Path, text: str = TEAMS) -> Path:
    path = project / "configs" / "teams.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def audit(project: Path) -> list[dict]:
    log = project / ".ingest" / "audit" / "config_changes.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_without_a_teams_file_everyone_is_an_admin_in_local_mode(ingest_env: Path) -> None:
    principal = principal_for("whoever")
    assert principal == Principal("whoever", frozenset(), admin=True, source="local")
    assert principal.local and can(principal, "delete", "market-de") and can(principal, "edit", None)


def test_members_admins_and_outsiders_from_the_file(ingest_env: Path) -> None:
    write_teams(ingest_env)
    ana = principal_for("ANA@example.com")  # users compare without case
    assert ana.teams == {"market-de"} and not ana.admin and not ana.local
    assert principal_for("lead@example.com").admin
    assert principal_for("bob").teams == {"market-de"}
    assert principal_for("mallory@example.com") == Principal("mallory@example.com", frozenset(), False, "teams.yaml")


def test_sign_in_claims_add_teams_and_admin(ingest_env: Path) -> None:
    write_teams(ingest_env)
    claims = {"email": "dora@example.com", "groups": ["market-fr", "unrelated-group"]}
    dora = principal_for("dora@example.com", claims)
    assert dora.teams == {"market-fr", "unrelated-group"} and not dora.admin and dora.source == "teams.yaml + claim"
    assert principal_for("eve", {"groups": "ingest-admins"}).admin  # a claim may be one space-separated string
    # the e-mail claim identifies a user whose display name differs
    assert principal_for("Ana Lopez", {"email": "ana@example.com"}).teams == {"market-de"}


@pytest.mark.parametrize(
    ("principal", "action", "owner", "allowed"),
    [
        (Principal("ana", frozenset({"market-de"})), "edit", "market-de", True),
        (Principal("ana", frozenset({"market-de"})), "run", "market-de", True),
        (Principal("ana", frozenset({"market-de"})), "delete", "market-de", True),
        (Principal("ana", frozenset({"market-de"})), "restore", "market-de", True),
        (Principal("ana", frozenset({"market-de"})), "view", "market-fr", True),
        (Principal("ana", frozenset({"market-de"})), "edit", "market-fr", False),
        (Principal("ana", frozenset({"market-de"})), "run", "market-fr", False),
        (Principal("ana", frozenset({"market-de"})), "delete", "market-fr", False),
        (Principal("ana", frozenset({"market-de"})), "edit", None, False),  # destinations: admins only
        (Principal("nobody"), "view", None, True),
        (Principal("nobody"), "edit", "market-de", False),
        (Principal("lead", admin=True), "delete", "market-fr", True),
        (Principal("lead", admin=True), "edit", None, True),
    ],
)
def test_who_may_do_what(principal: Principal, action: str, owner: str | None, allowed: bool) -> None:
    assert can(principal, action, owner) is allowed


def test_an_unknown_action_is_a_programming_error_naming_the_choices() -> None:
    with pytest.raises(ValueError, match="action must be one of view, edit, run, delete, restore, not 'write'"):
        can(Principal("ana"), "write", "market-de")


def test_refusal_says_who_what_which_source_owner_and_whom_to_ask_and_is_recorded(ingest_env: Path) -> None:
    write_teams(ingest_env)
    with pytest.raises(AccessDeniedError) as refused:
        require("claire@example.com", "run", "market-de", name="sales_de")
    message = str(refused.value)
    assert message.startswith("claire@example.com may not run source 'sales_de': it is owned by team "
                              "'market-de' and you are in market-fr.")
    assert "Ask a member of 'market-de' or an admin (Lead@Example.com, group ingest-admins)" in message
    assert "add you to team 'market-de' in teams.yaml" in message
    [line] = audit(ingest_env)
    assert (line["actor"], line["action"], line["kind"], line["name"], line["outcome"]) == (
        "claire@example.com", "run", "sources", "sales_de", "denied")
    assert line["reason"] == message


def test_allowed_calls_return_the_principal_and_record_nothing(ingest_env: Path) -> None:
    write_teams(ingest_env)
    assert require("ana@example.com", "edit", "market-de", name="sales_de").teams == {"market-de"}
    assert audit(ingest_env) == []


def test_destination_refusal_names_the_admins(ingest_env: Path) -> None:
    write_teams(ingest_env)
    with pytest.raises(AccessDeniedError, match=r"only admins may change it\. Ask an admin"):
        require("ana@example.com", "edit", None, name="databricks_prod", kind="destinations")


BAD_TEAMS = [
    ("unknown key", "admins: [a]\nteam: {}\n", "team"),
    ("bad team name", "admins: [a]\nteams:\n  Market DE: {members: [a]}\n", "not a valid team name"),
    ("user with a space", "admins: [a]\nteams:\n  market-de: {members: [ana lopez]}\n",
     "'ana lopez' is not a user name"),
    ("members not a list", "admins: [a]\nteams:\n  market-de: {members: ana}\n", "members"),
    ("no admin", "teams:\n  market-de: {members: [ana]}\n", "names no admin"),
    ("not a mapping", "- a\n- b\n", "must be a mapping"),
    ("yaml tag", "admins: !!python/name:os.system\n", "tags"),
    ("newer version", "version: 2\nadmins: [a]\n", "version"),
]


@pytest.mark.parametrize(("case", "text", "fragment"), BAD_TEAMS, ids=[c[0] for c in BAD_TEAMS])
def test_an_invalid_teams_file_fails_closed_with_a_clear_message(ingest_env: Path, case: str, text: str,
                                                                  fragment: str) -> None:
    path = write_teams(ingest_env, text)
    with pytest.raises(ConfigError) as failed:
        principal_for("a")
    assert fragment in str(failed.value) and str(path) in str(failed.value)


def test_the_teams_file_example_in_the_security_docs_is_valid(tmp_path: Path) -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text(encoding="utf-8")
    example = next(block for block in docs.split("```yaml\n")[1:] if "teams:" in block).split("```")[0]
    (tmp_path / "teams.yaml").write_text(example, encoding="utf-8")
    policy = access.load_teams(tmp_path / "teams.yaml")
    assert policy is not None and policy.admins and set(policy.teams) == {"market-de", "market-fr"}
