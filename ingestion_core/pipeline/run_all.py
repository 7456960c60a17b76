"""Run many sources in one go, honouring ``after``: ``ingest run --all`` and the local scheduler.

Each source runs as its own ``ingest run SOURCE`` process (the existing run path: its lock,
its record, its log), up to ``parallel`` at a time. A source starts once every source it runs
``after`` has ended; when one of them did not succeed (failed, partial, quality failed, skipped,
disabled, invalid) it is skipped, with the reason. A dependency of a selected source is run
too, even when the selection (``--owner``, ``--tag``) left it out.

Example::

    result = run_all(actor="ops", owner="market-de", parallel=2)
    print(result.table())        # one line per source, then the totals
    result.exit_code             # 0 when every source succeeded
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Any

from ingestion_core.common import settings
from ingestion_core.config.dependencies import closure
from ingestion_core.config.store import ConfigStore
from ingestion_core.observe.records import find_record, new_run_id
from ingestion_core.pipeline.run_control import _child_environment, _tail, lock_holder

OK = "success"


@dataclass
class SourceOutcome:
    """How one source of a run-all ended: a run's status, or ``skipped`` with the reason."""

    source: str
    status: str
    run_id: str | None = None
    rows: int = 0
    duration_s: float = 0.0
    reason: str = ""
    dependency_only: bool = False  # run because a selected source runs after it


@dataclass
class RunAllResult:
    outcomes: list[SourceOutcome] = field(default_factory=list)
    duration_s: float = 0.0

    def count(self, *statuses: str) -> int:
        return sum(o.status in statuses for o in self.outcomes)

    @property
    def exit_code(self) -> int:
        """0 every source succeeded; 2 the others only failed a quality check; 130 cancelled; else 1."""
        statuses = {o.status for o in self.outcomes} - {OK}
        if not statuses:
            return 0
        if "cancelled" in statuses:
            return 130
        return 2 if statuses == {"quality_failed"} else 1

    def totals(self) -> dict[str, Any]:
        return {"total": len(self.outcomes), "succeeded": self.count(OK),
                "failed": len(self.outcomes) - self.count(OK, "skipped"), "skipped": self.count("skipped"),
                "rows": sum(o.rows for o in self.outcomes), "duration_s": round(self.duration_s, 1)}

    def as_json(self) -> dict[str, Any]:
        return {**self.totals(), "exit_code": self.exit_code, "sources": [asdict(o) for o in self.outcomes]}

    def table(self) -> str:
        rows = [("SOURCE", "STATUS", "ROWS", "TIME", "RUN / REASON")] + [
            (o.source + (" (dependency)" if o.dependency_only else ""), o.status, f"{o.rows:,}",
             f"{o.duration_s:.1f} s", o.run_id if o.status != "skipped" and not o.reason else o.reason)
            for o in self.outcomes]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join([*(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)), r[4] or ""]).rstrip()
                 for r in rows]
        t = self.totals()
        lines.append(f"Total: {t['total']}  Succeeded: {t['succeeded']}  Failed: {t['failed']}  "
                     f"Skipped: {t['skipped']}  Rows: {t['rows']:,}  Time: {t['duration_s']:.1f} s")
        return "\n".join(lines)


@dataclass
class Plan:
    """The sources to run, dependencies first, with what stops one from starting."""

    order: list[str]
    after: dict[str, list[str]]
    blocked: dict[str, str]  # source -> why it cannot run (invalid, disabled)
    selected: set[str]


def plan_run_all(store: ConfigStore, names: list[str] | None = None, owner: str | None = None,
                 tags: list[str] | None = None) -> Plan:
    """Every enabled source (or ``names``) of ``owner`` carrying one of ``tags``, plus their dependencies."""
    after: dict[str, list[str]] = {}
    blocked: dict[str, str] = {}
    chosen: set[str] = set()
    for summary in store.list_sources():
        loaded = store.load("sources", summary.name) if summary.valid else None
        config = loaded.config if loaded is not None else None
        after[summary.name] = list(config.after) if config is not None else []
        if config is None:
            first = next((i for i in summary.issues if i.severity == "error"), None)
            blocked[summary.name] = (f"invalid config ({first.path + ': ' if first and first.path else ''}"
                                     f"{first.message if first else 'see ingest validate'}); fix it with ingest "
                                     "validate")
        elif not summary.enabled:
            blocked[summary.name] = "disabled (enabled: false)"
        tag_ok = not tags or bool(set(tags) & set(config.tags if config is not None else []))
        if (summary.name in (names or ()) or (names is None and summary.enabled)) and tag_ok \
                and (owner is None or summary.owner == owner):
            chosen.add(summary.name)
    unknown = sorted(set(names or ()) - set(after))
    if unknown:
        raise LookupError(f"no source named {', '.join(unknown)}; the sources are {', '.join(sorted(after))}")
    return Plan(closure(chosen, after), after, blocked, chosen)


