"""Source dependencies (after:): order, closure, and the validation errors for a cycle, an
unknown source and a source that runs after itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestion_core.cli.main import main
from ingestion_core.config.dependencies import closure, dependency_issues, run_order
from ingestion_core.config.store import ConfigStore
from ingestion_core.config.validation import ConfigError


def write(project: Path, name: str, after: list[str] | None = None) -> None:
    text = (f"name: {name}\nowner: market-de\nsource: {{type: sqlite, path: x.sqlite}}\n"
            "tables:\n  - {name: t, mode: full}\n")
    if after is not None:
        text += f"after: [{', '.join(after)}]\n"
    (project / "configs" / "sources" / f"{name}.yaml").write_text(text)


def test_run_order_puts_dependencies_first_and_closure_pulls_them_in() -> None:
    graph = {"sales": ["customers", "products"], "customers": [], "products": ["customers"], "other": []}
    assert run_order(graph, graph) == ["customers", "other", "products", "sales"]
    assert closure(["sales"], graph) == ["customers", "products", "sales"]
    with pytest.raises(ValueError, match=r"cycle: (a -> b -> a|b -> a -> b)"):
        run_order(["a", "b"], {"a": ["b"], "b": ["a"]})


@pytest.mark.parametrize(("after", "graph", "path", "words"), [
    (["nope"], {"a": []}, "after[0]", ["'nope' is not a source", "known sources: a", "add configs/sources/nope.yaml"]),
    (["a", "b"], {"a": [], "b": ["c"], "c": ["me"]}, "after[1]", ["'b' depends back on me", "cycle me -> b -> c -> me",
                                                                   "remove one of these after entries"]),
])
def test_dependency_issues_name_the_path_value_known_sources_and_fix(after, graph, path, words) -> None:
    issues = dependency_issues("me", after, graph)
    assert [i.path for i in issues] == [path]
    for word in words:
        assert word in issues[0].message


def test_validate_reports_a_cycle_at_after_and_the_store_refuses_to_save_one(ingest_env: Path, capsys) -> None:
    write(ingest_env, "a", ["b"])
    write(ingest_env, "b")
    assert main(["validate"]) == 0
    capsys.readouterr()
    write(ingest_env, "b", ["a"])
    assert main(["validate"]) == 1
    out = capsys.readouterr().out
    assert "b.yaml:after[0]: 'a' depends back on b (cycle b -> a -> b)" in out
    assert "a.yaml:after[0]: 'b' depends back on a (cycle a -> b -> a)" in out
    store = ConfigStore()
    assert {s.name: s.valid for s in store.list_sources()} == {"a": False, "b": False}
    write(ingest_env, "b")
    text, revision = store.read("sources", "b")
    with pytest.raises(ConfigError, match="after\\[0\\]: 'a' depends back on b"):
        store.save_text("sources", "b", text + "after: [a]\n", actor="admin", expected_revision=revision)


def test_after_itself_or_twice_is_refused(ingest_env: Path, capsys) -> None:
    write(ingest_env, "a", ["a"])
    write(ingest_env, "b", ["a", "a"])
    assert main(["validate"]) == 1
    out = capsys.readouterr().out
    assert "a.yaml:after[0]: a source cannot run after itself; remove 'a' from after" in out
    assert "b.yaml:after[1]: 'a' appears twice in after; keep it once" in out


def test_run_all_plans_dependencies_first_and_blocks_a_cycle_with_the_reason(ingest_env: Path) -> None:
    from ingestion_core.pipeline.run_all import plan_run_all

    write(ingest_env, "a", ["b"])
    write(ingest_env, "b", ["a"])
    write(ingest_env, "c", ["d"])
    write(ingest_env, "d")
    plan = plan_run_all(ConfigStore())
    assert plan.order.index("d") < plan.order.index("c")
    assert sorted(plan.blocked) == ["a", "b"]
    assert "invalid config (after[0]: 'b' depends back on a (cycle a -> b -> a)" in plan.blocked["a"]
    with pytest.raises(LookupError, match="no source named nope; the sources are a, b, c, d"):
        plan_run_all(ConfigStore(), names=["nope"])
