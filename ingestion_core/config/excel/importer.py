"""Migration from the Excel framework: the ``SourceConfig`` job sheet -> source YAML files.

Each row of the job sheet names one table (or API endpoint) of one source. Rows are grouped by
``source_name`` into one source file each; the connection comes from the ``[sources.<name>]``
section of the framework's secrets TOML file. Non-secret connection values (host, port,
database, username, ...) are copied, every secret becomes a reference
(``${secrets.sources.<name>.password}``) and its value stays where it is (the secrets file, or
the scope, vault or environment the secrets chain finds it in). API sources: see
``excel_rest``; the ``[destination.filesystem]`` section becomes a destination file
(``excel_destination``) that every imported source uses. docs/migrating-from-excel.md is the
user's side of this.

Rows that cannot be converted are listed with the reason (``skipped``), every value left out with
its place and the reason (``dropped``), what was carried over in another form in ``notes``;
nothing is written until :meth:`ImportResult.write`. Example::

    result = import_workbook(Path("ingestion_config.xlsx"), Path(".dlt/secrets.toml"), owner="market-de")
    for problem in result.skipped + result.dropped:
        print(problem.where, problem.reason)
    result.write(ConfigStore(), actor="ana")
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ingestion_core.common import settings
from ingestion_core.config.excel.destination import destination_from_section, filesystem_section
from ingestion_core.config.excel.rest import apply_rows, rest_connection, row_settings
from ingestion_core.config.excel.sheet import OUTPUT_ONLY_COLUMNS, REST_COLUMNS, Problem, read_job_sheet, text
from ingestion_core.config.models.base import NAME_PATTERN, TEAM_PATTERN
from ingestion_core.config.models.source_file import TABLE_MODELS
from ingestion_core.config.models.tables import TableBase
from ingestion_core.config.store import (
    DESTINATION_SCHEMA_COMMENT,
    SCHEMA_COMMENT,
    ConfigStore,
    ConflictError,
    dump_yaml,
    validate_destination_data,
    validate_source_data,
)
from ingestion_core.config.validation import ConfigIssue, issues_from_error

# workbook source_type -> source.type of the source file
SOURCE_TYPES = {"postgresql": "postgres", "oracle": "oracle", "mssql": "mssql", "azure_sql": "azure_sql",
                "api": "rest_api"}
LOAD_TYPES = {"FULL": "full", "INCREMENTAL": "incremental"}
YES = {"Y", "YES", "TRUE", "1"}
NO = {"N", "NO", "FALSE", "0"}

# secrets-section key -> connection field, copied as a plain value
VALUE_KEYS = {"host": "host", "server": "host", "port": "port", "database": "database", "dbname": "database",
              "username": "username", "user": "username"}
EXTRA_VALUE_KEYS = {
    "oracle": ("service_name", "sid"),
    "mssql": ("driver", "encrypt", "trust_server_certificate", "trusted_connection"),
    "azure_sql": ("driver", "encrypt", "trust_server_certificate", "authentication", "tenant_id", "client_id"),
}
BOOLEAN_KEYS = ("encrypt", "trust_server_certificate", "trusted_connection")
# secrets-section key -> the field it is, under another name the framework used
ALIASES = {"windows_auth": "trusted_connection", "integrated_security": "trusted_connection",
           "trustservercertificate": "trust_server_certificate", "odbc_driver": "driver"}
# secrets-section key -> connection field, written as a reference
SECRET_KEYS = {"password": "password", "url": "url", "connection_string": "url"}
EXTRA_SECRET_KEYS = {"azure_sql": {"client_secret": "client_secret"}}

# table field -> workbook column, to name the column in a row's validation message
COLUMN_OF = {"name": "table_name", "schema": "schema_name", "cursor": "watermark_column",
             "initial_value": "last_watermark", "path": "api_endpoint", "chunk_size": "chunk_size",
             "mode": "load_type", "enabled": "enabled"}
SENSITIVE_PARAM = re.compile(r"(auth|token|key|secret|password|passwd|pwd|signature|sig)", re.I)


class ImportConflictError(ValueError):
    """Some source files exist already and were left as they are; the others were written."""

    def __init__(self, written: list[Path], conflicts: list[Problem]):
        self.written = written
        self.conflicts = conflicts
        lines = [f"{len(conflicts)} source file(s) exist already and were not overwritten "
                 "(edit them in the portal, or delete them first to import them again):"]
        lines += [f"  {c.where}: {c.reason}" for c in conflicts]
        lines.append(f"{len(written)} other source file(s) written" + "".join(f"\n  {p}" for p in written))
        super().__init__("\n".join(lines))


@dataclass
class ImportResult:
    """What the import would write (``files``: source name -> YAML text, ``destinations``:
    destination name -> YAML text) and what it left out: ``skipped`` rows, ``dropped`` values
    (each with its place and the reason), ``notes`` on what was carried over."""

    files: dict[str, str] = field(default_factory=dict)
    skipped: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    conflicts: list[Problem] = field(default_factory=list)
    destinations: dict[str, str] = field(default_factory=dict)
    dropped: list[Problem] = field(default_factory=list)

    def write(self, store: ConfigStore, actor: str, *, raise_on_conflict: bool = True) -> list[Path]:
        """Save every file that does not exist yet; returns their paths.

        An existing file is never overwritten: it goes to ``conflicts`` and, unless
        ``raise_on_conflict`` is False, :class:`ImportConflictError` is raised after the others
        were written.
        """
        written: list[Path] = []
        self.conflicts = []
        for name, yaml_text in self.destinations.items():
            if store.path("destinations", name).exists():
                continue  # an existing destination is used as it is (see notes)
            store.save_text("destinations", name, yaml_text, actor=actor, expected_revision=None)
            written.append(store.path("destinations", name))
        for name, yaml_text in self.files.items():
            try:
                store.save_text("sources", name, yaml_text, actor=actor, expected_revision=None)
            except ConflictError as exc:
                self.conflicts.append(Problem(str(store.path("sources", name)), str(exc)))
                continue
            written.append(store.path("sources", name))
        if self.conflicts and raise_on_conflict:
            raise ImportConflictError(written, self.conflicts)
        return written


@dataclass
class _Job:
    """One convertible row: its source and its ``tables:`` entry."""

    row: int
    where: str
    source: str
    kind: str
    label: str
    table: dict[str, Any]
    extras: dict[str, Any] = field(default_factory=dict)
    cells: dict[str, Any] = field(default_factory=dict)


class _RowError(Exception):
    def __init__(self, reasons: list[str]):
        self.reasons = reasons
        super().__init__("; ".join(reasons))


# --- public entry point --------------------------------------------------------------------

def import_workbook(
    path: Path | str,
    secrets_path: Path | str | None = None,
    owner: str = "data-ops",
    *,
    store: ConfigStore | None = None,
    destination: str | None = None,
) -> ImportResult:
    """Convert the job sheet of ``path``; the connection sections come from ``secrets_path``
    (default: the configured local secrets file). ``store`` (default: the config dir) gives the
    known destinations. ``destination`` is set on every source: the filesystem destination made from
    the ``[destination.filesystem]`` section (named ``destination``, default ``filesystem``), else
    an existing destination (default: local_duckdb)."""
    path = Path(path)
    if not re.fullmatch(TEAM_PATTERN, owner or ""):
        raise ValueError(f"owner '{owner}' is not a valid team name: use lower-case letters, digits, '-' and "
                         "'_', starting with a letter (e.g. 'market-de')")
    store = store or ConfigStore()
    sheet, rows, skipped = read_job_sheet(path)
    secrets_file = Path(secrets_path) if secrets_path else settings.secrets_file()
    sections = _read_secrets(secrets_file, explicit=secrets_path is not None)
    result = ImportResult(skipped=skipped)
    groups: dict[str, list[_Job]] = {}
    for number, cells in rows:
        where = f"{sheet}!row {number}"
        try:
            job = _parse_row(number, where, cells)
        except _RowError as exc:
            result.skipped.append(Problem(where, "; ".join(exc.reasons)))
            continue
        problem = _fits_group(job, groups.get(job.source, []))
        if problem:
            result.skipped.append(Problem(where, problem))
        else:
            groups.setdefault(job.source, []).append(job)
    destinations = store.destinations()
    destination = _import_destination(result, sections, destination, destinations, secrets_file)
    for name, jobs in groups.items():
        base = {"name": name, "owner": owner, "description": f"Imported from {path.name} (sheet {sheet})."}
        if destination:
            base["destination"] = destination
        _build_source(result, base, jobs, sections, secrets_file, destinations)
        if name in result.files:
            for job in jobs:
                _row_reports(job, job.cells, result)
    result.notes += _notes(result, store, secrets_file, secrets_path is not None)
    result.skipped.sort(key=_problem_order)
    result.dropped.sort(key=lambda p: (p.source, _problem_order(p)))
    return result


def _import_destination(result: ImportResult, sections: dict[str, Any], name: str | None,
                        destinations: dict[str, Any], secrets_file: Path) -> str | None:
    """The destination the sources use; made from [destination.filesystem] when the file has it."""
    section = filesystem_section(sections)
    if section is None:
        if name and name not in destinations:
            raise ValueError(f"--destination {name}: there is no destination '{name}' (have: "
                             f"{', '.join(destinations) or 'none'}) and {secrets_file} has no [destination.filesystem] "
                             "section to make it from; give an existing destination or add the section")
        return name
    target = name or "filesystem"
    where = f"{secrets_file.name} [destination.filesystem]"
    imported = destination_from_section(section, f"Imported from {secrets_file.name} [destination.filesystem].")
    owner = f"destination {target}"
    result.dropped += [Problem(f"{where} key {key}", reason, owner) for key, reason in imported.dropped.items()]
    if target in destinations:
        result.notes.append(f"destination '{target}' exists already: the imported sources use it as it is; "
                            f"{where} is not written over it (import with --destination NEW_NAME to make another)")
        return target
    config, issues = (None, []) if imported.data is None else validate_destination_data(imported.data, target)
    if config is None:
        why = imported.problem or "; ".join(f"{i.path}: {i.message}" for i in issues)
        result.dropped.append(Problem(where, f"no destination made: {why}; the sources load into "
                                             f"{name or 'local_duckdb'} until it is fixed", owner))
        return name
    result.destinations[target] = dump_yaml(config, DESTINATION_SCHEMA_COMMENT)
    destinations[target] = config
    return target


def _problem_order(problem: Problem) -> tuple[int, int]:
    match = re.search(r"!(row|column) (\d+)", problem.where)
    return (0, int(match[2])) if match else (1, 0)


# --- one row -------------------------------------------------------------------------------

def _parse_row(number: int, where: str, cells: dict[str, Any]) -> _Job:
    reasons: list[str] = []
    label = text(cells.get("source_type")).lower()
    kind = SOURCE_TYPES.get(label)
    if kind is None:
        shown = f"'{label}' is unknown" if label else "is empty"
        reasons.append(f"source_type {shown}; use one of {', '.join(SOURCE_TYPES)}")
    name = text(cells.get("source_name"))
    reasons += _name_problems(name)
    table = _table(cells, kind, reasons)
    extras = row_settings(cells, table, reasons) if kind == "rest_api" else {}
    if not reasons and kind:
        reasons += _table_issues(table, kind)
    if reasons:
        raise _RowError(reasons)
    return _Job(number, where, name, kind or "", label, table, extras, cells)


def _row_reports(job: _Job, cells: dict[str, Any], result: ImportResult) -> None:
    """What the row holds beyond its table: the old framework's run columns and the REST columns
    of a non-api row. Nothing is left out without a word."""
    if job.kind != "rest_api":
        for column in REST_COLUMNS:
            if text(cells.get(column)):
                result.dropped.append(Problem(f"{job.where} column {column}", f"'{text(cells.get(column))}' applies "
                                              f"to api rows only; a {job.label} table has no such setting", job.source))
    if text(cells.get("last_watermark")) and "initial_value" not in job.table:
        result.dropped.append(Problem(f"{job.where} column last_watermark", "a FULL load has no watermark; the "
                                      "table is loaded whole at every run", job.source))
    elif "initial_value" in job.table:
        result.notes.append(f"{job.where}: table {job.table['name']} of {job.source} starts from initial_value "
                            f"{job.table['initial_value']!r} (the sheet's last_watermark): its first run loads the "
                            f"rows whose {job.table['cursor']} is from there on")
    last = [f"{c} {text(watermark_value(cells.get(c)) or cells.get(c))}" for c in OUTPUT_ONLY_COLUMNS
            if text(cells.get(c))]
    if last:
        result.notes.append(f"{job.where}: {', '.join(last)} not imported: run history starts afresh here (the "
                            "run records of `ingest runs`)")


def _name_problems(name: str) -> list[str]:
    if not name:
        return ["source_name is empty; give the name of the source this table belongs to"]
    if re.fullmatch(NAME_PATTERN, name):
        return []
    suggestion = suggest_name(name)
    why = " (it has spaces or dashes)" if re.search(r"[\s-]", name) else ""
    return [f"source_name '{name}' is not a valid name{why}: use lower-case letters, digits and '_', starting "
            f"with a letter, at most 63 characters. Rename it to '{suggestion}' in the sheet and the secrets "
            f"section to [sources.{suggestion}]"]


def suggest_name(raw: str) -> str:
    """A valid source name close to ``raw`` ('Sales-DE 2' -> 'sales_de_2')."""
    text = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"[^a-z0-9]+", "_", text).strip("_") or "source"
    if not text[0].isalpha():
        text = f"s_{text}"
    return text[:63].rstrip("_")


def _table(cells: dict[str, Any], kind: str | None, reasons: list[str]) -> dict[str, Any]:
    """The ``tables:`` entry of a row; every problem is added to ``reasons``."""
    table: dict[str, Any] = {}
    name = text(cells.get("table_name"))
    if name:
        table["name"] = name
    else:
        reasons.append("table_name is empty; fill in the table (or, for api, the resource) to load")
    if kind == "rest_api":
        _endpoint(cells, table, reasons)
    elif kind and text(cells.get("schema_name")):
        table["schema"] = text(cells["schema_name"])
    _load_type(cells, table, reasons)
    enabled = text(cells.get("enabled")).upper()
    if enabled in NO:
        table["enabled"] = False
    elif enabled and enabled not in YES:
        reasons.append(f"enabled '{text(cells.get('enabled'))}' is not Y or N; write Y, N or leave it empty (= Y)")
    chunk = cells.get("chunk_size")
    if text(chunk):
        if isinstance(chunk, (int, float)) and not isinstance(chunk, bool) and float(chunk).is_integer():
            table["chunk_size"] = int(chunk)
        elif text(chunk).isdigit():
            table["chunk_size"] = int(text(chunk))
        else:
            reasons.append(f"chunk_size '{text(chunk)}' is not a whole number; write e.g. 50000 or leave it empty")
    return table


def _load_type(cells: dict[str, Any], table: dict[str, Any], reasons: list[str]) -> None:
    load_type = text(cells.get("load_type")).upper()
    mode = LOAD_TYPES.get(load_type)
    if mode is None:
        shown = f"'{text(cells.get('load_type'))}' is unknown" if load_type else "is empty"
        reasons.append(f"load_type {shown}; write FULL or INCREMENTAL")
        return
    table["mode"] = mode
    if mode != "incremental":
        return
    cursor = text(cells.get("watermark_column"))
    if not cursor:
        reasons.append("load_type INCREMENTAL needs a watermark_column (the column that grows with every "
                       "change, e.g. updated_at); fill it in or set load_type FULL")
        return
    table["cursor"] = cursor
    start = watermark_value(cells.get("last_watermark"))
    if start is not None:
        table["initial_value"] = start


def watermark_value(value: Any) -> str | int | float | None:
    """last_watermark as the file holds it: dates and times as ISO text, numbers as numbers."""
    if value is None or isinstance(value, bool) or text(value) == "":
        return None
    if isinstance(value, datetime):
        if value.time() == time() and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (int, float)):
        return value
    return text(value)


def _endpoint(cells: dict[str, Any], table: dict[str, Any], reasons: list[str]) -> None:
    endpoint = text(cells.get("api_endpoint"))
    if not endpoint:
        reasons.append("api_endpoint is empty; an api row needs the endpoint path under base_url (e.g. /v1/orders)")
        return
    query = endpoint.split("?", 1)[1] if "?" in endpoint else ""
    secret = [p.split("=", 1)[0] for p in query.split("&") if SENSITIVE_PARAM.search(p.split("=", 1)[0])]
    if secret:
        reasons.append(f"api_endpoint carries a credential in its query ({', '.join(secret)}); move it to the "
                       "secrets section (token or api_key) and remove it from the sheet")
        return
    table["path"] = endpoint


def _table_issues(table: dict[str, Any], kind: str) -> list[str]:
    """The row's table checked on its own, so that one bad row does not sink its whole source."""
    model: type[TableBase] = TABLE_MODELS[kind]
    try:
        model.model_validate(table)
    except ValidationError as exc:
        return [f"{COLUMN_OF.get(i.path.split('.')[0], i.path)}: {i.message}"
                for i in issues_from_error(exc, table, model)]
    return []


