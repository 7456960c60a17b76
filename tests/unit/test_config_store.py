"""The YAML store: safe parsing, names that cannot escape the config dir, atomic writes under
revision checks (with real concurrent processes), the bin and the audit log."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from ingestion_core.config.store import (
    DESTINATION_SCHEMA_COMMENT,
    MAX_FILE_BYTES,
    SCHEMA_COMMENT,
    ConfigNotFoundError,
    ConfigStore,
    ConflictError,
    dump_yaml,
    parse_yaml,
    revision_of,
    validate_source_data,
)
from ingestion_core.config.validation import ConfigError

SHOP = textwrap.dedent("""\
    # the demo shop: comments are kept by save_text
    name: shop
    owner: market-de
    source: {type: sqlite, path: demo/data/shop.sqlite}
    tables:
      - {name: orders, mode: merge, primary_key: order_id}
""")


def shop_text(description: str) -> str:
    return SHOP.replace("owner: market-de\n", f"owner: market-de\ndescription: {description}\n")


@pytest.fixture
def store(ingest_env: Path) -> ConfigStore:
    return ConfigStore()


def audit_lines(ingest_env: Path) -> list[dict[str, Any]]:
    log = ingest_env / ".ingest" / "audit" / "config_changes.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()]


# --- YAML safety ---------------------------------------------------------------------------

BILLION_LAUGHS = textwrap.dedent("""\
    a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
    d: [*c, *c, *c, *c, *c, *c, *c, *c, *c]
