"""20 processes save one config at the same moment, all from the same revision: exactly one lands (the
file holds its bytes), the 19 others get a ConflictError, then reload, re-apply their change and save with
the new revision until it lands. No update is lost (every writer's mark is in the final file, once) and no
file is ever corrupt (a reader process parses and validates the file all along, and every revision kept in
the config history parses and validates).

Figures (printed with ``-s``): first round landed / conflicts, retries, reads by the reader, corrupt reads."""

from __future__ import annotations

import multiprocessing
import re
from pathlib import Path
from typing import Any

from ingestion_core.config.store import ConfigStore, ConflictError, revision_of
from tests.unit.test_config_store import _reader  # polls the file: every read must parse and validate

WRITERS = 20
BASE = """\
name: shop
owner: market-de
description: writers
source: {type: sqlite, path: shop.sqlite}
tables:
  - {name: orders, mode: merge, primary_key: order_id}
"""


def with_mark(text: str, mark: str) -> str:
    """The writer's change: its mark appended to the description (re-applied on top of what it reloads)."""
    return re.sub(r"^(description: .*)$", rf"\1 {mark}", text, count=1, flags=re.M)


def _writer(root: str, index: int, base_revision: str, barrier: Any, results: Any) -> None:
    store, mark = ConfigStore(root), f"w{index:02d}"
    text = with_mark(BASE, mark)
    barrier.wait()
    try:
        store.save_text("sources", "shop", text, actor=f"writer{index}", expected_revision=base_revision)
        results.put((index, "landed", 0, text))
        return
    except ConflictError as exc:
        assert "shop" in str(exc)
    retries = 0
    while True:  # reload, re-apply, save with the revision just read
        retries += 1
        loaded = store.load("sources", "shop")
        text = with_mark(loaded.text, mark)
        try:
            store.save_text("sources", "shop", text, actor=f"writer{index}", expected_revision=loaded.revision)
            break
        except ConflictError:
            continue
    results.put((index, "conflict", retries, text))


def test_twenty_concurrent_saves_from_one_revision(ingest_env: Path) -> None:
    store = ConfigStore()
    base = store.save_text("sources", "shop", BASE, actor="setup", expected_revision=None)
    context = multiprocessing.get_context("fork")
    barrier, stop, results = context.Barrier(WRITERS), context.Event(), context.Queue()
    root = str(store.root)
    reader = context.Process(target=_reader, args=(root, stop, results))
    reader.start()
    writers = [context.Process(target=_writer, args=(root, i, base, barrier, results)) for i in range(WRITERS)]
    for process in writers:
        process.start()
    outcomes = [results.get(timeout=120) for _ in range(WRITERS)]
    for process in writers:
        process.join(timeout=60)
        assert process.exitcode == 0
    stop.set()
    _, reads, corrupt = results.get(timeout=60)
    reader.join(timeout=60)

    landed = [o for o in outcomes if o[1] == "landed"]
    conflicts = [o for o in outcomes if o[1] == "conflict"]
    assert (len(landed), len(conflicts)) == (1, WRITERS - 1)
    winner_text = with_mark(BASE, f"w{landed[0][0]:02d}")
    assert landed[0][3] == winner_text
    # the history: one save per writer after setup, a contiguous chain of revisions, the first from `base`
    # to the winner's bytes; every kept intermediate file parses and validates
    saves = [c for c in store.history("sources", "shop") if c.action == "save"]
    after = {c.revision_before: c for c in saves}  # two saves from one revision would collapse here
    chain = [after[None]]
    while chain[-1].revision_after in after and len(chain) <= len(saves):
        chain.append(after[chain[-1].revision_after])
    assert len(chain) == len(saves) == 1 + WRITERS
    assert (chain[1].revision_before, chain[1].revision_after) == (base, revision_of(winner_text.encode()))
    for change in chain:
        kept = store.revision_text("sources", "shop", change.revision_after)
        assert kept is not None and revision_of(kept.encode()) == change.revision_after
        assert store.validate_text("sources", kept, "shop")[0] is not None
    final = store.path("sources", "shop").read_text("utf-8")
    last_saved = [o[3] for o in conflicts if o[3] == final]
    assert last_saved == [final], "the file is not the bytes of the last save"
    marks = re.search(r"^description: writers (.*)$", final, re.M).group(1).split()
    assert sorted(marks) == [f"w{i:02d}" for i in range(WRITERS)], "an update was lost or applied twice"
    assert marks[0] == f"w{landed[0][0]:02d}"
    assert corrupt == [] and reads > 0
    assert store.load_source("shop").config.description == "writers " + " ".join(marks)
    assert sorted(p.name for p in (ingest_env / "configs" / "sources").iterdir()) == ["shop.yaml"]
    retries = sum(o[2] for o in conflicts)
    print(f"\nconcurrent saves: {WRITERS} writers, first round {len(landed)} landed / {len(conflicts)} conflicts, "
          f"{retries} reload-and-save attempts until all landed, 0 lost updates, reader: {reads} reads, "
          f"{len(corrupt)} corrupt")
