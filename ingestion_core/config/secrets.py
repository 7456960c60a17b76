"""Secret references and the providers that resolve them.

YAML never holds a secret, only a reference:

- ``${secrets.a.b}``: key ``b`` of section ``[a]`` in the secrets file (``${secrets.a.b.c}``:
  key ``c`` of ``[a.b]``); from the environment as ``SECRETS__A__B``; providers with flat
  names (Databricks scopes, Key Vault) use ``a-b``.
- ``${env:NAME}``: the environment variable ``NAME``.

Names: each provider looks a ``${secrets...}`` reference up under the names of its *name styles*
(:data:`NAME_STYLES`), in order: ``path`` (the whole path: ``[sources.pg] password``,
``SECRETS__SOURCES__PG__PASSWORD``, scope key ``sources-pg-password``) and ``framework`` (the
Excel framework's names: the path without its leading ``sources`` section, ``DLT_PG_PASSWORD``,
scope key / vault secret ``pg-password``). ``INGEST_SECRET_NAMES`` sets the styles of every
provider (default ``path,framework``), ``INGEST_SECRET_NAMES_<PROVIDER>`` (``ENV``, ``FILE``,
``DATABRICKS``, ``AZURE_KEYVAULT``) those of one; a value is written under the first style's name.

The chain: ``INGEST_SECRET_PROVIDERS`` lists the providers in the order they are asked
(``env``, ``file`` and the registered remote ones, e.g. ``databricks,azure_keyvault,env,file``,
the Excel framework's order; a list naming neither ``env`` nor ``file`` is asked after them).
Unset: ``env``, ``file``, then every remote provider that finds its context (see
:func:`register_provider`).

Every resolved value is registered with the process-wide masker, and every log line, error
message and run record goes through :func:`mask` before it is written or shown.

Example::

    >>> resolve_value("postgresql+psycopg2://app:${secrets.sales.password}@db/sales")  # doctest: +SKIP
    'postgresql+psycopg2://app:s3cr3t@db/sales'
"""

from __future__ import annotations

import importlib
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ingestion_core.common import settings
from ingestion_core.common.atomic import atomic_write_text, folder_lock

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


# --- names ---------------------------------------------------------------------------------

def _framework_parts(parts: list[str]) -> list[str]:
    return parts[1:] if len(parts) > 2 and parts[0] == "sources" else parts


NAME_STYLES: dict[str, Callable[[list[str]], list[str]]] = {
    "path": lambda parts: parts,
    "framework": _framework_parts,
}
NAMES_VARIABLE = "INGEST_SECRET_NAMES"
DEFAULT_NAME_STYLES = ("path", "framework")


def name_styles(provider: str) -> tuple[str, ...]:
    """The name styles ``provider`` (env, file, databricks, azure_keyvault) looks names up in."""
    variable = f"{NAMES_VARIABLE}_{provider.upper()}"
    setting = os.environ.get(variable) or os.environ.get(NAMES_VARIABLE) or ""
    styles = tuple(dict.fromkeys(s.strip() for s in setting.split(",") if s.strip())) or DEFAULT_NAME_STYLES
    unknown = [s for s in styles if s not in NAME_STYLES]
    if unknown:
        where = variable if os.environ.get(variable) else NAMES_VARIABLE
        raise ValueError(f"{where} names unknown name styles {', '.join(unknown)}; use a comma-separated list "
                         f"of {', '.join(NAME_STYLES)} (e.g. {','.join(DEFAULT_NAME_STYLES)})")
    return styles


def key_paths(reference: SecretReference, provider: str) -> list[list[str]]:
    """The paths ``provider`` looks ``reference`` up under, one per name style, without repeats."""
    paths: list[list[str]] = []
    for style in name_styles(provider):
        parts = NAME_STYLES[style](reference.parts)
        if parts not in paths:
            paths.append(parts)
    return paths


def flat_names(reference: SecretReference, provider: str, flatten: Callable[[list[str]], str]) -> list[str]:
    return list(dict.fromkeys(flatten(parts) for parts in key_paths(reference, provider)))


# --- providers -----------------------------------------------------------------------------

class SecretProvider(Protocol):
    """One place secrets live. ``get`` returns None when the reference is not there."""

    def describe(self, reference: SecretReference) -> str: ...

    def get(self, reference: SecretReference) -> str | None: ...


class EnvironmentProvider:
    """``${env:NAME}`` -> ``$NAME``; ``${secrets.a.b}`` -> ``$SECRETS__A__B``, then ``$DLT_A_B``."""

    name = "env"
    _FLATTEN = {"path": lambda parts: "SECRETS__" + "__".join(_env_part(p) for p in parts),
                "framework": lambda parts: "DLT_" + "_".join(_env_part(p) for p in parts)}

    def variables(self, reference: SecretReference) -> list[str]:
        if reference.kind == "env":
            return [reference.path]
        names = [self._FLATTEN[style](NAME_STYLES[style](reference.parts)) for style in name_styles(self.name)]
        return list(dict.fromkeys(names))

    def variable(self, reference: SecretReference) -> str:
        return self.variables(reference)[0]

    def describe(self, reference: SecretReference) -> str:
        return f"environment variable {' or '.join(self.variables(reference))}"

    def get(self, reference: SecretReference) -> str | None:
        for variable in self.variables(reference):
            if variable in os.environ:
                return os.environ[variable]
        return None