""")

UNSAFE_YAML = [
    ("alias", "name: &n shop\nowner: *n\n", "line 2", "aliases"),
    ("billion laughs", BILLION_LAUGHS, "line 2", "aliases"),
    ("python object tag", "name: !!python/object/apply:os.system ['echo hacked']\n", "line 1", "!!python/object"),
    ("python name tag", "name: !!python/name:os.system\n", "line 1", "tags"),
    ("custom tag", "name: !vault shop\n", "line 1", "tags"),
    ("binary tag", "name: !!binary c2hvcA==\n", "line 1", "!!binary"),
    ("set tag", "tables: !!set {a, b}\n", "line 1", "!!set"),
    ("duplicate key", "name: shop\nowner: a\nname: other\n", "line 3", "key 'name' appears twice"),
    ("nested duplicate key", "source:\n  type: sqlite\n  type: postgres\n", "line 3", "'type' appears twice"),
    ("list as key", "? [a, b]\n: 1\n", "line 1", "plain name"),
    ("unclosed bracket", "name: shop\ntables: [\n", "line 3", "YAML syntax error"),
    ("bad indentation", "name: shop\n  owner: x\n", "line 2", "YAML syntax error"),
    ("tab indentation", "name: shop\n\towner: x\n", "line 2", "YAML syntax error"),
    ("two documents", "name: a\n---\nname: b\n", "line 2", "single document"),
]


@pytest.mark.parametrize(("text", "where", "fragment"), [c[1:] for c in UNSAFE_YAML], ids=[c[0] for c in UNSAFE_YAML])
def test_unsafe_or_broken_yaml_is_refused_with_its_line(text: str, where: str, fragment: str) -> None:
    data, issues = parse_yaml(text)
    assert data is None and len(issues) == 1
    assert issues[0].path.startswith(where + ","), issues
    assert fragment.lower() in issues[0].message.lower()


def test_billion_laughs_is_refused_quickly_without_expanding() -> None:
    laughs = BILLION_LAUGHS + "".join(f"e{i}: &e{i} [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n" for i in range(20))
    data, issues = parse_yaml(laughs)
    assert data is None and "aliases" in issues[0].message


def test_deeply_nested_yaml_is_refused_not_crashing() -> None:
    data, issues = parse_yaml("a: " + "[" * 20000 + "]" * 20000)
    assert data is None and "nested too deeply" in issues[0].message


def test_file_over_512_kib_is_refused() -> None:
    big = SHOP + "description: '" + "x" * MAX_FILE_BYTES + "'\n"
    data, issues = parse_yaml(big)
    assert data is None and "512 KiB" in issues[0].message
    assert parse_yaml(SHOP + "description: '" + "x" * 1000 + "'\n")[1] == []


@pytest.mark.parametrize("text", ["", "# only a comment\n", "- a\n- b\n", "just text\n", "42\n"])
def test_non_mapping_document_is_refused(text: str) -> None:
    data, issues = parse_yaml(text)
    assert issues == []
    config, issues = validate_source_data(data)
    assert config is None and issues[0].path == "" and "must be a mapping" in issues[0].message


def test_yaml_dates_and_plain_types_still_load() -> None:
    data, issues = parse_yaml("a: 2024-01-01\nb: 1.5\nc: yes\nd: ~\n")
    assert issues == [] and str(data["a"]) == "2024-01-01" and data["c"] is True and data["d"] is None


def test_broken_file_loads_with_issues_instead_of_raising(store: ConfigStore) -> None:
    path = store.path("sources", "shop")
    path.write_text("name: shop\nowner: *x\n")
    loaded = store.load("sources", "shop")
    assert not loaded.valid and loaded.config is None and "line 2" in loaded.issues[0].path
    with pytest.raises(ConfigError, match="aliases"):
        store.load_source("shop")


# --- names ---------------------------------------------------------------------------------

BAD_NAMES = ["../x", "../../etc/passwd", ".hidden", "a/b", "a\\b", "A", "Shop", "x.yaml", "", " ", "1shop",
             "shop-de", "shop\n", "a" * 200, "/abs", "~user", "shop\x00"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_unsafe_names_are_refused(store: ConfigStore, ingest_env: Path, name: str) -> None:
    for call in (lambda: store.path("sources", name), lambda: store.read("sources", name),
                 lambda: store.load("sources", name),
                 lambda: store.save_text("sources", name, SHOP, actor="ana", expected_revision=None),
                 lambda: store.delete("sources", name, actor="ana")):
        with pytest.raises(ValueError, match="not a valid config name"):
            call()
    assert sorted(p.name for p in (ingest_env / "configs").iterdir()) == ["destinations", "sources"]
    assert list((ingest_env / "configs" / "sources").iterdir()) == []


def test_unknown_kind_is_refused(store: ConfigStore) -> None:
    with pytest.raises(ValueError, match="sources, destinations"):
        store.path("templates", "shop")


def test_missing_config_names_the_ones_there(store: ConfigStore) -> None:
    store.save_text("sources", "shop", SHOP, actor="ana", expected_revision=None)
    with pytest.raises(ConfigNotFoundError, match=r"no source named 'shops'.*there are: shop"):
        store.load("sources", "shops")


def test_misnamed_files_are_listed_as_invalid_not_crashing(store: ConfigStore, ingest_env: Path) -> None:
    (ingest_env / "configs" / "sources" / "Sales DE.yaml").write_text(SHOP)
    (ingest_env / "configs" / "sources" / "weird.yaml").write_text("name: weird\nowner: 5\nsource: {type: [x]}\n"
                                                                   "tables: []\n")
    store.save_text("sources", "shop", SHOP, actor="ana", expected_revision=None)
    summaries = {s.name: s for s in store.list_sources()}
    assert store.names("sources") == ["shop", "weird"]
    assert not summaries["Sales DE"].valid and "rename the file" in summaries["Sales DE"].issues[0].message
    assert summaries["weird"].owner == "5" and summaries["weird"].type == "['x']" and not summaries["weird"].valid
    assert summaries["shop"].valid and summaries["shop"].tables == 1 and summaries["shop"].type == "sqlite"


def test_name_must_match_the_file_name(store: ConfigStore) -> None:
    with pytest.raises(ConfigError, match=r"differs from the file name 'other\.yaml'"):
        store.save_text("sources", "other", SHOP, actor="ana", expected_revision=None)


# --- saving: revisions, atomic writes, audit -----------------------------------------------

def test_save_text_keeps_comments_and_returns_the_revision(store: ConfigStore) -> None:
    revision = store.save_text("sources", "shop", SHOP, actor="ana", expected_revision=None)
    path = store.path("sources", "shop")
    assert path.read_text() == SHOP and revision == revision_of(SHOP.encode())
    assert store.load_source("shop").revision == revision


def test_save_source_writes_the_schema_comment_and_validates(store: ConfigStore) -> None:
    config, _ = validate_source_data(parse_yaml(SHOP)[0])
    store.save_source(config, actor="ana", expected_revision=None)
    text = store.path("sources", "shop").read_text()
    assert text.startswith(SCHEMA_COMMENT) and text == dump_yaml(config, SCHEMA_COMMENT)
    with pytest.raises(ConfigError, match="tables"):
        store.save_source({"name": "bad", "owner": "x", "source": {"type": "sqlite", "path": "x"}},
                          actor="ana", expected_revision=None)
    assert not store.path("sources", "bad").exists()


def test_invalid_text_is_never_written(store: ConfigStore) -> None:
    revision = store.save_text("sources", "shop", SHOP, actor="ana", expected_revision=None)
    for broken in (SHOP.replace("mode: merge", "mode: upsert"), "name: shop\n  bad", SHOP + "ownr: x\n"):
        with pytest.raises(ConfigError):
            store.save_text("sources", "shop", broken, actor="ana", expected_revision=revision)
    assert store.path("sources", "shop").read_text() == SHOP


def test_save_over_an_existing_file_needs_its_revision(store: ConfigStore) -> None:
    first = store.save_text("sources", "shop", SHOP, actor="ana", expected_revision=None)
    with pytest.raises(ConflictError, match="already exists"):
        store.save_text("sources", "shop", shop_text("new"), actor="bob", expected_revision=None)
    with pytest.raises(ConflictError, match=r"changed by someone else.*reload"):
        store.save_text("sources", "shop", shop_text("new"), actor="bob", expected_revision="0" * 16)
    second = store.save_text("sources", "shop", shop_text("new"), actor="bob", expected_revision=first)
    with pytest.raises(ConflictError):
        store.save_text("sources", "shop", shop_text("newer"), actor="ana", expected_revision=first)
    assert store.load_source("shop").revision == second


def test_saving_a_deleted_file_with_its_old_revision_is_refused(store: ConfigStore) -> None:
    revision = store.save_text("sources", "shop", SHOP, actor="ana", expected_revision=None)
    store.delete("sources", "shop", actor="bob")
    with pytest.raises(ConflictError, match="was deleted"):
        store.save_text("sources", "shop", shop_text("x"), actor="ana", expected_revision=revision)


@pytest.mark.parametrize("actor", ["", "   ", None])
def test_every_change_needs_an_actor(store: ConfigStore, actor: Any) -> None:
    with pytest.raises(ValueError, match="needs an actor"):
        store.save_text("sources", "shop", SHOP, actor=actor, expected_revision=None)
    assert not store.path("sources", "shop").exists()
    store.save_text("sources", "shop", SHOP, actor="ana", expected_revision=None)
    with pytest.raises(ValueError, match="needs an actor"):
        store.delete("sources", "shop", actor=actor)
    assert store.path("sources", "shop").exists()


def test_audit_log_records_the_actor_of_every_change(store: ConfigStore, ingest_env: Path) -> None:
    first = store.save_text("sources", "shop", SHOP, actor="ana", expected_revision=None)
    second = store.save_text("sources", "shop", shop_text("v2"), actor="bob", expected_revision=first)
    store.delete("sources", "shop", actor="carla", expected_revision=second)
    lines = audit_lines(ingest_env)
    assert [(e["actor"], e["action"], e["name"]) for e in lines] == [
        ("ana", "save", "shop"), ("bob", "save", "shop"), ("carla", "delete", "shop")]
    assert lines[0]["revision_before"] is None and lines[0]["revision_after"] == first
    assert lines[1]["revision_before"] == first and lines[2]["revision_after"] is None
    assert all(e["time"] and e["kind"] == "sources" for e in lines)


def test_no_temp_files_are_left_behind(store: ConfigStore, ingest_env: Path) -> None:
    revision = store.save_text("sources", "shop", SHOP, actor="ana", expected_revision=None)
    with pytest.raises(ConflictError):
        store.save_text("sources", "shop", shop_text("x"), actor="ana", expected_revision="stale")
    store.save_text("sources", "shop", shop_text("y"), actor="ana", expected_revision=revision)
    assert [p.name for p in (ingest_env / "configs" / "sources").iterdir()] == ["shop.yaml"]


# --- the bin -------------------------------------------------------------------------------

def test_delete_moves_to_the_bin_and_restore_puts_it_back(store: ConfigStore, ingest_env: Path) -> None:
    store.save_text("sources", "shop", SHOP, actor="ana", expected_revision=None)
    binned = store.delete("sources", "shop", actor="bob")
    assert not store.path("sources", "shop").exists()
    assert binned.parent == ingest_env / ".ingest" / "bin" / "sources" and binned.read_text() == SHOP
    assert store.deleted("sources") == [binned]
    assert "shop" not in store.names("sources")

    store.restore(binned, actor="carla")
    assert store.path("sources", "shop").read_text() == SHOP and store.deleted("sources") == []
    assert [(e["actor"], e["action"]) for e in audit_lines(ingest_env)][-1] == ("carla", "save")


def test_restore_refuses_to_overwrite_a_new_file_of_that_name(store: ConfigStore) -> None:
    store.save_text("sources", "shop", SHOP, actor="ana", expected_revision=None)
    binned = store.delete("sources", "shop", actor="ana")
    store.save_text("sources", "shop", shop_text("new one"), actor="bob", expected_revision=None)
    with pytest.raises(ConflictError, match="already exists"):
        store.restore(binned, actor="ana")
    assert binned.exists() and "new one" in store.path("sources", "shop").read_text()


def test_delete_checks_the_revision_and_existence(store: ConfigStore) -> None:
    store.save_text("sources", "shop", SHOP, actor="ana", expected_revision=None)
    with pytest.raises(ConflictError):
        store.delete("sources", "shop", actor="ana", expected_revision="stale")
    assert store.path("sources", "shop").exists()
    store.delete("sources", "shop", actor="ana")
    with pytest.raises(ConfigNotFoundError):
        store.delete("sources", "shop", actor="ana")


def test_deleting_twice_keeps_both_in_the_bin(store: ConfigStore) -> None:
    for text in (SHOP, shop_text("second")):
        store.save_text("sources", "shop", text, actor="ana", expected_revision=None)
        store.delete("sources", "shop", actor="ana")
    assert sorted(p.read_text() for p in store.deleted("sources")) == sorted([SHOP, shop_text("second")])


def test_destinations_are_stored_too(store: ConfigStore) -> None:
    loaded = store.load_destination("local_duckdb")
    assert loaded.config.type == "duckdb"
    store.save_text("destinations", "lake", "type: filesystem\nbucket_url: file:///lake\n", actor="ana",
                    expected_revision=None)
    assert set(store.destinations()) == {"local_duckdb", "lake"}
    with pytest.raises(ConfigError, match="parquet, jsonl, delta"):
        store.save_text("destinations", "bad", "type: filesystem\nbucket_url: x\nformat: csv\n", actor="ana",
                        expected_revision=None)


def test_save_destination_writes_the_schema_comment(store: ConfigStore) -> None:
    config = store.load_destination("local_duckdb").config
    store.save_destination("warehouse", config, actor="ana", expected_revision=None)
    text = store.path("destinations", "warehouse").read_text()
    assert text.startswith(DESTINATION_SCHEMA_COMMENT) and "type: duckdb" in text
    assert store.load_destination("warehouse").config == config


def test_merge_source_is_refused_when_saved_against_a_parquet_destination(store: ConfigStore) -> None:
    store.save_text("destinations", "lake", "type: filesystem\nbucket_url: file:///lake\n", actor="ana",
                    expected_revision=None)
    with pytest.raises(ConfigError, match="set format: delta"):
        store.save_text("sources", "shop", SHOP + "destination: lake\n", actor="ana", expected_revision=None)
    with pytest.raises(ConfigError, match="destination 'nowhere' does not exist"):
        store.save_text("sources", "shop", SHOP + "destination: nowhere\n", actor="ana", expected_revision=None)


# --- concurrent writers (real processes) -----------------------------------------------------

WRITERS = 12


def _writer(root: str, index: int, base_revision: str, start: Any, proceed: Any, results: Any) -> None:
    """Saves from the shared base revision; on conflict waits for the check, reloads and lands."""
    store = ConfigStore(root)
    text = shop_text(f"writer {index}")
    start.wait()
    try:
        store.save_text("sources", "shop", text, actor=f"writer{index}", expected_revision=base_revision)
        results.put((index, "landed first"))
    except ConflictError:
        results.put((index, "conflict"))
    proceed.wait()
    while True:  # reload and apply again until it lands (someone else may save in between)
        current = store.load("sources", "shop").revision
        try:
            store.save_text("sources", "shop", text, actor=f"writer{index}", expected_revision=current)
            break
        except ConflictError:
            continue
    results.put((index, "landed after reload"))


def _reader(root: str, stop: Any, results: Any) -> None:
    """Polls the file while the writers write: every read must be one complete valid file."""
    store = ConfigStore(root)
    reads, bad = 0, []
    while not stop.is_set():
        try:
            text = store.path("sources", "shop").read_text("utf-8")
        except FileNotFoundError:
            bad.append("file missing")
            continue
        config, _ = store.validate_text("sources", text, "shop")
        reads += 1
        if config is None:
            bad.append(repr(text[:200]))
    results.put(("reader", reads, bad))


def test_concurrent_writers_from_one_revision(store: ConfigStore, ingest_env: Path) -> None:
    base = store.save_text("sources", "shop", SHOP, actor="setup", expected_revision=None)
    context = multiprocessing.get_context("fork")
    start, proceed, stop = context.Barrier(WRITERS), context.Event(), context.Event()
    results = context.Queue()
    root = str(store.root)
    reader = context.Process(target=_reader, args=(root, stop, results))
    writers = [context.Process(target=_writer, args=(root, i, base, start, proceed, results)) for i in range(WRITERS)]
    reader.start()
    for process in writers:
        process.start()
    first = [results.get(timeout=60) for _ in range(WRITERS)]
    winners = [i for i, outcome in first if outcome == "landed first"]
    assert len(winners) == 1 and sum(outcome == "conflict" for _, outcome in first) == WRITERS - 1
    assert store.path("sources", "shop").read_bytes() == shop_text(f"writer {winners[0]}").encode()

    proceed.set()
    later = [results.get(timeout=60) for _ in range(WRITERS)]
    for process in writers:
        process.join(timeout=60)
        assert process.exitcode == 0
    stop.set()
    _, reads, bad = results.get(timeout=60)
    reader.join(timeout=60)
    assert {outcome for _, outcome in later} == {"landed after reload"}
    assert bad == [] and reads > 0
    final = store.load_source("shop")
    assert final.text in {shop_text(f"writer {i}") for i in range(WRITERS)}
    saves = [e for e in audit_lines(ingest_env) if e["action"] == "save"]
    assert len(saves) == 1 + 1 + WRITERS  # setup, the first winner, then every writer after reloading
    assert {e["actor"] for e in saves} == {"setup"} | {f"writer{i}" for i in range(WRITERS)}
    chain = [e for e in saves if e["revision_before"] is not None]
    assert all(b["revision_before"] == a["revision_after"] for a, b in itertools.pairwise(chain))
    leftovers = [p.name for p in (ingest_env / "configs" / "sources").iterdir() if p.name != "shop.yaml"]
    assert leftovers == []


def test_atomic_write_never_leaves_half_a_file(store: ConfigStore, monkeypatch: pytest.MonkeyPatch) -> None:
    revision = store.save_text("sources", "shop", SHOP, actor="ana", expected_revision=None)

    def failing_replace(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        store.save_text("sources", "shop", shop_text("x"), actor="ana", expected_revision=revision)
    monkeypatch.undo()
    assert store.path("sources", "shop").read_text() == SHOP
    assert [p.name for p in store.path("sources", "shop").parent.iterdir()] == ["shop.yaml"]


# --- access rules: the owner team edits, others are refused and recorded --------------------

TEAMS_YAML = """\
version: 1
admins: [lead]
teams:
  market-de: {members: [ana, bob]}
  market-fr: {members: [claire]}
