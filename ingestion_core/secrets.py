"""Secret references and the providers that resolve them.

YAML never holds a secret, only a reference:

- ``${secrets.a.b}``: key ``b`` of section ``[a]`` in the secrets file (``${secrets.a.b.c}``:
  key ``c`` of ``[a.b]``); from the environment as ``SECRETS__A__B``; providers with flat
  names (Databricks scopes, Key Vault) use ``a-b``.
- ``${env:NAME}``: the environment variable ``NAME``.

Every resolved value is registered with the process-wide masker, and every log line, error
message and run record goes through :func:`mask` before it is written or shown.

Example::

    >>> resolve_value("postgresql+psycopg2://app:${secrets.sales.password}@db/sales")  # doctest: +SKIP
    'postgresql+psycopg2://app:s3cr3t@db/sales'
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ingestion_core import settings
from ingestion_core.atomic import atomic_write_text, folder_lock

_PATH = r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+"
_ENV = r"[A-Za-z_][A-Za-z0-9_]*"
_REF = rf"\$\{{(?:secrets\.(?P<path>{_PATH})|env:(?P<env>{_ENV}))\}}"
REFERENCE_PATTERN = rf"^\$\{{(secrets\.{_PATH}|env:{_ENV})\}}$"
_REF_RE = re.compile(_REF)
_WHOLE_REF_RE = re.compile(rf"^{_REF}$")


@dataclass(frozen=True)
class SecretReference:
    """``kind`` is ``secrets`` or ``env``; ``path`` the dotted path or the variable name."""

    kind: str
    path: str

    @property
    def text(self) -> str:
        return f"${{secrets.{self.path}}}" if self.kind == "secrets" else f"${{env:{self.path}}}"

    @property
    def parts(self) -> list[str]:
        return self.path.split(".")


class SecretNotFoundError(LookupError):
    """A reference no provider could resolve; the message names every place looked."""

    def __init__(self, reference: SecretReference, looked: list[str]):
        self.reference = reference
        self.looked = looked
        places = "; ".join(looked)
        super().__init__(
            f"secret {reference.text} is not set. Looked in: {places}. Add it to one of "
            f"these (the portal's forms write the secrets file for you)."
        )


def is_reference(value: str) -> bool:
    return bool(_WHOLE_REF_RE.match(value or ""))


def parse_reference(value: str) -> SecretReference:
    match = _WHOLE_REF_RE.match(value or "")
    if not match:
        raise ValueError(
            "not a secret reference: write ${secrets.<section>.<key>} or ${env:NAME}"
        )
    return _from_match(match)


def _from_match(match: re.Match[str]) -> SecretReference:
    if match["path"]:
        return SecretReference("secrets", match["path"])
    return SecretReference("env", match["env"])


def find_references(value: Any) -> list[SecretReference]:
    """Every reference inside a string, or anywhere inside nested dicts / lists."""
    if isinstance(value, str):
        return [_from_match(m) for m in _REF_RE.finditer(value)]
    if isinstance(value, dict):
        return [r for v in value.values() for r in find_references(v)]
    if isinstance(value, (list, tuple)):
        return [r for v in value for r in find_references(v)]
    return []


# --- providers -----------------------------------------------------------------------------

class SecretProvider(Protocol):
    """One place secrets live. ``get`` returns None when the reference is not there."""

    def describe(self, reference: SecretReference) -> str: ...

    def get(self, reference: SecretReference) -> str | None: ...


class EnvironmentProvider:
    """``${env:NAME}`` -> ``$NAME``; ``${secrets.a.b}`` -> ``$SECRETS__A__B``."""

    @staticmethod
    def variable(reference: SecretReference) -> str:
        if reference.kind == "env":
            return reference.path
        return "SECRETS__" + "__".join(p.upper().replace("-", "_") for p in reference.parts)

    def describe(self, reference: SecretReference) -> str:
        return f"environment variable {self.variable(reference)}"

    def get(self, reference: SecretReference) -> str | None:
        return os.environ.get(self.variable(reference))


class TomlFileProvider:
    """The local secrets file (``.dlt/secrets.toml`` by default): ``[a] b = "..."``."""

    _lock = threading.Lock()

    def __init__(self, path: Path | None = None):
        self._path = path

    @property
    def path(self) -> Path:
        return self._path or settings.secrets_file()

    def describe(self, reference: SecretReference) -> str:
        *section, key = reference.parts
        return f"file {self.path} section [{'.'.join(section)}] key {key}"

    def _read(self) -> dict[str, Any]:
        import tomlkit

        if not self.path.exists():
            return {}
        try:
            return tomlkit.parse(self.path.read_text(encoding="utf-8"))
        except tomlkit.exceptions.ParseError as exc:
            # the parser's message names a line and column, never the file's content
            raise ValueError(f"the secrets file {self.path} is not valid TOML ({exc}); fix it") from None

    def get(self, reference: SecretReference) -> str | None:
        if reference.kind != "secrets":
            return None
        node: Any = self._read()
        for part in reference.parts:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return None if isinstance(node, dict) else str(node)

    def put(self, reference: SecretReference, value: str) -> None:
        """Store a value (atomically, file mode 0600), keeping the file's other content."""
        import tomlkit

        if reference.kind != "secrets":
            raise ValueError(f"{reference.text}: only ${{secrets...}} references can be written")
        with self._lock, folder_lock(self.path.parent):
            document = self._read() or tomlkit.document()
            node = document
            *sections, key = reference.parts
            for depth, part in enumerate(sections):
                if part not in node:
                    node[part] = tomlkit.table()
                elif not isinstance(node[part], dict):
                    where = ".".join(sections[: depth + 1])
                    raise ValueError(f"cannot store {reference.text}: '{where}' in {self.path} is a value, "
                                     "not a section; choose another name")
                node = node[part]
            node[key] = value
            atomic_write_text(self.path, tomlkit.dumps(document), mode=0o600)


