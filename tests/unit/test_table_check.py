"""The Sources list's table check: a database that has not answered yet is "not checked yet",
never "invalid", and its answer is kept for the next listing once it comes."""

from __future__ import annotations

import socket
from pathlib import Path

from ingestion_core.config.store import ConfigStore
from ingestion_core.onboarding import table_check


def test_a_database_that_does_not_answer_is_not_checked_yet(ingest_env: Path, monkeypatch) -> None:
    monkeypatch.setenv("MUTE_PASSWORD", "x")
    with socket.socket() as mute:  # accepts connections (the backlog) and never says a word
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)
        (ingest_env / "configs" / "sources" / "mute.yaml").write_text(
            f"name: mute\nowner: market-de\nsource: {{type: postgres, host: 127.0.0.1, port: {mute.getsockname()[1]}, "
            "database: x, username: u, password: '${env:MUTE_PASSWORD}', connect_timeout_seconds: 600}\n"
            "tables: [{name: t}]\n")

        check = table_check.check_sources(ConfigStore(), ["mute"], timeout=0.2)["mute"]

        assert (check.state, check.note) == ("unknown", "not checked yet: no answer within 0.2 s (shown on a later "
                                                        "refresh)")