Launcher = Callable[[str], SourceOutcome]


class SubprocessLauncher:
    """Runs one source as ``ingest run SOURCE`` in a child process and reads its record."""

    def __init__(self, store: ConfigStore, actor: str, trigger: str):
        self.store, self.actor, self.trigger = store, actor, trigger
        self.children: set[subprocess.Popen] = set()
        self.lock = threading.Lock()

    def __call__(self, source: str) -> SourceOutcome:
        holder = lock_holder(source)
        if holder:
            return SourceOutcome(source, "skipped", reason=f"already running: run {holder.get('run_id')}")
        run_id = new_run_id(source)
        command = [sys.executable, "-m", "ingestion_core", "--actor", self.actor, "run", source, "--run-id", run_id,
                   "--trigger", self.trigger]
        output = settings.data_dir() / "logs" / "launch" / f"{run_id}.out"
        output.parent.mkdir(parents=True, exist_ok=True)
        with open(output, "wb") as handle:
            child = subprocess.Popen(command, env=_child_environment(self.store), stdin=subprocess.DEVNULL,
                                     stdout=handle, stderr=subprocess.STDOUT)
            with self.lock:
                self.children.add(child)
            code = child.wait()
            with self.lock:
                self.children.discard(child)
        record = find_record(run_id)
        if record is None:  # it never started its run: the lock was taken meanwhile, or a config error
            text = _tail(output, 3)
            status = "skipped" if "already running" in text else "failed"
            return SourceOutcome(source, status, reason=f"exit code {code}: {text}")
        return SourceOutcome(source, record.status, record.run_id, record.rows_total, record.duration_s or 0.0,
                             reason=record.error.message if record.error else "")

    def stop(self) -> None:
        """Cancel the runs under way (each records itself as cancelled)."""
        with self.lock:
            for child in self.children:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signal.SIGTERM)


def execute(plan: Plan, launch: Launcher, parallel: int = 1,
            on_outcome: Callable[[SourceOutcome], None] | None = None) -> RunAllResult:
    """Run the plan: each source once its dependencies ended, ``parallel`` at a time."""
    started = time.monotonic()
    done: dict[str, SourceOutcome] = {}
    pending = list(plan.order)
    running: dict[Future, str] = {}

    def finish(outcome: SourceOutcome) -> None:
        outcome.dependency_only = outcome.source not in plan.selected
        done[outcome.source] = outcome
        if on_outcome:
            on_outcome(outcome)

    with ThreadPoolExecutor(max(parallel, 1), thread_name_prefix="run-all") as pool:
        while pending or running:
            for name in list(pending):
                if any(d not in done for d in plan.after.get(name, [])):
                    continue
                reason = plan.blocked.get(name) or _failed_dependency(name, plan, done)
                if reason:
                    pending.remove(name)
                    finish(SourceOutcome(name, "skipped", reason=reason))
                elif len(running) < max(parallel, 1):
                    pending.remove(name)
                    running[pool.submit(launch, name)] = name
            if not running:
                continue
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                finish(future.result())
                running.pop(future)
    return RunAllResult([done[n] for n in plan.order], time.monotonic() - started)


def _failed_dependency(name: str, plan: Plan, done: dict[str, SourceOutcome]) -> str:
    for dependency in plan.after.get(name, []):
        outcome = done[dependency]
        if outcome.status != OK:
            run = f" (run {outcome.run_id})" if outcome.run_id else ""
            return f"dependency {dependency} {outcome.status}{run}; it runs after: {', '.join(plan.after[name])}"
    return ""


def run_all(*, actor: str, owner: str | None = None, tags: list[str] | None = None, parallel: int = 1,
            trigger: str = "cli", names: list[str] | None = None, store: ConfigStore | None = None,
            on_outcome: Callable[[SourceOutcome], None] | None = None) -> RunAllResult:
    """Every enabled source (of ``owner``, with one of ``tags``), dependencies first."""
    store = store or ConfigStore()
    plan = plan_run_all(store, names, owner, tags)
    launcher = SubprocessLauncher(store, actor, trigger)
    try:
        return execute(plan, launcher, parallel, on_outcome)
    except KeyboardInterrupt:
        launcher.stop()
        raise