def _fits_group(job: _Job, group: list[_Job]) -> str | None:
    """Why a row cannot join the rows already taken for its source, if it cannot."""
    if group and group[0].kind != job.kind:
        return (f"source '{job.source}' is a {group[0].label} source ({group[0].where}) but this row says "
                f"{job.label}; one source_name is one connection: fix source_type or use another source_name")
    name = str(job.table.get("name", "")).lower()
    for other in group:
        if str(other.table.get("name", "")).lower() == name:
            return (f"table '{job.table['name']}' of source '{job.source}' is already imported from {other.where} "
                    "(both would land in the same destination table); remove one row or rename the table")
    return None


# --- the connection ------------------------------------------------------------------------

def _read_secrets(path: Path, explicit: bool) -> dict[str, Any]:
    if not path.is_file():
        if explicit:
            raise ValueError(f"secrets file {path} not found; give the framework's secrets file "
                             "(e.g. .dlt/secrets.toml) holding the [sources.<source_name>] sections")
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        # the parser's message may quote the file: only its position is repeated
        at = re.search(r"\(at line \d+, column \d+\)", str(exc))
        where = f" {at[0]}" if at else ""
        raise ValueError(f"secrets file {path} is not valid TOML{where}; fix its syntax there") from None


def _section(sections: dict[str, Any], name: str, secrets_file: Path) -> dict[str, Any]:
    group = sections.get("sources")
    section = group.get(name) if isinstance(group, dict) else None
    if isinstance(section, dict):
        return section
    if not sections and not secrets_file.is_file():
        why = f"{secrets_file} does not exist; pass the framework's secrets file with --secrets"
    elif isinstance(sections.get(name), dict):
        why = f"{secrets_file} has [{name}] but not [sources.{name}]; rename the section to [sources.{name}]"
    else:
        why = f"{secrets_file} has no section [sources.{name}]; add it with the connection (host, port, " \
              "database, username, password, or base_url and token / api_key for api)"
    raise _RowError([f"connection section missing: {why}"])


