"""A secrets scanner for the files the test suite leaves behind.

Fake secrets are made at run time (``fake_secret``: ``secrets.token_urlsafe``, never committed) and kept
in environment variables ``INGEST_TEST_SECRET_<NAME>``, so that the fixtures that use them, the processes
the tests start and the scan at session end all see the same values. ``register_secret`` adds a value
made elsewhere (a key moto generated, a token a test server issued).

``scan_paths`` looks for every value, plain, URL-encoded and base64-encoded (at any byte alignment, so
``base64("user:" + password)`` is found too), in every regular file below the given roots. A hit names the
file, the secret's NAME and the encoding, never the value. The files of a secrets provider
(``secrets.toml``: where the product is meant to keep values) are counted apart and not searched.
"""

from __future__ import annotations

import base64
import fnmatch
import os
import re
import secrets
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

ENV_PREFIX = "INGEST_TEST_SECRET_"
SECRET_STORE_NAMES = frozenset({"secrets.toml"})  # the local secrets provider's file: values belong there
MIN_PATTERN = 12  # shorter encoded fragments would match by chance
CHUNK = 8 << 20


def _env_name(name: str) -> str:
    return ENV_PREFIX + re.sub(r"[^A-Z0-9]+", "_", name.upper())


def fake_secret(name: str, prefix: str = "", suffix: str = "") -> str:
    """The session's fake secret `name`: made once per test session, shared through the environment."""
    variable = _env_name(name)
    value = os.environ.get(variable)
    if not value:
        value = f"{prefix}{secrets.token_urlsafe(18)}{suffix}"
        os.environ[variable] = value
    return value


def register_secret(name: str, value: str) -> str:
    """Add a secret value made elsewhere (moto's generated key, an issued token) to the scanned set."""
    if value:
        os.environ[_env_name(name)] = value
    return value


def session_secrets() -> dict[str, str]:
    """NAME -> value of every fake secret of this session."""
    return {k[len(ENV_PREFIX):]: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX) and v}


def base64_fragments(raw: bytes) -> set[bytes]:
    """The base64 text `raw` turns into wherever it stands in a longer byte string (3 alignments, 2 alphabets)."""
    fragments = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)
        first = -(-8 * shift // 6)  # the first character made only of `raw`'s bits
        last = 8 * (shift + len(raw)) // 6  # one past the last such character
        fragment = encoded[first:last]
        fragments |= {fragment, fragment.translate(bytes.maketrans(b"+/", b"-_"))}
    return fragments


def encodings(value: str) -> dict[bytes, str]:
    """Byte pattern -> encoding name, for every form of `value` the scan looks for."""
    raw = value.encode("utf-8")
    found = {raw: "plain"}
    for text in (quote(value, safe=""), quote_plus(value), quote(value)):
        found.setdefault(text.encode("ascii"), "url-encoded")
    for fragment in base64_fragments(raw):
        found.setdefault(fragment, "base64")
    return {pattern: how for pattern, how in found.items() if len(pattern) >= MIN_PATTERN}


@dataclass(frozen=True)
class Hit:
    path: str
    name: str
    encoding: str

    def __str__(self) -> str:
        return f"{self.path}: secret {self.name} ({self.encoding})"


@dataclass
class ScanResult:
    files: int = 0
    bytes: int = 0
    secret_stores: int = 0
    hits: list[Hit] = field(default_factory=list)
    seen: set[str] = field(default_factory=set, repr=False)

    def add(self, other: ScanResult) -> None:
        self.files += other.files
        self.bytes += other.bytes
        self.secret_stores += other.secret_stores
        self.hits += [h for h in other.hits if h not in self.hits]
        self.seen |= other.seen

    def summary(self) -> str:
        return (f"secret scan: {self.files} files, {self.bytes} bytes, {len(self.hits)} secret values found"
                f" ({self.secret_stores} secrets-provider files skipped)")


class Scanner:
    """Searches files for the values of `secrets` (NAME -> value) in all their encodings."""

    def __init__(self, secret_values: Mapping[str, str]):
        self.patterns: dict[bytes, tuple[str, str]] = {}
        for name, value in sorted(secret_values.items()):
            for pattern, how in encodings(value).items():
                self.patterns.setdefault(pattern, (name, how))
        self.overlap = max(map(len, self.patterns), default=0)

    def search_bytes(self, data: bytes) -> set[tuple[str, str]]:
        """(NAME, encoding) of every secret in `data`. One substring search per pattern: about three times
        faster here than one regex alternation over them all."""
        return {found for pattern, found in self.patterns.items() if pattern in data}

    def scan_file(self, path: Path, result: ScanResult) -> None:
        key = str(path)
        if key in result.seen:
            return
        result.seen.add(key)
        if path.name in SECRET_STORE_NAMES:
            result.secret_stores += 1
            return
        found: set[tuple[str, str]] = set()
        size = 0
        try:
            with open(path, "rb") as handle:
                tail = b""
                while chunk := handle.read(CHUNK):
                    size += len(chunk)
                    found |= self.search_bytes(tail + chunk)
                    tail = chunk[-self.overlap:] if self.overlap else b""
        except OSError:
            return  # removed or unreadable while we looked: nothing left to leak
        result.files += 1
        result.bytes += size
        result.hits += [Hit(key, name, how) for name, how in sorted(found)]

    def scan_text(self, text: str, where: str, result: ScanResult) -> None:
        """Text that is not a file (a page's inner text at screenshot time)."""
        result.files += 1
        result.bytes += len(text.encode("utf-8", "replace"))
        result.hits += [Hit(where, name, how) for name, how in sorted(self.search_bytes(text.encode("utf-8")))]


def walk_files(root: Path, since: float | None = None, skip_names: Iterable[str] = ()) -> Iterable[Path]:
    """Regular files below `root` (or `root` itself), not through links, leaving out folders whose name
    matches a pattern of `skip_names`; with `since`, only files changed after that time."""
    patterns = tuple(skip_names)
    if not root.is_dir() or root.is_symlink():
        yield from _if_changed(root, since)
        return
    for folder, dirs, files in os.walk(root, onerror=lambda _error: None):
        dirs[:] = [d for d in dirs if not any(fnmatch.fnmatch(d, p) for p in patterns)]
        for name in files:
            yield from _if_changed(Path(folder, name), since)


def _if_changed(path: Path, since: float | None) -> Iterable[Path]:
    try:
        info = path.lstat()
    except OSError:
        return
    if stat.S_ISREG(info.st_mode) and (since is None or info.st_mtime >= since):
        yield path


def scan_paths(roots: Iterable[Path], secret_values: Mapping[str, str], since: float | None = None,
               skip_names: Iterable[str] = (), into: ScanResult | None = None) -> ScanResult:
    """Scan every regular file below `roots` (changed after `since` when given) for `secret_values`;
    `into` adds to an earlier result (a file already scanned there is not read again)."""
    scanner = Scanner(secret_values)
    result = into if into is not None else ScanResult()
    for root in roots:
        for path in walk_files(Path(root), since, skip_names):
            scanner.scan_file(path, result)
    return result
