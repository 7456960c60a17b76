"""Positive controls of the secrets scanner: a leak planted in a file, plain, URL-encoded or base64
(alone or inside a longer string, at any alignment), in the temp folder or a nested one, is found and
reported by the secret's name, never its value. The planted values are made here and are not the
session's secrets, so these plants do not fail the session-end scan."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import REPO
from tests.security.scanner import ENV_PREFIX, SECRET_STORE_NAMES, fake_secret, scan_paths, session_secrets
from tests.security.scanner_plugin import SESSION_SECRETS

PLANTS = {
    "plain": lambda v: f"password={v}\n",
    "url-encoded": lambda v: f"postgresql://u:{quote(v, safe='')}@db:5432/x\n",
    "base64": lambda v: "Authorization: Basic " + base64.b64encode(f"reporter:{v}".encode()).decode() + "\n",
}


def control_value() -> str:
    return "ctl/" + secrets.token_urlsafe(18) + "+=@:"  # characters that URL- and base64-encoding change


@pytest.mark.parametrize("how", sorted(PLANTS))
@pytest.mark.parametrize("where", ["top", "a/b/c/deeply/nested"])
def test_a_planted_leak_is_found_by_name(tmp_path: Path, how: str, where: str) -> None:
    value = control_value()
    tmp_path = tmp_path / "scanned"  # apart from the test's project folder
    folder = tmp_path / where
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "clean.log").write_text("nothing to see\n" * 100)
    (folder / "leak.bin").write_bytes(b"\x00\x01header " + PLANTS[how](value).encode() + b"\xff trailer")

    result = scan_paths([tmp_path], {"CONTROL_SECRET": value})

    assert [(Path(h.path).relative_to(tmp_path).as_posix(), h.name, h.encoding) for h in result.hits] == [
        (f"{where}/leak.bin", "CONTROL_SECRET", how)]
    assert result.files == 2 and result.bytes > 1500
    assert value not in "\n".join(map(str, result.hits)) + result.summary()


@pytest.mark.parametrize("shift", range(3))
def test_base64_is_found_at_every_alignment(tmp_path: Path, shift: int) -> None:
    value = control_value()
    tmp_path = tmp_path / "scanned"
    tmp_path.mkdir()
    (tmp_path / "token.json").write_text(base64.b64encode(b"x" * shift + value.encode() + b"y").decode())
    hits = scan_paths([tmp_path], {"CONTROL_SECRET": value}).hits
    assert [(h.name, h.encoding) for h in hits] == [("CONTROL_SECRET", "base64")]


def test_a_leak_split_across_read_chunks_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tests.security.scanner as scanner

    monkeypatch.setattr(scanner, "CHUNK", 64)
    value = control_value()
    (tmp_path / "big.txt").write_text("x" * 50 + value + "x" * 200)  # the value straddles two 64-byte reads
    assert [h.encoding for h in scan_paths([tmp_path], {"CONTROL_SECRET": value}).hits] == ["plain"]


def test_clean_files_links_and_old_files_are_not_hits(tmp_path: Path) -> None:
    value = control_value()
    tmp_path = tmp_path / "scanned"
    tmp_path.mkdir()
    outside = tmp_path.parent / f"outside-{secrets.token_hex(4)}.txt"
    outside.write_text(value)
    try:
        (tmp_path / "link.txt").symlink_to(outside)
        (tmp_path / "clean.txt").write_text("a" * 10_000)
        result = scan_paths([tmp_path], {"CONTROL_SECRET": value})
        assert result.hits == [] and result.files == 1
        assert scan_paths([outside], {"CONTROL_SECRET": value}, since=outside.stat().st_mtime + 10).files == 0
    finally:
        outside.unlink()


def test_the_secrets_provider_file_is_counted_but_not_searched(tmp_path: Path) -> None:
    value = control_value()
    store = tmp_path / ".ingest" / sorted(SECRET_STORE_NAMES)[0]
    store.parent.mkdir()
    store.write_text(f'[a]\nb = "{value}"\n')
    result = scan_paths([tmp_path], {"CONTROL_SECRET": value})
    assert result.hits == [] and result.secret_stores == 1


def test_the_session_secrets_exist_and_are_shared_through_the_environment() -> None:
    values = session_secrets()
    for name, (prefix, suffix) in SESSION_SECRETS.items():
        value = values[name.upper()]
        assert value.startswith(prefix) and value.endswith(suffix) and len(value) >= 24
        assert fake_secret(name) == values[name.upper()]  # the same value for every fixture that asks
    assert len(set(values.values())) == len(values)


LEAKING_SESSION = """
    import base64, os, tempfile
    from urllib.parse import quote

    def test_leaks(tmp_path):
        value = os.environ["INGEST_TEST_SECRET_FORM_PASSWORD"]
        nested = tmp_path / "runs" / "2026" / "01" / "02"
        nested.mkdir(parents=True)
        (nested / "record.json").write_text('{"error": "login failed for %s"}' % value)
        (tmp_path / "app.log").write_text("url=" + quote(value, safe=""))
        with tempfile.NamedTemporaryFile("w", prefix="leak-control-", suffix=".txt", delete=False) as out:
            out.write(base64.b64encode(("user:" + value).encode()).decode())
        (tmp_path / "temp_file_name").write_text(os.path.basename(out.name))
"""


def test_a_leaking_session_fails_and_names_the_secret_never_its_value(tmp_path: Path) -> None:
    """End to end: a pytest session with the plugin, whose test writes its secret into a nested run record
    (plain), a log (URL-encoded) and a file of the temp dir (base64), exits non-zero and names the leaks."""
    value = control_value()
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "test_leak.py").write_text(textwrap.dedent(LEAKING_SESSION))
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update({f"{ENV_PREFIX}FORM_PASSWORD": value, "PYTHONPATH": str(REPO)})
    env.pop("INGEST_SECRET_SCAN", None)
    inner = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.security.scanner_plugin",
                            "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'base'}",
                            f"--rootdir={tmp_path / 'inner'}", str(tmp_path / "inner" / "test_leak.py")],
                           cwd=tmp_path / "inner", env=env, capture_output=True, text=True, timeout=300)
    temp_file = Path(tempfile.gettempdir(), next((tmp_path / "base").rglob("temp_file_name")).read_text())
    try:
        output = inner.stdout + inner.stderr
        assert inner.returncode == 1, output
        leaks = sorted(line.split(": secret ")[1] for line in output.splitlines() if "secret scan: LEAK" in line)
        assert leaks == ["FORM_PASSWORD (base64)", "FORM_PASSWORD (plain)", "FORM_PASSWORD (url-encoded)"], output
        assert str(temp_file) in output and "record.json" in output and "app.log" in output
        assert "3 secret values found" in output and "1 passed" in output
        assert value not in output and quote(value, safe="") not in output
    finally:
        temp_file.unlink(missing_ok=True)
