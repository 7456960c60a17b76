"""What to do after an error no rule knows: the hint points at the run log only when that log
was written, else it carries the end of the traceback (issue 14: "see the run log for details"
was shown for a test run that never wrote one)."""

from __future__ import annotations

import shutil
from pathlib import Path

from ingestion_core.engine.errors import explain
from portal.sources import preview_jobs
from tests.conftest import REPO


def _fail_deep_inside() -> None:
    raise RuntimeError("something nobody foresaw (password=hunter2)")


def _caught() -> BaseException:
    try:
        _fail_deep_inside()
    except RuntimeError as exc:
        return exc
    raise AssertionError("unreachable")


def test_without_a_log_the_hint_carries_the_end_of_the_traceback(tmp_path: Path) -> None:
    for log in (None, str(tmp_path / "never-written.log")):
        message, hint = explain(_caught(), log)
        assert message.startswith("RuntimeError: something nobody foresaw")
        assert "no log was written" in hint and "run log" not in hint
        assert "test_error_hints.py:" in hint and "in _fail_deep_inside" in hint
        assert "hunter2" not in hint and "hunter2" not in message


def test_with_a_written_log_the_hint_names_its_path(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text("...")
    assert explain(_caught(), str(log))[1] == f"the run log has the details: {log}"


def test_a_test_run_that_fails_before_its_record_says_where(ingest_env: Path) -> None:
    shutil.copy(REPO / "configs" / "sources" / "demo_shop.yaml", ingest_env / "configs" / "sources")
    job, _ = preview_jobs.start_preview("demo_shop", actor="")  # refused before any record or log exists
    assert job.wait(120)
    assert job.record is None
    message, hint = job.error
    assert message == "ValueError: a run needs an actor (who starts it)"
    assert hint.startswith("no log was written for it; where it failed: ") and "runner.py:" in hint, hint
