"""Old YAML keeps working: renamed keys are read under their new names with a warning, older
versions are upgraded step by step, and a newer version is refused with the fix."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ingestion_core.config import migrations
from ingestion_core.config.migrations import NewerVersionError, migrate
from ingestion_core.config.models.source_file import CURRENT_VERSION
from ingestion_core.config.store import dump_yaml, parse_yaml, validate_source_data


def source(**top: Any) -> dict[str, Any]:
    return {"name": "shop", "owner": "market-de", "source": {"type": "postgres", "host": "db", "database": "s"},
            "tables": [{"name": "orders"}], **top}


def with_table(**fields: Any) -> dict[str, Any]:
    return source(tables=[{"name": "orders", **fields}])


RENAMES = [
    ("watermark_column", with_table(mode="incremental", watermark_column="updated_at"),
     "tables[0].watermark_column", lambda c: c.tables[0].cursor == "updated_at"),
    ("incremental_column", with_table(mode="incremental", incremental_column="id"),
     "tables[0].incremental_column", lambda c: c.tables[0].cursor == "id"),
    ("last_watermark", with_table(mode="incremental", cursor="id", last_watermark=100),
     "tables[0].last_watermark", lambda c: c.tables[0].initial_value == 100),
    ("write_disposition replace", with_table(write_disposition="replace"),
     "tables[0].write_disposition", lambda c: c.tables[0].mode == "full"),
    ("write_disposition merge", with_table(write_disposition="merge", primary_key="id"),
     "tables[0].write_disposition", lambda c: c.tables[0].mode == "merge"),
    ("write_disposition in defaults", source(defaults={"write_disposition": "replace"}),
     "defaults.write_disposition", lambda c: c.defaults.mode == "full"),
    ("table_name", source(tables=[{"table_name": "orders"}]), "tables[0].table_name",
     lambda c: c.tables[0].name == "orders"),
    ("schema_name", with_table(schema_name="sales"), "tables[0].schema_name", lambda c: c.tables[0].schema_ == "sales"),
    ("user", source(source={"type": "postgres", "host": "db", "database": "s", "user": "app"}), "source.user",
     lambda c: c.source.username == "app"),
    ("dbname", source(source={"type": "postgres", "host": "db", "dbname": "s"}), "source.dbname",
     lambda c: c.source.database == "s"),
    ("team", {**{k: v for k, v in source().items() if k != "owner"}, "team": "market-de"}, "team",
     lambda c: c.owner == "market-de"),
]


@pytest.mark.parametrize(("config", "path", "applied"), [r[1:] for r in RENAMES], ids=[r[0] for r in RENAMES])
def test_renamed_key_warns_and_still_validates(config: dict[str, Any], path: str, applied: Any) -> None:
    before = copy.deepcopy(config)
    model, issues = validate_source_data(config)
    assert model is not None and applied(model)
    assert [(i.path, i.severity) for i in issues] == [(path, "warning")]
    old, new = issues[0].message.split("'")[1], issues[0].message.split("'")[3]
    assert f"'{old}' is now called '{new}'; " in issues[0].message
    assert issues[0].line("shop.yaml").startswith(f"shop.yaml:{path}: warning: ")
    assert config == before


def test_renamed_value_is_named_in_the_warning() -> None:
    _, issues = validate_source_data(with_table(write_disposition="replace"))
    assert "write mode: full" in issues[0].message and "new name of replace" in issues[0].message


def test_saving_a_migrated_file_writes_the_new_names() -> None:
    model, _ = validate_source_data(with_table(mode="incremental", watermark_column="updated_at",
                                               last_watermark="2024-01-01"))
    saved = parse_yaml(dump_yaml(model))[0]
    assert saved["tables"][0] == {"name": "orders", "mode": "incremental", "cursor": "updated_at",
                                  "initial_value": "2024-01-01"}
    assert validate_source_data(saved)[1] == []


def test_old_and_new_name_together_keeps_the_new_one() -> None:
    model, issues = validate_source_data(with_table(mode="incremental", cursor="id", watermark_column="updated_at"))
    assert model.tables[0].cursor == "id"
    assert issues[0].severity == "warning" and "also set; 'watermark_column' was ignored" in issues[0].message


def test_renamed_key_with_a_bad_value_is_still_an_error() -> None:
    model, issues = validate_source_data(with_table(write_disposition="skip"))
    assert model is None
    assert [(i.path, i.severity) for i in issues] == [("tables[0].write_disposition", "warning"),
                                                      ("tables[0].mode", "error")]
    assert "'skip' is not allowed; choose one of full, append, incremental, merge, scd2" in issues[1].message


def test_every_table_is_migrated() -> None:
    model, issues = validate_source_data(source(tables=[{"table_name": "a"}, {"table_name": "b"}]))
    assert [t.name for t in model.tables] == ["a", "b"]
    assert [i.path for i in issues] == ["tables[0].table_name", "tables[1].table_name"]


@pytest.mark.parametrize("version", [2, 99])
def test_newer_version_is_an_error_with_the_fix(version: int) -> None:
    model, issues = validate_source_data(source(version=version))
    assert model is None and [i.path for i in issues] == ["version"]
    assert f"version {version} was written by a newer release" in issues[0].message
    assert f"upgrade the portal or set version: {CURRENT_VERSION}" in issues[0].message
    with pytest.raises(NewerVersionError):
        migrate(source(version=version))


def test_older_version_is_upgraded_step_by_step(monkeypatch: pytest.MonkeyPatch) -> None:
    def step(data: dict[str, Any]) -> dict[str, Any]:
        data["owner"] = data.pop("owning_team")
        return data

    monkeypatch.setitem(migrations.VERSION_STEPS, CURRENT_VERSION - 1, step)
    old = {**{k: v for k, v in source().items() if k != "owner"}, "owning_team": "market-de",
           "version": CURRENT_VERSION - 1}
    before = copy.deepcopy(old)
    model, issues = validate_source_data(old)
    assert model is not None and model.owner == "market-de" and model.version == CURRENT_VERSION
    assert [(i.path, i.severity) for i in issues] == [("version", "warning")]
    assert f"upgraded from version {CURRENT_VERSION - 1}" in issues[0].message
    assert old == before


def test_current_version_is_not_touched() -> None:
    data, warnings = migrate(source(version=CURRENT_VERSION))
    assert warnings == [] and data == source(version=CURRENT_VERSION)


@pytest.mark.parametrize("data", [None, [], "text", 5])
def test_non_mappings_pass_through(data: Any) -> None:
    assert migrate(data) == (data, [])
