"""One log per run and an errors-only log beside it, every line masked.

Both live under INGEST_DATA_DIR/logs/YYYY/MM/DD/ and are referenced from the run record.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from ingestion_core.common import settings
from ingestion_core.config.secrets import mask

LOGGER = logging.getLogger("ingestion_core")
FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"


class MaskingFormatter(logging.Formatter):
    """Formats, then masks: secrets in messages, arguments and tracebacks never reach a file."""

    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record))


def log_paths(run_id: str) -> tuple[Path, Path]:
    day = datetime.now(UTC)
    folder = settings.data_dir() / "logs" / f"{day:%Y/%m/%d}"
    return folder / f"{run_id}.log", folder / f"{run_id}.errors.log"


@contextlib.contextmanager
def run_logging(run_id: str) -> Iterator[tuple[Path, Path]]:
    """Attach the run's two log files to the root logger (and dlt's, when it does not propagate)."""
    full, errors = log_paths(run_id)
    full.parent.mkdir(parents=True, exist_ok=True)
    handlers = [logging.FileHandler(full, encoding="utf-8"), logging.FileHandler(errors, encoding="utf-8")]
    handlers[1].setLevel(logging.WARNING)
    for handler in handlers:
        handler.setFormatter(MaskingFormatter(FORMAT))
    dlt_logger = logging.getLogger("dlt")
    loggers = [logging.getLogger()] + ([dlt_logger] if not dlt_logger.propagate else [])
    previous = LOGGER.level
    LOGGER.setLevel(logging.INFO)
    for logger in loggers:
        for handler in handlers:
            logger.addHandler(handler)
    try:
        yield full, errors
    finally:
        for logger in loggers:
            for handler in handlers:
                logger.removeHandler(handler)
        for handler in handlers:
            handler.close()
        LOGGER.setLevel(previous)
