"""``configs/teams.yaml``: which users belong to which team, who is an admin, and which sign-in
claim lists a user's teams.

Example::

    version: 1
    admins: [lead@example.com]
    sign_in:
      teams_claim: groups
      admin_groups: [ingest-admins]
    teams:
      market-de:
        description: German market
        members: [ana@example.com, bob@example.com]

A source's ``owner`` is one of these team names: its members may edit, run and delete it,
everyone else may only view it; admins may do everything. Without this file the portal runs
in local single-user mode, where every user is an admin (see ``ingestion_core.config.access``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ingestion_core.config.models.base import ConfigModel, Team, _fail, matching

USER_PATTERN = r"^[^\s,;]{1,254}$"


_check_user = matching(
    USER_PATTERN, "invalid_user",
    "'{value}' is not a user name: write the e-mail address or login name the user signs in "
    "with, without spaces, commas or semicolons (e.g. 'ana@example.com')")


# Users are e-mail addresses or login names as the sign-in provider gives them; compared without case.
# (Checked by field validators, not an Annotated alias: those are the source files' value types.)
Users = list[str]


class TeamEntry(ConfigModel):
    yaml_example = "market-de:\n  members: [ana@example.com]"

    description: str = Field("", description="What the team is, for people reading this file.")
    members: Users = Field(
        default_factory=list,
        description="Users (e-mail or login name, any case) who may edit, run and delete the team's sources.",
    )


    _members_are_users = field_validator("members")(lambda values: [_check_user(v) for v in values])


class SignInClaims(ConfigModel):
    yaml_example = "sign_in:\n  teams_claim: groups\n  admin_groups: [ingest-admins]"

    teams_claim: str | None = Field(
        None,
        min_length=1,
        description="Claim of the sign-in provider's ID token that lists the user's teams (e.g. 'groups'); "
        "each value that is a team name makes the user a member of that team.",
    )
    admin_groups: list[str] = Field(
        default_factory=list,
        description="Values of teams_claim that make the user an admin (e.g. 'ingest-admins').",
    )


class TeamsFile(ConfigModel):
    """The whole teams file."""

    yaml_example = "version: 1\nadmins: [lead@example.com]\nteams:\n  market-de:\n    members: [ana@example.com]"

    version: Literal[1] = Field(1, description="Version of the teams file format.")
    admins: Users = Field(
        default_factory=list, description="Users who may edit, run, delete and restore every source and destination."
    )
    teams: dict[Team, TeamEntry] = Field(
        default_factory=dict, description="Teams by name (the value of a source's owner:) with their members."
    )
    sign_in: SignInClaims = Field(
        default_factory=SignInClaims, description="How signed-in users' ID-token claims map to teams and admins."
    )

    _admins_are_users = field_validator("admins")(lambda values: [_check_user(v) for v in values])

    @model_validator(mode="after")
    def _grants_something(self) -> TeamsFile:
        if not self.admins and not self.sign_in.admin_groups:
            raise _fail(
                "no_admin",
                "the teams file names no admin, so nobody could edit destinations or sources without a "
                "team; add 'admins: [<your e-mail>]' (or sign_in.admin_groups)",
            )
        return self

    def teams_of(self, identities: set[str]) -> set[str]:
        """Teams that list any of ``identities`` (lower-case) as a member."""
        return {team for team, entry in self.teams.items() if identities & {m.lower() for m in entry.members}}

    def is_admin(self, identities: set[str]) -> bool:
        return bool(identities & {a.lower() for a in self.admins})