def _ref(source: str, key: str) -> str:
    return f"${{secrets.sources.{source}.{key}}}"


def build_connection(kind: str, source: str, section: dict[str, Any],
                     rows: list[dict[str, Any]] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """``source:`` of a file from its secrets section: values copied, secrets as references.
    Returns it with the keys of the section it did not use, each with the reason."""
    if kind == "rest_api":
        rest = _rest_connection(source, section, rows or [])
        return rest.connection, rest.dropped
    connection: dict[str, Any] = {"type": kind}
    values = {**VALUE_KEYS, **{k: k for k in EXTRA_VALUE_KEYS.get(kind, ())}}
    secrets = {**SECRET_KEYS, **EXTRA_SECRET_KEYS.get(kind, {})}
    unused: dict[str, str] = {}
    for key, value in section.items():
        name = ALIASES.get(key.lower(), key)
        target = values.get(name) or secrets.get(name)
        if target is None:
            unused[key] = f"not a connection setting of a {kind} source (known: {', '.join([*values, *secrets])})"
        elif target in connection or (target == "url" and "host" in section):
            unused[key] = f"{target} is given twice in the section; the first is kept"
        elif name in secrets:
            connection[target] = _ref(source, key)
        elif name in BOOLEAN_KEYS:
            connection[target] = _boolean(value)
        else:
            connection[target] = value
    if kind == "azure_sql" and "client_secret" in connection and "authentication" not in connection:
        connection["authentication"] = "service_principal"
    if connection.get("username") and not (connection.get("password") or connection.get("url")):
        connection["password"] = _ref(source, "password")  # kept elsewhere: the scope, the vault, DLT_<SOURCE>_...
    return connection, unused


def _boolean(value: Any) -> Any:
    """yes / no / true / false / 1 / 0 as the framework wrote them (anything else is left for
    validation to name)."""
    word = text(value).upper()
    return True if word in YES else False if word in NO else value


def _rest_connection(source: str, section: dict[str, Any], rows: list[dict[str, Any]]) -> Any:
    base_url = text(section.get("base_url" if "base_url" in section else "url"))
    if not base_url:
        raise _RowError([f"[sources.{source}] has no base_url; add base_url = \"https://...\" (the common "
                         "prefix of the endpoints) to it"])
    if re.match(r"^[a-z]+://[^/@]*@", base_url, re.I):
        raise _RowError([f"base_url of [sources.{source}] holds credentials (user:password@); remove them and "
                         "give a token, an api_key or username / password keys instead"])
    return rest_connection(source, section, rows)


# --- one source ----------------------------------------------------------------------------

def _build_source(result: ImportResult, base: dict[str, Any], jobs: list[_Job], sections: dict[str, Any],
                  secrets_file: Path, destinations: dict[str, Any]) -> None:
    name, kind = base["name"], jobs[0].kind
    tables = [job.table for job in jobs]
    try:
        section = _section(sections, name, secrets_file)
        if kind == "rest_api":
            rest = _rest_connection(name, section, [job.extras for job in jobs])
            connection, unused = rest.connection, rest.dropped
            result.notes += [f"source {name}: {note}" for note in [*rest.notes, *apply_rows(tables, [
                job.extras for job in jobs], rest.params)]]
        else:
            connection, unused = build_connection(kind, name, section)
            if "password" in connection and "password" not in section:
                result.notes.append(f"source {name}: [sources.{name}] has no password; it is referenced as "
                                    f"{connection['password']}, found at run time in the secret scope, the Key "
                                    f"Vault or DLT_{name.upper()}_PASSWORD (see docs/migrating-from-excel.md)")
    except _RowError as exc:
        result.skipped += [Problem(job.where, "; ".join(exc.reasons)) for job in jobs]
        return
    data = {**base, "source": connection, "tables": tables}
    if all(job.table.get("enabled") is False for job in jobs):
        data["enabled"] = False
    config, issues = validate_source_data(data, destinations)
    if config is None:
        errors = [i for i in issues if i.severity == "error"]
        for job in jobs:
            reason = f"source '{name}' is not valid: " + "; ".join(_issue_text(i, jobs) for i in errors)
            result.skipped.append(Problem(job.where, reason))
        return
    result.dropped += [Problem(f"{secrets_file.name} [sources.{name}] key {key}", reason, name)
                       for key, reason in unused.items()]
    result.files[name] = dump_yaml(config, SCHEMA_COMMENT)


def _issue_text(issue: ConfigIssue, jobs: list[_Job]) -> str:
    match = re.match(r"^tables\[(\d+)\]", issue.path)
    if match and int(match[1]) < len(jobs):
        return f"{issue.path} ({jobs[int(match[1])].where}): {issue.message}"
    if issue.path.startswith("source"):
        return f"{issue.path} (from the secrets section): {issue.message}"
    return f"{issue.path}: {issue.message}" if issue.path else issue.message


def _notes(result: ImportResult, store: ConfigStore, secrets_file: Path, explicit: bool) -> list[str]:
    notes = [f"{store.path('sources', name)} exists already; writing leaves it unchanged (a conflict)"
             for name in result.files if name in store.names("sources")]
    runtime_file = settings.secrets_file()
    if explicit and result.files and secrets_file.absolute() != runtime_file.absolute():
        notes.append(
            f"the references point at [sources.<name>] keys of {secrets_file}, but runs read secrets from "
            f"{runtime_file} (or the environment variables SECRETS__SOURCES__<NAME>__<KEY> / DLT_<NAME>_<KEY>, "
            "a Databricks secret scope, a Key Vault): copy the sections there, set INGEST_SECRETS_FILE, or "
            "ingest secrets push them"
        )
    return notes
