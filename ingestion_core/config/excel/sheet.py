"""The Excel framework's job sheet (``SourceConfig``): its columns, and its rows read as
(row number, column -> cell value); unknown columns come back as problems."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REST_COLUMNS = ("pagination_type", "auth_type", "page_size", "rate_limit")  # columns some teams added
SHEET = "SourceConfig"
REQUIRED_COLUMNS = ("source_type", "source_name", "table_name", "load_type")
OPTIONAL_COLUMNS = ("schema_name", "watermark_column", "last_watermark", "api_endpoint", "enabled", "chunk_size")
OUTPUT_ONLY_COLUMNS = ("last_run_date", "last_run_status")  # written by the old framework; reported
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS + REST_COLUMNS + OUTPUT_ONLY_COLUMNS


@dataclass(frozen=True)
class Problem:
    """Something not imported: ``where`` is e.g. ``SourceConfig!row 7``, ``reason`` says why and how to fix;
    ``source`` the source (or ``destination <name>``) it belongs to, when known."""

    where: str
    reason: str
    source: str = ""


# --- reading the workbook ------------------------------------------------------------------

def read_job_sheet(path: Path) -> tuple[str, list[tuple[int, dict[str, Any]]], list[Problem]]:
    """The job sheet's title, its non-blank rows (Excel row number, column -> cell value) and
    the columns it ignores. Raises ValueError when the file or the sheet is not what is expected."""
    workbook = _open_workbook(path)
    try:
        sheet = _find_sheet(workbook, path)
        lines = enumerate(sheet.iter_rows(values_only=True), start=1)
        header_row, header = _header_line(lines, path, sheet.title)
        columns, problems = _columns(header, header_row, path, sheet.title)
        rows = []
        for number, values in lines:
            if all(text(v) == "" for v in values):
                continue
            rows.append((number, {name: values[i] if i < len(values) else None for i, name in columns.items()}))
        return sheet.title, rows, problems
    finally:
        workbook.close()


def _open_workbook(path: Path) -> Any:
    import openpyxl

    if not path.is_file():
        raise ValueError(f"{path}: no such file; give the path of the framework's workbook (ingestion_config.xlsx)")
    try:
        return openpyxl.load_workbook(path, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a file that is not an .xlsx
        raise ValueError(
            f"{path} cannot be read as an Excel workbook ({exc.__class__.__name__}); expected the framework's "
            f".xlsx file with a sheet '{SHEET}'. Save it as 'Excel Workbook (.xlsx)', without a password"
        ) from None


def _find_sheet(workbook: Any, path: Path) -> Any:
    for title in workbook.sheetnames:
        if title.strip().lower() == SHEET.lower():
            return workbook[title]
    raise ValueError(
        f"{path} has no sheet '{SHEET}' (its sheets: {', '.join(workbook.sheetnames) or 'none'}); the job sheet "
        f"must be named {SHEET} and have one row per table with the columns {', '.join(COLUMNS[:10])}"
    )


def _header_line(lines: Iterator[tuple[int, tuple[Any, ...]]], path: Path, sheet: str) -> tuple[int, list[str]]:
    for number, values in lines:
        if any(text(v) for v in values):
            return number, [_column_name(v) for v in values]
    raise ValueError(f"sheet '{sheet}' of {path} is empty; its first row must hold the column names "
                     f"({', '.join(REQUIRED_COLUMNS)}, ...) and each further row one table")


def _column_name(value: Any) -> str:
    return re.sub(r"[\s-]+", "_", text(value).lower())


def _columns(header: list[str], row: int, path: Path, sheet: str) -> tuple[dict[int, str], list[Problem]]:
    """Column index -> known column name; unknown columns come back as problems."""
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ValueError(
            f"sheet '{sheet}' of {path} lacks the column(s) {', '.join(missing)} in its header (row {row}); "
            f"expected the columns {', '.join(COLUMNS)} (found: {', '.join(h for h in header if h) or 'none'})"
        )
    twice = sorted({h for h in header if h and header.count(h) > 1})
    if twice:
        raise ValueError(f"sheet '{sheet}' of {path} has the column(s) {', '.join(twice)} twice; keep one of each")
    columns, problems = {}, []
    for index, name in enumerate(header):
        if name in COLUMNS:
            columns[index] = name
        elif name:
            problems.append(Problem(f"{sheet}!column {_letter(index)}", f"column '{name}' is not a column of the "
                                    f"job sheet ({', '.join(COLUMNS)}); its values are not imported"))
    return columns, problems


def _letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(index + 1)


def text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