"""


@pytest.fixture
def teams(ingest_env: Path) -> Path:
    path = ingest_env / "configs" / "teams.yaml"
    path.write_text(TEAMS_YAML, encoding="utf-8")
    return path


def denied_lines(ingest_env: Path) -> list[tuple[str, str, str]]:
    return [(e["actor"], e["action"], e["name"]) for e in audit_lines(ingest_env) if e.get("outcome") == "denied"]


def test_other_team_save_delete_and_restore_are_refused_and_recorded(
        store: ConfigStore, ingest_env: Path, teams: Path) -> None:
    from ingestion_core.config.access import AccessDeniedError

    first = store.save_text("sources", "shop", SHOP, actor="ana", expected_revision=None)
    path = store.path("sources", "shop")
    with pytest.raises(AccessDeniedError, match="claire may not edit source 'shop': it is owned by team 'market-de'"):
        store.save_text("sources", "shop", shop_text("mine now"), actor="claire", expected_revision=first)
    with pytest.raises(AccessDeniedError, match="claire may not delete source 'shop'"):
        store.delete("sources", "shop", actor="claire", expected_revision=first)
    second = store.save_text("sources", "shop", shop_text("v2"), actor="bob", expected_revision=first)
    with pytest.raises(AccessDeniedError, match="claire may not restore source 'shop'"):
        store.restore_revision("sources", "shop", first, actor="claire", expected_revision=second)
    binned = store.delete("sources", "shop", actor="ana", expected_revision=second)
    with pytest.raises(AccessDeniedError, match="claire may not restore source 'shop'"):
        store.restore(binned, actor="claire")
    assert not path.exists() and binned.exists()  # nothing the refused calls touched changed
    assert denied_lines(ingest_env) == [("claire", "edit", "shop"), ("claire", "delete", "shop"),
                                        ("claire", "restore", "shop"), ("claire", "restore", "shop")]
    assert all("Ask a member of 'market-de' or an admin (lead)" in e["reason"]
               for e in audit_lines(ingest_env) if e.get("outcome") == "denied")


def test_a_source_cannot_be_created_for_or_given_to_another_team(
        store: ConfigStore, ingest_env: Path, teams: Path) -> None:
    from ingestion_core.config.access import AccessDeniedError

    with pytest.raises(AccessDeniedError, match="claire may not edit source 'shop'"):
        store.save_text("sources", "shop", SHOP, actor="claire", expected_revision=None)
    first = store.save_text("sources", "shop", SHOP, actor="ana", expected_revision=None)
    with pytest.raises(AccessDeniedError, match="owned by team 'market-fr' and you are in market-de"):
        store.save_text("sources", "shop", SHOP.replace("market-de", "market-fr"), actor="ana",
                        expected_revision=first)
    assert store.path("sources", "shop").read_text() == SHOP
    store.save_text("sources", "shop", SHOP.replace("market-de", "market-fr"), actor="lead", expected_revision=first)


def test_destinations_are_changed_by_admins_only(store: ConfigStore, ingest_env: Path, teams: Path) -> None:
    from ingestion_core.config.access import AccessDeniedError

    text, revision = store.read("destinations", "local_duckdb")
    with pytest.raises(AccessDeniedError, match="no owner team, so only admins may change it"):
        store.save_text("destinations", "local_duckdb", text + "# x\n", actor="ana", expected_revision=revision)
    store.save_text("destinations", "local_duckdb", text + "# x\n", actor="lead", expected_revision=revision)


def test_a_principal_with_claim_teams_is_used_as_given(store: ConfigStore, ingest_env: Path, teams: Path) -> None:
    from ingestion_core.config.access import Principal

    dora = Principal("dora@example.com", frozenset({"market-de"}))  # teams from her sign-in claim
    store.save_text("sources", "shop", SHOP, actor=dora, expected_revision=None)
    assert audit_lines(ingest_env)[-1]["actor"] == "dora@example.com"


def test_an_invalid_teams_file_refuses_every_change(store: ConfigStore, ingest_env: Path, teams: Path) -> None:
    teams.write_text("admins: [lead]\nteams: {market-de: {members: ana}}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"teams\.market-de\.members"):
        store.save_text("sources", "shop", SHOP, actor="ana", expected_revision=None)
    assert not store.path("sources", "shop").exists()


# --- history: every revision's content kept, listed, restorable -----------------------------

def test_every_saved_revision_is_kept_and_listed_newest_first(store: ConfigStore, ingest_env: Path) -> None:
    first = store.save_text("sources", "shop", SHOP, actor="ana", expected_revision=None)
    second = store.save_text("sources", "shop", shop_text("v2"), actor="bob", expected_revision=first)
    kept = sorted((ingest_env / ".ingest" / "history" / "sources" / "shop").iterdir())
    assert [p.name.split("_", 1)[1] for p in kept] == [f"{first}.yaml", f"{second}.yaml"]
    assert [p.name[:8].isdigit() for p in kept] == [True, True]  # named by UTC time, then revision
    assert store.revision_text("sources", "shop", first) == SHOP
    assert store.revision_text("sources", "shop", second) == shop_text("v2")
    history = store.history("sources", "shop")
    assert [(c.actor, c.action, c.revision_before, c.revision_after) for c in history] == [
        ("bob", "save", first, second), ("ana", "save", None, first)]


def test_a_file_written_by_hand_is_kept_as_the_baseline_of_its_first_save(
        store: ConfigStore, ingest_env: Path) -> None:
    path = store.path("sources", "shop")
    path.write_text(SHOP, encoding="utf-8")
    old = revision_of(SHOP.encode())
    store.save_text("sources", "shop", shop_text("v2"), actor="ana", expected_revision=old)
    assert store.revision_text("sources", "shop", old) == SHOP


def test_restore_revision_is_a_new_save_checked_against_the_current_revision(
        store: ConfigStore, ingest_env: Path) -> None:
    first = store.save_text("sources", "shop", SHOP, actor="ana", expected_revision=None)
    second = store.save_text("sources", "shop", shop_text("v2"), actor="bob", expected_revision=first)
    with pytest.raises(ConflictError):
        store.restore_revision("sources", "shop", first, actor="ana", expected_revision=first)
    restored = store.restore_revision("sources", "shop", first, actor="ana", expected_revision=second)
    assert restored == first and store.path("sources", "shop").read_text() == SHOP
    latest = store.history("sources", "shop")[0]
    assert (latest.actor, latest.action, latest.revision_before, latest.revision_after, latest.restored_from) == (
        "ana", "restore", second, first, first)


def test_a_deleted_source_keeps_its_history_and_can_be_restored_from_it(store: ConfigStore) -> None:
    first = store.save_text("sources", "shop", SHOP, actor="ana", expected_revision=None)
    store.delete("sources", "shop", actor="ana", expected_revision=first)
    assert store.names_with_history("sources") == ["shop"] and store.names("sources") == []
    store.restore_revision("sources", "shop", first, actor="ana", expected_revision=None)
    assert store.path("sources", "shop").read_text() == SHOP


@pytest.mark.parametrize("revision", ["0123456789abcdef", "../../etc/passwd", "*", ""])
def test_restoring_a_revision_that_was_not_kept_names_the_kept_ones(store: ConfigStore, revision: str) -> None:
    first = store.save_text("sources", "shop", SHOP, actor="ana", expected_revision=None)
    with pytest.raises(ConfigNotFoundError, match=f"was not kept; pick one of the kept revisions: {first}"):
        store.restore_revision("sources", "shop", revision, actor="ana", expected_revision=first)


def test_a_config_dir_that_is_a_git_repository_gets_one_commit_per_change_by_its_actor(
        store: ConfigStore, ingest_env: Path) -> None:
    import subprocess

    root = ingest_env / "configs"
    subprocess.run(["git", "init", "--quiet", str(root)], check=True)
    first = store.save_text("sources", "shop", SHOP, actor="ana@example.com", expected_revision=None)
    store.delete("sources", "shop", actor="bob", expected_revision=first)
    log = subprocess.run(["git", "-C", str(root), "log", "--format=%an <%ae>|%s", "--name-status"],
                         capture_output=True, text=True, check=True).stdout
    assert log.strip() == (f"bob <bob@ingest.local>|delete sources/shop\n\nD\tsources/shop.yaml\n"
                           f"ana@example.com <ana@example.com>|save sources/shop ({first})\n\nA\tsources/shop.yaml")
    commits = [e["git"] for e in audit_lines(ingest_env)]
    assert len(commits) == 2 and all(len(c) >= 7 and "not committed" not in c for c in commits)


def test_without_a_git_repository_nothing_is_committed(store: ConfigStore, ingest_env: Path) -> None:
    store.save_text("sources", "shop", SHOP, actor="ana", expected_revision=None)
    assert "git" not in audit_lines(ingest_env)[0] and not (ingest_env / "configs" / ".git").exists()


def test_authorize_checks_before_side_effects_like_storing_typed_secrets(
        store: ConfigStore, ingest_env: Path, teams: Path) -> None:
    from ingestion_core.config.access import AccessDeniedError

    store.save_text("sources", "shop", SHOP, actor="ana", expected_revision=None)
    assert store.authorize("sources", "shop", actor="bob", new_owner="market-de").teams == {"market-de"}
    with pytest.raises(AccessDeniedError, match="claire may not edit source 'shop'"):
        store.authorize("sources", "shop", actor="claire", new_owner="market-fr")
    with pytest.raises(AccessDeniedError, match="owned by team 'market-fr' and you are in market-de"):
        store.authorize("sources", "new_one", actor="ana", new_owner="market-fr")
    assert denied_lines(ingest_env) == [("claire", "edit", "shop"), ("ana", "edit", "new_one")]