def default_providers() -> list[SecretProvider]:
    """The chain, first match wins: environment, the local secrets file, then the remote
    providers ``INGEST_SECRET_PROVIDERS`` names (Databricks secret scope, Azure Key Vault; see
    ``ingestion_core.databricks.providers``)."""
    from ingestion_core.databricks.providers import configured_providers

    return [EnvironmentProvider(), TomlFileProvider(), *configured_providers()]


def resolve_reference(
    reference: SecretReference, providers: list[SecretProvider] | None = None
) -> str:
    providers = default_providers() if providers is None else providers
    for provider in providers:
        value = provider.get(reference)
        if value is not None:
            register_secret(value)
            return value
    raise SecretNotFoundError(reference, [p.describe(reference) for p in providers])


def resolve_value(value: Any, providers: list[SecretProvider] | None = None) -> Any:
    """Replace every reference inside a string or nested dicts / lists with its value."""
    if isinstance(value, str):
        return _REF_RE.sub(lambda m: resolve_reference(_from_match(m), providers), value)
    if isinstance(value, dict):
        return {k: resolve_value(v, providers) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_value(v, providers) for v in value]
    return value


def store_secret(reference: SecretReference | str, value: str, provider: Any = None) -> SecretReference:
    """Write a value into ``provider`` (default: the local secrets file; any provider with a
    ``put``, e.g. a Databricks secret scope); returns the reference to put into YAML."""
    ref = parse_reference(reference) if isinstance(reference, str) else reference
    (provider or TomlFileProvider()).put(ref, value)
    register_secret(value)
    return ref


# --- masking -------------------------------------------------------------------------------

MASK = "***"
_known: set[str] = set()
_known_lock = threading.Lock()
_PATTERNS = [
    # user:password@ in URLs (the password may itself hold '@': mask up to the last one)
    (re.compile(r"(?P<keep>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)[^\s/]+(?=@)"), r"\g<keep>" + MASK),
    # a bare bearer / basic credential, e.g. in a message quoting a header value
    (re.compile(r"(?P<keep>\b(?:Bearer|Basic)\s+)(?!\$\{)[A-Za-z0-9._~+/=-]{8,}"), r"\g<keep>" + MASK),
    # Authorization-style headers and key=value pairs
    (re.compile(r"(?i)(?P<keep>\b(?:authorization|proxy-authorization)\s*[:=]\s*(?:bearer|basic|token)?\s*)(?!\$\{|(?:bearer|basic|token)\s+\$\{)[^\s,;'\"]+"),
     r"\g<keep>" + MASK),
    (re.compile(r"(?i)(?P<keep>\b[\w-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|account[_-]?key|sig)\b['\"]?\s*[:=]\s*['\"]?)(?!\$\{)[^\s,;'\"&}]+"),
     r"\g<keep>" + MASK),
]


def register_secret(value: str) -> None:
    """Remember a value so that :func:`mask` hides it everywhere from now on."""
    if value and len(value) >= 4:
        with _known_lock:
            _known.add(value)


def mask(text: Any) -> str:
    """The one masking helper: known secret values, URL passwords and credential pairs."""
    result = str(text)
    with _known_lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        result = result.replace(value, MASK)
    for pattern, replacement in _PATTERNS:
        result = pattern.sub(replacement, result)
    return result


def mask_data(value: Any) -> Any:
    """:func:`mask` applied to every string inside nested dicts and lists."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: mask_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_data(v) for v in value]
    return value