def _env_part(part: str) -> str:
    return part.upper().replace("-", "_")


class TomlFileProvider:
    """The local secrets file (``.dlt/secrets.toml`` by default): ``[a] b = "..."``, then ``[sources.a] b``.

    The second is the ``framework`` name style: the Excel framework kept every source under ``[sources]``."""

    name = "file"
    _lock = threading.Lock()

    def __init__(self, path: Path | None = None):
        self._path = path

    @property
    def path(self) -> Path:
        return self._path or settings.secrets_file()

    def key_paths(self, reference: SecretReference) -> list[list[str]]:
        paths: list[list[str]] = []
        for style in name_styles(self.name):
            parts = reference.parts if style == "path" or reference.parts[0] == "sources" \
                else ["sources", *reference.parts]
            if parts not in paths:
                paths.append(parts)
        return paths

    def describe(self, reference: SecretReference) -> str:
        places = [f"section [{'.'.join(section)}] key {key}" for *section, key in self.key_paths(reference)]
        return f"file {self.path} {' or '.join(places)}"

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
        document = self._read()
        for parts in self.key_paths(reference):
            node: Any = document
            for part in parts:
                if not isinstance(node, dict) or part not in node:
                    node = None
                    break
                node = node[part]
            if node is not None and not isinstance(node, dict):
                return str(node)
        return None

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


# --- the chain -----------------------------------------------------------------------------

PROVIDERS_VARIABLE = "INGEST_SECRET_PROVIDERS"


@dataclass(frozen=True)
class RemoteProvider:
    """A provider beyond env and file. ``build(named)`` returns the provider, or None when it
    finds no context (``named``: False when discovering; True when INGEST_SECRET_PROVIDERS names
    it, then a missing setting is an error that says what to set)."""

    name: str
    build: Callable[[bool], SecretProvider | None]


REMOTE_PROVIDERS: dict[str, RemoteProvider] = {}
_LOCAL = {"env": EnvironmentProvider, "file": TomlFileProvider}


def register_provider(name: str, build: Callable[[bool], SecretProvider | None]) -> None:
    """Add a remote provider to the chain (ingestion_core.config.secret_providers registers the
    Databricks secret scope and Azure Key Vault)."""
    REMOTE_PROVIDERS[name] = RemoteProvider(name, build)


REMOTE_PROVIDER_MODULES = ("ingestion_core.config.secret_providers",)
"""Modules that register remote providers when imported (as the source and destination kinds
do): loaded by name on the first use of the chain, so this module imports none of them."""


def _load_remote_providers() -> None:
    for module in REMOTE_PROVIDER_MODULES:
        importlib.import_module(module)  # registers databricks and azure_keyvault


def provider_order() -> list[str]:
    """The names of the chain, in the order asked (see the module's docstring)."""
    _load_remote_providers()
    names = [n.strip() for n in os.environ.get(PROVIDERS_VARIABLE, "").split(",") if n.strip()]
    unknown = [n for n in names if n not in _LOCAL and n not in REMOTE_PROVIDERS]
    if unknown:
        raise ValueError(f"{PROVIDERS_VARIABLE} names unknown providers {', '.join(unknown)}; "
                         f"known: {', '.join([*REMOTE_PROVIDERS, *_LOCAL])}")
    if not names:
        return [*_LOCAL, *REMOTE_PROVIDERS]
    if not set(names) & set(_LOCAL):
        names = [*_LOCAL, *names]
    return list(dict.fromkeys(names))


def default_providers() -> list[SecretProvider]:
    """The chain, first match wins (see :func:`provider_order`)."""
    named = bool(os.environ.get(PROVIDERS_VARIABLE, "").strip())
    chain: list[SecretProvider] = []
    for name in provider_order():
        provider = _LOCAL[name]() if name in _LOCAL else REMOTE_PROVIDERS[name].build(named)
        if provider is not None:
            chain.append(provider)
    return chain


def reference_paths(value: Any, path: str = "") -> list[tuple[str, SecretReference]]:
    """(YAML path, reference) of every reference inside nested dicts / lists, e.g.
    ``("source.password", ${secrets.sales.password})``."""
    if isinstance(value, str):
        return [(path, _from_match(m)) for m in _REF_RE.finditer(value)]
    if isinstance(value, dict):
        return [found for k, v in value.items() for found in reference_paths(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, (list, tuple)):
        return [found for i, v in enumerate(value) for found in reference_paths(v, f"{path}[{i}]")]
    return []


def locate_secret(reference: SecretReference, providers: list[SecretProvider] | None = None
                  ) -> tuple[str | None, list[str]]:
    """Where the chain finds ``reference`` (None if nowhere) and every place looked; the value is
    registered for masking, never returned. A provider that cannot be read (a broken file, a
    refused token) counts as looked, with its error."""
    looked: list[str] = []
    for provider in default_providers() if providers is None else providers:
        try:
            value = provider.get(reference)
        except (ValueError, LookupError) as exc:
            looked.append(mask(exc))
            continue
        if value is not None:
            register_secret(value)
            return provider.describe(reference), looked
        looked.append(provider.describe(reference))
    return None, looked


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
