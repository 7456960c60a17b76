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
