"""Source dependencies (``after: [other_source]``): the checks across source files and the
order runs take.

``after`` names sources that must load successfully first. Run-all, the local scheduler and
Databricks jobs honour it: a dependency runs first, and a source whose dependency failed is
skipped with the reason. A dependency that is not a source, or a cycle, is a validation error
reported at ``after[i]`` of the file that has it.

Example::

    graph = ConfigStore().dependency_graph()          # {"sales": ["customers"], "customers": []}
    closure(["sales"], graph)                         # ["customers", "sales"]
    dependency_issues("sales", ["customers"], graph)  # [] when both exist and there is no cycle
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping

from ingestion_core.config.validation import ConfigIssue

Graph = Mapping[str, list[str]]


def dependency_issues(name: str, after: list[str], graph: Graph) -> list[ConfigIssue]:
    """The problems of one source's ``after`` against every other source: an unknown name, or a
    dependency that leads back to this source (a cycle)."""
    graph = {**graph, name: list(after)}
    issues = []
    known = sorted(n for n in graph if n != name)
    for index, dependency in enumerate(after):
        if dependency not in graph:
            issues.append(ConfigIssue(
                f"after[{index}]", f"'{dependency}' is not a source; known sources: {', '.join(known) or '(none)'}. "
                "Fix the name, or add configs/sources/" f"{dependency}.yaml first"))
            continue
        cycle = _path(graph, dependency, name)
        if cycle:
            loop = " -> ".join([name, *cycle])
            issues.append(ConfigIssue(
                f"after[{index}]", f"'{dependency}' depends back on {name} (cycle {loop}); sources cannot wait for "
                "each other: remove one of these after entries"))
    return issues


def _path(graph: Graph, start: str, goal: str) -> list[str] | None:
    """A dependency path start -> ... -> goal, or None."""
    stack, seen = [(start, [start])], {start}
    while stack:
        node, path = stack.pop()
        if node == goal:
            return path
        for nxt in graph.get(node, []):
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def closure(selected: Iterable[str], graph: Graph) -> list[str]:
    """``selected`` and everything they depend on (transitively), dependencies first."""
    wanted: set[str] = set()
    todo = list(selected)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(graph.get(name, []))
    return run_order(wanted, graph)


def run_order(names: Iterable[str], graph: Graph) -> list[str]:
    """``names`` ordered so that each comes after its dependencies (ties by name). A cycle raises
    ValueError naming it (``ingest validate`` reports it at its ``after`` entry first)."""
    names = set(names)
    sorter = graphlib.TopologicalSorter({n: [d for d in graph.get(n, []) if d in names] for n in names})
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        raise ValueError(f"the sources' after entries form a cycle: {' -> '.join(exc.args[1])}; run `ingest validate` "
                         "and remove one of them") from None
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order += ready
        sorter.done(*ready)
    return order
