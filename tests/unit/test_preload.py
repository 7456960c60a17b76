"""The heavy imports (ingestion_core.common.preload), in a fresh interpreter each time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import gc, json, sys
from ingestion_core.common import preload
before = len(gc.get_objects())
preload.load_heavy_modules()
preload.load_heavy_modules()  # a second call does nothing
print(json.dumps({"missing": [m for m in preload.HEAVY_MODULES if m not in sys.modules],
                  "frozen": gc.get_freeze_count(), "tracked": len(gc.get_objects()), "before": before,
                  "loaded": preload.loaded(), "seconds": preload.seconds_taken}))
"""


def test_heavy_modules_are_imported_and_kept_out_of_full_collections() -> None:
    """After the preload a full garbage collection (Streamlit runs one after every script and
    fragment run) walks only what came later, not the imported modules' objects."""
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    assert probe["missing"] == [] and probe["loaded"] and probe["seconds"] is not None
    assert probe["frozen"] > probe["before"], probe  # the imports' objects are frozen ...
    assert probe["tracked"] < probe["frozen"] / 10, probe  # ... and a full collection no longer walks them


COLLECTIONS = """
import gc, json
from ingestion_core.common import preload
disabled_before = {disabled}
if disabled_before:
    gc.disable()
seen = []
gc.callbacks.append(lambda phase, info: phase == "start" and seen.append(info["generation"]))
preload.load_heavy_modules()
print(json.dumps({{"collections": len(seen), "enabled": gc.isenabled()}}))
"""


def test_the_preload_runs_no_garbage_collection_and_leaves_the_collector_as_found() -> None:
    """The imports' objects live as long as the process: collecting while they import only
    walked them again (3 full and ~30 middle collections, 0.15-0.2 s of an ``ingest preview``)."""
    for disabled in (False, True):
        out = subprocess.run([sys.executable, "-c", COLLECTIONS.format(disabled=disabled)], cwd=REPO,
                             capture_output=True, text=True, check=True,
                             env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
        assert json.loads(out.stdout.strip().splitlines()[-1]) == {"collections": 0, "enabled": not disabled}
