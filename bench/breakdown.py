"""Where a preview's (or run's) time goes, per table: timers wrapped around the runner's steps
for the length of one call (bench only; the product is not changed by this module).

Example::

    with Breakdown() as breakdown:
        preview_source(config, actor="bench")
    print(breakdown.table())
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from common import table as text_table

STEPS = ("setup", "resource", "extract", "normalize", "load_wait", "load", "schema_changes", "checks",
         "record_writes", "samples")


class Breakdown:
    """Seconds per table and step (``run`` for work outside a table: the samples, the record)."""

    def __init__(self) -> None:
        self.seconds: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.wall: dict[str, float] = {}
        self._local = threading.local()
        self._undo: list[Callable[[], None]] = []

    def _table(self) -> str:
        return getattr(self._local, "table", "run")

    @contextlib.contextmanager
    def timed(self, step: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[self._table()][step] += time.perf_counter() - started

    def _wrap(self, owner: Any, name: str, step: str | Callable[..., str]) -> None:
        original = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self.timed(step(*args, **kwargs) if callable(step) else step):
                return original(*args, **kwargs)

        setattr(owner, name, wrapper)
        self._undo.append(lambda: setattr(owner, name, original))

    def __enter__(self) -> Breakdown:
        from dlt.pipeline.pipeline import Pipeline

        from ingestion_core.engine import plan as run_plan
        from ingestion_core.engine import sources
        from ingestion_core.observe import records
        from ingestion_core.pipeline import preview, runner, table_load
        from ingestion_core.quality import checks as quality
        from ingestion_core.quality import schema_changes

        original_run_table = runner._run_table

        def run_table(plan: Any, table: Any, result: Any) -> None:
            self._local.table = table.name
            started = time.perf_counter()
            try:
                original_run_table(plan, table, result)
            finally:
                self.wall[table.name] = time.perf_counter() - started
                self._local.table = "run"

        runner._run_table = run_table
        self._undo.append(lambda: setattr(runner, "_run_table", original_run_table))
        original_together, original_after = runner.preview_together, table_load.after_load

        def together(plan: Any, tables: Any) -> bool:  # a preview's tables in one pipeline: one row
            self._local.table = "(together)"
            started = time.perf_counter()
            try:
                return original_together(plan, tables)
            finally:
                self.wall["(together)"] = time.perf_counter() - started
                self._local.table = "run"

        def after_load(plan: Any, pipeline: Any, table: Any, *args: Any, **kwargs: Any) -> None:
            outer, self._local.table = self._table(), table.name  # each table's checks on its own row
            try:
                original_after(plan, pipeline, table, *args, **kwargs)
            finally:
                self._local.table = outer

        runner.preview_together = together
        self._undo.append(lambda: setattr(runner, "preview_together", original_together))
        for module in (table_load, preview):  # each calls after_load / pipeline_for by its own name
            module.after_load = after_load
            self._undo.append(lambda module=module: setattr(module, "after_load", original_after))
            self._wrap(module, "pipeline_for", "setup")
        for step in ("extract", "normalize", "load"):
            self._wrap(Pipeline, step, step)
        self._wrap(runner, "samples", "samples")
        self._wrap(run_plan, "write_record", "record_writes")
        self._wrap(records, "write_record", "record_writes")
        original_slot = table_load.load_slot

        @contextlib.contextmanager
        def slot(destination: Any) -> Iterator[None]:
            started = time.perf_counter()
            with original_slot(destination):
                self.seconds[self._table()]["load_wait"] += time.perf_counter() - started
                yield

        table_load.load_slot = slot
        self._undo.append(lambda: setattr(table_load, "load_slot", original_slot))
        hooks = {schema_changes.record_schema_changes: "schema_changes", quality.check_loaded_table: "checks"}
        originals = list(table_load.AFTER_TABLE_LOAD)

        def timed_hook(hook: Callable[..., None], step: str) -> Callable[..., None]:
            def run(*args: Any) -> None:
                with self.timed(step):
                    hook(*args)
            return run

        table_load.AFTER_TABLE_LOAD[:] = [timed_hook(h, hooks.get(h, "hooks")) for h in originals]
        self._undo.append(lambda: table_load.AFTER_TABLE_LOAD.__setitem__(slice(None), originals))
        original_kind = sources.get_source_kind

        def get_kind(name: str) -> Any:
            kind = original_kind(name)
            return _TimedKind(kind, self)

        table_load.get_source_kind = get_kind  # the resources are built there
        self._undo.append(lambda: setattr(table_load, "get_source_kind", original_kind))
        return self

    def __exit__(self, *exc: object) -> None:
        for undo in reversed(self._undo):
            undo()

    def table(self) -> str:
        names = [n for n in self.seconds if n != "run"] + ["run"]
        rows = []
        for name in names:
            steps = self.seconds[name]
            # load_wait is inside load's slot context but outside Pipeline.load: shown on its own
            rows.append((name, f"{self.wall.get(name, 0):.3f}", *(f"{steps.get(s, 0):.3f}" for s in STEPS)))
        return text_table(rows, ("table", "wall", *STEPS))


class _TimedKind:
    def __init__(self, kind: Any, breakdown: Breakdown) -> None:
        self._kind, self._breakdown = kind, breakdown

    def resource(self, ctx: Any) -> Any:
        with self._breakdown.timed("resource"):
            return self._kind.resource(ctx)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kind, name)
