"""Schema drift across sources: the columns added, removed or retyped by each source's latest
real run (the ``schema_changes`` its tables recorded, see :mod:`ingestion_core.quality.schema_changes`).
The alerts send one ``schema_drift`` event per such run; the Overview lists them.

Example::

    drift = schema_drift(load_run_data())
    drift[["source", "table", "added", "removed", "retyped"]]
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ingestion_core.observe.run_metrics import RunData, json_list

COLUMNS = ["source", "table", "run_id", "started_at", "added", "removed", "retyped", "summary"]
CHANGES = ("added", "removed", "retyped")


def describe_change(event: dict[str, Any]) -> str:
    """``amount (bigint -> text)``, ``email (text)``, ``fax``."""
    column = str(event.get("column"))
    if event.get("change") == "retyped":
        return f"{column} ({event.get('previous_type')} -> {event.get('type')})"
    kind = event.get("type") if event.get("change") == "added" else event.get("previous_type")
    return f"{column} ({kind})" if kind else column


def schema_drift(data: RunData) -> pd.DataFrame:
    """One row per table of each source's latest real run that changed its columns."""
    if data.real.empty:
        return pd.DataFrame(columns=COLUMNS)
    latest = set(data.real.drop_duplicates("source", keep="first")["run_id"])
    rows = []
    for row in data.tables[data.tables["run_id"].isin(latest)].to_dict("records"):
        events = json_list(row.get("schema_changes"))
        if not events:
            continue
        by_change = {c: [describe_change(e) for e in events if e.get("change") == c] for c in CHANGES}
        summary = "; ".join(f"{c}: {', '.join(v)}" for c, v in by_change.items() if v)
        rows.append({"source": row["source"], "table": row["table"], "run_id": row["run_id"],
                     "started_at": row["started_at"], **{c: ", ".join(v) for c, v in by_change.items()},
                     "summary": summary})
    return pd.DataFrame(rows, columns=COLUMNS)
